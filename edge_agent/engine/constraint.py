"""Constrained token choice: which tokens a grammar allows next, and the exact argmax or
distribution over only those.

A ``Constraint`` answers ``allowed(ids)`` for candidate tokens in its current state and
moves on with ``accept(token)``. It only ever advances with tokens that are emitted, so
speculative verification needs no rollback: at each drafted position the verifier asks
the sampler for the constrained target's choice (the state being that of the accepted
prefix) and keeps the draft token only if it is that choice.

The greedy choice looks at the best-scoring candidates first and falls back to the whole
vocabulary only when none of them is allowed (or a tie at the boundary could hide a
lower-id token), so it is the argmax over allowed tokens, lowest id on ties, exactly
``np.argmax`` of the masked row.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int32]

TOP_FIRST = 32  # candidates checked before the whole vocabulary


class NoTokenAllowed(RuntimeError):
    """The constraint allows no token at all (a grammar that cannot be completed)."""


class Constraint(Protocol):
    """The set of tokens allowed next, for the tokens emitted so far."""

    def allowed(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        """Which of ``ids`` may come next."""
        ...

    def accept(self, token: int) -> None:
        """Advance past an emitted token."""
        ...


def masked(row: FloatArray, constraint: Constraint) -> FloatArray:
    """A copy of ``row`` with every token the constraint refuses at ``-inf``."""
    ids = np.arange(row.size, dtype=np.int32)
    ok = constraint.allowed(ids)
    if not ok.any():
        raise NoTokenAllowed("the grammar allows no next token")
    out = np.array(row, dtype=np.float32, copy=True)
    out[~ok] = -np.inf
    return out


def constrained_argmax(row: FloatArray, constraint: Constraint, top: int = TOP_FIRST) -> int:
    """``np.argmax(masked(row, constraint))`` without masking the whole row when the
    answer is among the ``top`` best candidates."""
    n = row.size
    if top < n:
        part = np.argpartition(row, n - top)[n - top :].astype(np.int32)
        order = part[np.lexsort((part, -row[part]))]  # best first, lowest id on ties
        ok = constraint.allowed(order)
        hits = np.flatnonzero(ok)
        if hits.size:
            first = int(order[hits[0]])
            # a token outside the checked set can only win on a tie with the weakest
            # checked score; then the whole row decides
            if row[first] > row[order[-1]]:
                return first
    return int(np.argmax(masked(row, constraint)))


class TokenSetConstraint:
    """A constraint given by a function of the emitted tokens: the allowed set.

    Small and exact; used for tests and for fixed vocabularies.
    """

    def __init__(self, rule: RuleFn) -> None:
        self._rule = rule
        self.emitted: list[int] = []

    def allowed(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        allowed = self._rule(tuple(self.emitted))
        return np.isin(ids, np.fromiter(allowed, dtype=np.int32))

    def accept(self, token: int) -> None:
        self.emitted.append(int(token))


class RuleFn(Protocol):
    def __call__(self, emitted: tuple[int, ...]) -> set[int]: ...
