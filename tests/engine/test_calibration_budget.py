"""Calibration on a busy host, with a fake clock and a model whose steps "take" what the
test says: bounded by its budget, re-measured when implausible, the prior kept (and
the fastest plain step reported) when it stays implausible."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from edge_agent.engine.costs import CostCurve, calibrate, coarse_first, measure
from edge_agent.engine.fake import FakeModel


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedModel:
    """A FakeModel whose every eval advances ``clock`` by ``cost(rows, call)`` seconds."""

    def __init__(self, clock: Clock, cost: Callable[[int, int], float]) -> None:
        self.inner = FakeModel()
        self.clock = clock
        self.cost = cost
        self.calls = 0
        self.n_vocab, self.n_ctx = self.inner.n_vocab, self.inner.n_ctx

    @property
    def n_past(self) -> int:
        return self.inner.n_past

    def truncate(self, n: int) -> None:
        self.inner.truncate(n)

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> np.ndarray:
        self.calls += 1
        self.clock.now += self.cost(len(tokens), self.calls)
        return self.inner.eval(tokens, want)

    def is_eog(self, token: int) -> bool:
        return self.inner.is_eog(token)


def quiet(rows: int, call: int) -> float:
    return 0.010 + 0.001 * (rows - 1)  # 10 ms plain, 1 ms per extra row


def test_coarse_first_spans_the_range_early() -> None:
    order = coarse_first(range(17))
    assert order[:4] == [0, 16, 8, 4] and sorted(order) == list(range(17))


def test_a_quiet_host_is_calibrated_in_full() -> None:
    clock = Clock()
    cal = calibrate(TimedModel(clock, quiet), prefix=[1, 2, 3], clock=clock, budget_s=5.0)
    assert cal.reliable and len(cal.points) == 17
    assert cal.plain_ms == pytest.approx(10.0) and cal.points[16] == pytest.approx(2.6)


def test_a_slow_host_stays_within_the_budget() -> None:
    clock = Clock()
    slow = TimedModel(clock, lambda rows, call: 4.0)  # every step 4 s, as on the loaded 2-core host
    cal = calibrate(slow, prefix=[1, 2, 3], clock=clock, budget_s=8.0)
    # the budget is checked between steps: at most a few steps past it, never 51 of them
    assert clock.now <= 8.0 + 6 * 4.0
    assert slow.calls < 12
    assert not cal.reliable and "lengths measured" in cal.note


def test_a_plain_step_stalled_by_another_process_is_measured_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()

    def stalled_first(rows: int, call: int) -> float:  # the first pass: every step 40x slower
        return quiet(rows, call) * (40 if call <= 30 else 1)

    with caplog.at_level(logging.INFO, logger="edge_agent.engine.costs"):
        cal = calibrate(TimedModel(clock, stalled_first), prefix=[1, 2, 3], clock=clock, budget_s=60.0)
    assert "measuring again" in caplog.text
    assert cal.reliable and cal.plain_ms == pytest.approx(10.0)
    assert "calibrating" in caplog.text and "lengths measured" in caplog.text  # progress logged


def test_a_host_that_stays_contended_keeps_the_prior_and_the_fastest_plain_step() -> None:
    clock = Clock()

    def flapping(rows: int, call: int) -> float:  # every other step stalls 30x
        return quiet(rows, call) * (30 if call % 2 else 1)

    cal = calibrate(TimedModel(clock, flapping), prefix=[1, 2, 3], clock=clock, budget_s=600.0)
    assert not cal.reliable and cal.points == {0: 1.0}
    assert cal.note and cal.plain_ms == pytest.approx(10.0)  # never a stalled figure


def test_measure_with_a_budget_keeps_the_lengths_it_reached() -> None:
    clock = Clock()
    points, plain_ms = measure(TimedModel(clock, lambda rows, call: 1.0), repeats=3, prefix=[1], budget_s=5.5, clock=clock)
    assert set(points) == {0, 16, 8, 4}  # coarse first: the reached lengths span the range
    assert plain_ms == pytest.approx(1000.0)
    assert CostCurve.from_points(points).cost(12) == pytest.approx(1.0)


def test_stats_shows_the_live_plain_step_once_decoding_has_timed_it() -> None:
    curve = CostCurve.linear(0.2)
    assert curve.plain_ms() is None
    for _ in range(4):
        curve.observe(0, 0.012)
    assert curve.plain_ms() == pytest.approx(12.0)
