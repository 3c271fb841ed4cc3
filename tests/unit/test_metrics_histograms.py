"""``/metrics``: token counters and latency histograms (TTFT, tokens/s, queue wait)
besides the gauges, in the Prometheus text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from edge_agent.adapters.metrics import StatsCollector
from edge_agent.engine.api import Usage
from edge_agent.pipeline.stats import Stats


def _scrape(stats: Stats) -> str:
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats.snapshot, lambda: "closed", lambda: 0))
    return generate_latest(registry).decode()


def test_token_counters_and_histograms() -> None:
    stats = Stats()
    stats.record("local", Usage(12, 30, ttft_ms=80.0, tokens_per_s=40.0, queue_wait_ms=3.0), local=True, fallback=False)
    stats.record("cloud", Usage(20, 10, ttft_ms=700.0, tokens_per_s=150.0, cost=0.001), local=False, fallback=False)
    text = _scrape(stats)
    assert 'edge_agent_tokens_total{kind="prompt",route="local"} 12.0' in text
    assert 'edge_agent_tokens_total{kind="completion",route="cloud"} 10.0' in text
    assert "# TYPE edge_agent_ttft_seconds histogram" in text
    assert 'edge_agent_ttft_seconds_bucket{le="0.1"} 1.0' in text and 'edge_agent_ttft_seconds_bucket{le="1.0"} 2.0' in text
    assert "edge_agent_ttft_seconds_count 2.0" in text and "edge_agent_ttft_seconds_sum 0.78" in text
    assert 'edge_agent_queue_wait_seconds_bucket{le="0.01"} 1.0' in text and "edge_agent_queue_wait_seconds_count 1.0" in text
    assert 'edge_agent_tokens_per_second_bucket{le="50.0",side="local"} 1.0' in text
    assert 'edge_agent_tokens_per_second_bucket{le="100.0",side="cloud"} 0.0' in text
    assert 'edge_agent_tokens_per_second_count{side="cloud"} 1.0' in text
