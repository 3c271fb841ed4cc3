"""EWMA estimators: priors, learning, thread safety."""

from __future__ import annotations

import threading

import pytest

from orchestrator.estimators import Estimators
from orchestrator.policy_model import Latency, SideLatency


def snap(e: Estimators, prompt_tokens: int = 100, available: bool = True):  # type: ignore[no-untyped-def]
    return e.snapshot(
        prompt_tokens=prompt_tokens,
        cloud_available=available,
        price_in_per_1k=0.1,
        price_out_per_1k=0.2,
    )


def test_priors_before_any_observation() -> None:
    lat = Latency(local=SideLatency(100.0, 2.0, 10.0), cloud=SideLatency(300.0, 0.5, 40.0))
    s = snap(Estimators(lat), prompt_tokens=50, available=False)
    assert s.local_ttft_ms == pytest.approx(200.0)
    assert s.local_tokens_per_s == 10.0
    assert s.cloud_ttft_ms == pytest.approx(325.0)
    assert s.cloud_tokens_per_s == 40.0
    assert s.cloud_available is False
    assert (s.cloud_price_in_per_1k, s.cloud_price_out_per_1k) == (0.1, 0.2)


def test_learns_local_prefill_line() -> None:
    e = Estimators()
    for _ in range(5):
        for n in (100, 400, 1600):
            e.observe_local(n, 40.0 + 0.25 * n, 64, 33.0)
    s = snap(e, prompt_tokens=3000)
    assert s.local_ttft_ms == pytest.approx(40.0 + 0.25 * 3000, rel=1e-6)
    assert s.local_tokens_per_s == pytest.approx(33.0)


def test_single_length_keeps_prior_slope() -> None:
    e = Estimators(Latency(local=SideLatency(0.0, 1.0, 10.0)))
    for _ in range(10):
        e.observe_local(200, 500.0, 10, 10.0)
    assert snap(e, prompt_tokens=200).local_ttft_ms == pytest.approx(500.0)
    assert snap(e, prompt_tokens=400).local_ttft_ms == pytest.approx(700.0)


def test_cloud_ewma_moves_toward_observations() -> None:
    e = Estimators()
    e.observe_cloud(1000.0, 50, 20.0)
    first = snap(e, prompt_tokens=0)
    assert first.cloud_ttft_ms == pytest.approx(1000.0)  # first observation replaces prior
    for _ in range(50):
        e.observe_cloud(200.0, 50, 80.0)
    s = snap(e, prompt_tokens=0)
    assert s.cloud_ttft_ms == pytest.approx(200.0, abs=1.0)
    assert s.cloud_tokens_per_s == pytest.approx(80.0, abs=0.5)


def test_ignores_degenerate_rates() -> None:
    e = Estimators()
    before = snap(e).local_tokens_per_s
    e.observe_local(10, 50.0, 1, 0.0)
    e.observe_cloud(-1.0, 0, 0.0)
    assert snap(e).local_tokens_per_s == before


def test_thread_safe_under_concurrent_updates() -> None:
    e = Estimators()

    def work() -> None:
        for i in range(2000):
            e.observe_local(100 + i % 50, 100.0, 20, 25.0)
            snap(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert snap(e).local_tokens_per_s == pytest.approx(25.0)


def test_reconfigure_keeps_what_was_learned() -> None:
    e = Estimators()
    e.observe_cloud(900.0, 50, 30.0)
    e.reconfigure(Latency(local=SideLatency(10.0, 0.0, 99.0), cloud=SideLatency(1.0, 0.0, 1.0)))
    s = snap(e, prompt_tokens=100)
    assert s.local_ttft_ms == pytest.approx(10.0) and s.local_tokens_per_s == 99.0  # new priors
    assert s.cloud_ttft_ms == pytest.approx(900.0) and s.cloud_tokens_per_s == 30.0  # learned
