"""Quality cascade: answer locally, escalate when the first tokens look unsure.

The engine reports the probability of each sampled token; after
``policy.quality.cascade.first_tokens`` of them, ``check_confidence`` says whether the
mean is below ``min_mean_prob``. The router only offers escalation
(``Decision.escalate_to``) where privacy allows the cloud.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.policy_model import Cascade


@dataclass(frozen=True)
class Confidence:
    """Verdict over the first tokens of a local answer."""

    escalate: bool
    mean_prob: float
    tokens: int
    reason: str  # one line, for the final message


def check_confidence(cascade: Cascade, token_probs: Sequence[float]) -> Confidence | None:
    """``None`` while fewer than ``first_tokens`` probabilities are known."""
    n = cascade.first_tokens
    if not cascade.enabled or len(token_probs) < n:
        return None
    window = [min(1.0, max(0.0, p)) for p in token_probs[:n] if not math.isnan(p)]
    mean = sum(window) / len(window) if window else 0.0
    if mean < cascade.min_mean_prob:
        return Confidence(
            True,
            mean,
            n,
            f"escalated: mean token probability {mean:.2f} over the first {n} tokens "
            f"is below {cascade.min_mean_prob:.2f}",
        )
    return Confidence(False, mean, n, f"confident: mean token probability {mean:.2f}")
