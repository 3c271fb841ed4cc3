"""Cascade confidence checks."""

from __future__ import annotations

import pytest

from orchestrator.cascade import check_confidence
from orchestrator.policy_model import Cascade

ON = Cascade(enabled=True, first_tokens=4, min_mean_prob=0.5)


def test_waits_for_enough_tokens() -> None:
    assert check_confidence(ON, [0.1, 0.1, 0.1]) is None


def test_disabled_never_escalates() -> None:
    assert check_confidence(Cascade(enabled=False), [0.0] * 100) is None


@pytest.mark.parametrize(
    ("probs", "escalate"),
    [
        ([0.9, 0.8, 0.7, 0.6], False),
        ([0.2, 0.3, 0.4, 0.5], True),
        ([0.5, 0.5, 0.5, 0.5], False),  # at the threshold: stays
        ([0.1, 0.1, 0.1, 0.1, 1.0, 1.0], True),  # only the first N count
        ([float("nan"), 0.9, 0.9, 0.9], False),
    ],
)
def test_threshold(probs: list[float], escalate: bool) -> None:
    v = check_confidence(ON, probs)
    assert v is not None and v.escalate is escalate and v.tokens == 4
    if escalate:
        assert "below 0.50" in v.reason
