"""Verification of a drafted continuation against the target model's logits.

Given the logits rows produced by one batched forward pass over ``[last, d1 .. dk]``,
a verifier decides how many draft tokens to keep and which token comes next. All the
verifiers here are exact: the tokens they emit are distributed exactly as if the target
model had been decoded one token at a time.

Under a constraint (a grammar) the target's choice is the constrained one, so a draft
token is kept only where the constrained target would have emitted it.

* ``MatchVerifier``: greedy, accept while the argmax equals the draft; sampled, draw
  the target's token at each position (one uniform per position, as plain decoding
  does) and accept while it equals the draft. With a fixed seed it reproduces plain
  sampled decoding token for token.
* ``RejectionVerifier``: the speculative-sampling rule for a deterministic draft:
  accept ``d`` with probability ``p(d)``, otherwise draw from ``p`` with ``d`` removed
  and renormalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.engine.sampling import Sampler


class Verifier(Protocol):
    """Accepts a prefix of a draft and chooses the token after it."""

    def verify(
        self, rows: npt.NDArray[np.float32], draft: Sequence[int], sampler: Sampler
    ) -> tuple[int, int]:
        """Return ``(accepted, next_token)``; ``rows`` has ``len(draft) + 1`` rows."""
        ...


class MatchVerifier:
    """Sample (or argmax) the target at each position; keep the draft while it matches."""

    def verify(
        self, rows: npt.NDArray[np.float32], draft: Sequence[int], sampler: Sampler
    ) -> tuple[int, int]:
        for i, d in enumerate(draft):
            x = sampler.sample(rows[i])  # emitted either way: the draft token or the next
            if x != d:
                return i, x
        return len(draft), sampler.sample(rows[len(draft)])


class RejectionVerifier:
    """Accept ``d`` with probability ``p(d)``; on rejection draw from ``p`` without ``d``."""

    def verify(
        self, rows: npt.NDArray[np.float32], draft: Sequence[int], sampler: Sampler
    ) -> tuple[int, int]:
        if sampler.is_greedy:
            return MatchVerifier().verify(rows, draft, sampler)
        for i, d in enumerate(draft):
            dist = sampler.distribution(rows[i])
            if sampler.uniform() < dist.prob_of(d):
                sampler.commit(d)
                continue
            keep = dist.ids != d
            residual_ids = dist.ids[keep]
            residual = dist.probs[keep]
            cdf = np.cumsum(residual)
            j = int(np.searchsorted(cdf, sampler.uniform() * cdf[-1], side="right"))
            x = int(residual_ids[min(j, residual_ids.size - 1)])
            sampler.commit(x)
            return i, x
        return len(draft), sampler.sample(rows[len(draft)])
