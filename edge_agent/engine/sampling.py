"""Token selection from one row of logits: greedy argmax or temperature/top-k/top-p.

Everything works on a 1-D float32 view of the model's logits, read in place. A
``Constraint`` (a grammar) restricts every choice to the tokens it allows: greedy takes
the argmax over them, sampling masks the rest before temperature and cuts. Sampling
uses one uniform draw per position (inverse CDF over the kept candidates, in a fixed
order), so a decode that evaluates positions in batches and one that evaluates them one
at a time draw the same token from the same logits and the same random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.engine.constraint import Constraint, constrained_argmax, masked

FloatArray = npt.NDArray[np.float32]

# Candidates examined before falling back to a full sort for top-p.
_TOP_P_WINDOW = 512


@dataclass(frozen=True)
class Candidates:
    """The tokens a sampler may pick at one position with their probabilities.

    ``ids`` are sorted by decreasing probability (ties by token id) and ``probs`` sum
    to one.
    """

    ids: npt.NDArray[np.int64]
    probs: npt.NDArray[np.float64]

    def prob_of(self, token: int) -> float:
        """Probability of ``token`` (0 when it was cut)."""
        hit = np.nonzero(self.ids == token)[0]
        return float(self.probs[hit[0]]) if hit.size else 0.0

    def pick(self, u: float) -> int:
        """Inverse-CDF draw for a uniform ``u`` in [0, 1)."""
        cdf = np.cumsum(self.probs)
        i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
        return int(self.ids[min(i, self.ids.size - 1)])


def greedy(row: FloatArray) -> int:
    """Argmax of a logits row (lowest id on ties, like numpy)."""
    return int(np.argmax(row))


def top2_margin(row: FloatArray) -> float:
    """Difference between the largest and second largest logit."""
    two = np.partition(row, row.size - 2)[-2:]
    return float(two[1] - two[0])


def _sorted_desc(
    ids: npt.NDArray[np.int64], vals: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    order = np.lexsort((ids, -vals))
    return order


def candidates(
    row: FloatArray, temperature: float, top_k: int = 0, top_p: float = 1.0
) -> Candidates:
    """The distribution a sampler with these settings draws from (``temperature > 0``).

    Order of operations: temperature, top-k cut, softmax, top-p cut, renormalise.
    """
    if temperature <= 0:
        raise ValueError("candidates() needs temperature > 0; use greedy()")
    n = row.size
    if 0 < top_k < n:
        ids = np.argpartition(row, n - top_k)[n - top_k :].astype(np.int64)
    else:
        ids = np.arange(n, dtype=np.int64)
    z = row[ids].astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        window = min(_TOP_P_WINDOW, ids.size)
        if window < ids.size:
            part = np.argpartition(p, ids.size - window)[ids.size - window :]
        else:
            part = np.arange(ids.size)
        order = part[_sorted_desc(ids[part], p[part])]
        cum = np.cumsum(p[order])
        if cum[-1] < top_p and window < ids.size:
            order = _sorted_desc(ids, p)
            cum = np.cumsum(p[order])
        # keep the smallest prefix whose mass reaches top_p (at least one token)
        keep = int(np.searchsorted(cum, top_p, side="left")) + 1
        order = order[: min(keep, order.size)]
    else:
        order = _sorted_desc(ids, p)
    kept_p = p[order]
    return Candidates(ids=ids[order], probs=kept_p / kept_p.sum())


class Sampler:
    """Chooses tokens from logits rows for one request; owns the request's RNG and its
    constraint's state (every token it returns, or is told of with ``commit``, is
    emitted)."""

    def __init__(
        self,
        temperature: float,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        constraint: Constraint | None = None,
    ) -> None:
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.rng = np.random.default_rng(seed)
        self.constraint = constraint

    @property
    def is_greedy(self) -> bool:
        """True when decoding is deterministic argmax."""
        return self.temperature <= 0

    def distribution(self, row: FloatArray) -> Candidates:
        """Candidates at this position under the request's settings (and constraint)."""
        if self.constraint is not None:
            row = masked(row, self.constraint)
        return candidates(row, self.temperature, self.top_k, self.top_p)

    def uniform(self) -> float:
        """Next uniform draw of the request's random stream."""
        return float(self.rng.random())

    def commit(self, token: int) -> None:
        """``token`` is emitted (a draft token a verifier kept)."""
        if self.constraint is not None:
            self.constraint.accept(token)

    def sample(self, row: FloatArray) -> int:
        """One token, emitted: argmax when greedy, else one draw from the distribution."""
        if self.constraint is None:
            if self.is_greedy:
                return greedy(row)
            return self.distribution(row).pick(self.uniform())
        tok = constrained_argmax(row, self.constraint) if self.is_greedy else self.distribution(row).pick(self.uniform())
        self.constraint.accept(tok)
        return tok
