"""How wide a step shared by several sequences is (model-free)."""

from __future__ import annotations

from edge_agent.engine.adaptive import expected_tokens
from edge_agent.engine.scheduler import shared_width


def linear(per_row: float):
    return lambda k: 1.0 + per_row * k


def test_no_drafts_take_one_row_each() -> None:
    assert shared_width([(0.0, 0)] * 4, 8, linear(0.1)) == 1


def test_a_good_draft_alone_is_verified_in_full_when_rows_are_cheap() -> None:
    assert shared_width([(0.95, 15)], 16, linear(0.05)) == 16


def test_one_good_draft_does_not_widen_a_step_of_many_undrafted_sequences() -> None:
    # four padded rows per extra drafted token of one sequence: not worth it
    assert shared_width([(0.9, 15), (0.0, 0), (0.0, 0), (0.0, 0)], 8, linear(0.15)) == 1
    # alone the same draft pays
    assert shared_width([(0.9, 15)], 16, linear(0.15)) > 4


def test_the_chosen_width_is_the_best_rate() -> None:
    offers = [(0.8, 7), (0.6, 7)]
    cost = linear(0.12)

    def rate(w: int) -> float:
        return sum(expected_tokens(p, min(w - 1, n)) for p, n in offers) / cost(2 * w - 1)

    w = shared_width(offers, 8, cost)
    assert all(rate(w) >= rate(v) for v in range(1, 9))
    assert 1 < w < 8


def test_expected_tokens() -> None:
    assert expected_tokens(0.5, 0) == 1.0
    assert expected_tokens(0.5, 2) == 1.75
    assert expected_tokens(1.0, 4) == 5.0
