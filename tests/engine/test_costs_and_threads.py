"""The verification cost curve and the thread tuner, on synthetic timings."""

from __future__ import annotations

from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.costs import CostCurve, measure
from edge_agent.engine.drafters import Draft
from edge_agent.engine.fake import FakeModel
from edge_agent.engine.threads import ThreadTuner, thread_choices


def test_curve_from_points_interpolates_and_extrapolates() -> None:
    c = CostCurve.from_points({0: 1.0, 1: 1.2, 4: 1.8, 8: 2.6}, max_k=12)
    assert c.cost(0) == 1.0 and c.cost(1) == 1.2
    assert abs(c.cost(2) - 1.4) < 1e-9 and abs(c.cost(6) - 2.2) < 1e-9
    assert c.cost(12) > c.cost(8)  # beyond the last point the slope continues
    assert c.cost(20) > c.cost(12)


def test_curve_learns_from_timings_and_ignores_spikes() -> None:
    c = CostCurve.linear(0.2, max_k=8)
    assert abs(c.cost(4) - 1.8) < 1e-9
    for _ in range(10):
        c.observe(0, 0.010)
        c.observe(4, 0.030)  # this host: a 4-token verification costs 3 plain steps
    c.observe(0, 0.500)  # another process stalled one step
    c.observe(4, 0.900)
    assert abs(c.cost(4) - 3.0) < 1e-9
    assert c.cost(2) >= 1.0 and c.cost(8) > 1.0


def test_policy_drafts_longer_where_verification_is_cheap() -> None:
    d = Draft(tuple(range(16)), "context", 3)
    cheap = DraftPolicy(costs=CostCurve.linear(0.05))
    dear = DraftPolicy(costs=CostCurve.linear(0.45))
    for pol in (cheap, dear):
        for _ in range(6):
            pol.update(d, 4, 3)
    assert cheap.draft_len(d) > dear.draft_len(d) > 0
    # a step function (batched kernels switching on at 8 rows) is followed, not smoothed
    stepped = DraftPolicy(costs=CostCurve.from_points({0: 1.0, 7: 1.7, 8: 3.5, 16: 4.3}))
    for _ in range(6):
        stepped.update(d, 4, 4)
    assert stepped.draft_len(d) <= 7


def test_measure_times_every_length_and_leaves_the_prefix() -> None:
    model = FakeModel(n_vocab=32, seed=1)
    points, plain_ms = measure(model, ks=(0, 1, 4), repeats=2, prefix=[1, 2, 3])
    assert set(points) == {0, 1, 4} and points[0] == 1.0 and plain_ms > 0
    assert model.n_past == 3


def test_thread_tuner_drops_threads_under_contention_and_returns_when_quiet() -> None:
    applied: list[int] = []
    t = ThreadTuner(applied.append, thread_choices(2), window=4, probe_steps=3, recheck_every=20)
    speed = {2: 0.020, 1: 0.030}  # quiet: two threads win
    for _ in range(10):
        t.observe(speed[t.current])
    assert t.current == 2 and applied == []
    speed = {2: 0.080, 1: 0.035}  # another process takes a core
    for _ in range(40):
        t.observe(speed[t.current])
    assert t.current == 1 and applied[0] == 1
    speed = {2: 0.020, 1: 0.030}  # quiet again: the recheck brings both threads back
    for _ in range(60):
        t.observe(speed[t.current])
    assert t.current == 2


def test_thread_tuner_stays_put_when_every_count_is_slow() -> None:
    t = ThreadTuner(lambda n: None, [2, 1], window=4, probe_steps=3, recheck_every=50)
    for _ in range(8):
        t.observe(0.02)
    for _ in range(30):
        t.observe(0.06 if t.current == 2 else 0.09)  # contention, yet 2 threads still win
    assert t.current == 2
    assert t.switches == 2  # one round: tried 1 thread, came back
