"""Adaptive draft length and gating: draft only as far as it pays.

A verification step that checks ``k`` drafted tokens costs ``cost(k)`` plain decode
steps, a curve measured on this host and kept up to date from step timings
(``costs.CostCurve``; on AVX-512 about ``1 + 0.4k``, on AMX tiles nearer ``1 + 0.2k``,
dominated by the large vocabulary's output layer). If each drafted token is accepted with probability
``p`` (given that the ones before it were), the step yields ``1 + p + ... + p^k``
tokens. The policy estimates ``p`` per request for each (drafter, match length) bucket
from what was accepted so far (Beta prior), and picks the ``k`` that maximises tokens
per unit of cost (a longer n-gram match starts from a more optimistic prior);
``k = 0`` means a plain step, so text that drafts badly falls back to
plain decoding after a few tries. A gated bucket is probed again with one token every
``retry_every`` skipped opportunities, so text that turns into a copy later is noticed.
What a request learnt is carried into the next one with a small weight (``carry``
trials), so a new request starts from the last one's acceptance rather than from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.engine.costs import CostCurve
from edge_agent.engine.drafters import Draft


@dataclass
class _Bucket:
    hits: float
    trials: float
    prior_hits: float
    prior_trials: float
    skipped: int = 0


def expected_tokens(p: float, k: int) -> float:
    """Tokens a step verifying ``k`` drafted tokens, each accepted with ``p``, yields."""
    return sum(p**j for j in range(k + 1))


class DraftPolicy:
    """Chooses how many tokens of a draft to verify, learning within one request."""

    def __init__(
        self,
        max_draft: int = 16,
        step_cost: float = 0.2,
        costs: CostCurve | None = None,
        prior_hits: float = 1.0,
        prior_trials: float = 2.0,
        max_match_bucket: int = 4,
        retry_every: int = 16,
        carry: float = 4.0,
        long_match_bonus: float = 1.0,
    ) -> None:
        self.max_draft = max_draft
        # ``step_cost`` gives a linear curve; a measured ``costs`` curve replaces it
        self.costs = costs or CostCurve.linear(step_cost, max_k=max(max_draft, 1))
        self.prior_hits = prior_hits
        self.prior_trials = prior_trials
        self.max_match_bucket = max_match_bucket
        self.retry_every = retry_every
        self.carry = carry
        self.long_match_bonus = long_match_bonus
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    def reset(self) -> None:
        """Start a new request: keep what was learnt with a weight of ``carry`` trials."""
        for key, b in list(self._buckets.items()):
            seen = b.trials - b.prior_trials
            if seen <= 0 or self.carry <= 0:
                del self._buckets[key]
                continue
            scale = min(1.0, self.carry / seen)
            b.hits = b.prior_hits + (b.hits - b.prior_hits) * scale
            b.trials = b.prior_trials + seen * scale
            b.skipped = 0

    def forget(self) -> None:
        """Drop everything learnt."""
        self._buckets.clear()

    def _bucket(self, draft: Draft) -> _Bucket:
        n = min(draft.match_len, self.max_match_bucket)
        key = (draft.source, n)
        b = self._buckets.get(key)
        if b is None:
            # a longer n-gram match is a stronger hint: start more optimistic
            bonus = self.long_match_bonus * max(n - 2, 0)
            hits, trials = self.prior_hits + bonus, self.prior_trials + bonus
            b = self._buckets[key] = _Bucket(hits, trials, hits, trials)
        return b

    def acceptance(self, draft: Draft) -> float:
        """Estimated probability that each next drafted token is accepted."""
        b = self._bucket(draft)
        return b.hits / b.trials

    def draft_len(self, draft: Draft) -> int:
        """Tokens of ``draft`` worth verifying (0: take a plain step)."""
        b = self._bucket(draft)
        limit = min(len(draft.tokens), self.max_draft)
        best_k, _ = self.best_length(draft, limit)
        if best_k == 0 and limit > 0 and self.retry_every > 0:
            b.skipped += 1
            if b.skipped >= self.retry_every:
                b.skipped = 0
                return 1  # probe: has this source started to pay?
        return best_k

    def best_length(self, draft: Draft, limit: int, floor: float = 1.0) -> tuple[int, float]:
        """The length of ``draft`` up to ``limit`` with the most expected tokens per
        plain-step cost above ``floor``, and that rate ((0, floor): none beats it; the
        default floor is a plain step's rate)."""
        p = self.acceptance(draft)
        best_k, best_rate = 0, floor
        expected, term = 1.0, 1.0
        for k in range(1, limit + 1):
            term *= p
            expected += term
            rate = expected / self.costs.cost(k)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k, best_rate

    def expected_rate(self, draft: Draft, k: int) -> float:
        """Expected tokens per plain-step cost when verifying ``k`` tokens of ``draft``."""
        return expected_tokens(self.acceptance(draft), k) / self.costs.cost(k)

    def update(self, draft: Draft, verified: int, accepted: int) -> None:
        """``accepted`` of the first ``verified`` draft tokens were accepted."""
        if verified <= 0:
            return
        b = self._bucket(draft)
        b.hits += accepted
        b.trials += accepted + (1 if accepted < verified else 0)
