"""Prometheus ``/metrics`` text endpoint (off by default; loopback only when on).

Figures are read from the service's ``Stats`` at scrape time through a custom
collector, so the request path does no extra work for metrics. Besides the gauges
(percentiles over recent requests) there are counters since start (requests, tokens
by route and kind, errors, spend) and histograms with fixed buckets, which a Prometheus
server can aggregate and rate: ``edge_agent_ttft_seconds``,
``edge_agent_tokens_per_second{side}`` and ``edge_agent_queue_wait_seconds``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from common.errors import ConfigError
from common.rpc import bearer_token
from edge_agent.pipeline.stats import HistogramSnapshot, StatsSnapshot

log = logging.getLogger(__name__)


class StatsCollector(Collector):
    """Exposes a ``StatsSnapshot`` (and the circuit state) as Prometheus metrics."""

    def __init__(
        self,
        snapshot: Callable[[], StatsSnapshot],
        circuit: Callable[[], str],
        waiting: Callable[[], int],
        runtime: Callable[[], dict[str, Any]] | None = None,
        active: Callable[[], int] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._circuit = circuit
        self._waiting = waiting
        self._runtime = runtime
        self._active = active

    def collect(self) -> Iterator[Any]:
        s = self._snapshot()
        routes = CounterMetricFamily("edge_agent_requests", "Requests answered, by route", labels=["route"])
        for route, n in sorted(s.requests_by_route.items()):
            routes.add_metric([route], n)
        yield routes
        tokens = CounterMetricFamily("edge_agent_tokens", "Tokens since start, by route and kind (prompt, completion)",
                                     labels=["route", "kind"])
        for (route, kind), n in sorted(s.tokens.items()):
            tokens.add_metric([route, kind], n)
        yield tokens
        yield from _histograms(s.histograms)
        yield CounterMetricFamily("edge_agent_errors", "Requests rejected with an error status", value=s.errors)
        yield CounterMetricFamily("edge_agent_cancelled", "Requests cancelled by the caller", value=s.cancelled)
        yield CounterMetricFamily("edge_agent_fallbacks", "Requests answered by the other side after a failure", value=s.fallbacks)
        yield CounterMetricFamily(
            "edge_agent_local_energy_joules",
            f"Energy of local generations ({s.energy_source or 'none yet'}: rapl = measured, estimate = CPU time x watts per core)",
            value=s.local_energy_j,
        )
        yield GaugeMetricFamily("edge_agent_local_tokens_per_joule", "Median completion tokens per joule of local generations", value=s.local_tokens_per_j_p50)
        yield CounterMetricFamily("edge_agent_cloud_spend", "Cloud spend since start, currency units", value=s.cloud_spend)
        ttft = GaugeMetricFamily("edge_agent_ttft_ms", "Time to first token over recent requests", labels=["quantile"])
        ttft.add_metric(["0.5"], s.ttft_p50_ms)
        ttft.add_metric(["0.99"], s.ttft_p99_ms)
        yield ttft
        yield GaugeMetricFamily("edge_agent_local_tokens_per_second", "Median local decode speed", value=s.local_tokens_per_s_p50)
        yield GaugeMetricFamily("edge_agent_draft_acceptance_ratio", "Accepted / drafted tokens", value=s.acceptance_rate)
        yield GaugeMetricFamily("edge_agent_queue_waiting", "Requests waiting for the local model", value=self._waiting())
        if self._active is not None:
            yield GaugeMetricFamily("edge_agent_active_sequences", "Requests the local model is decoding now", value=self._active())
        if self._runtime is not None:
            r = self._runtime()
            steps, rows = int(r.get("shared_steps", 0) or 0), int(r.get("shared_rows", 0) or 0)
            yield GaugeMetricFamily("edge_agent_parallel", "Requests the local model decodes at once (server.parallel)",
                                    value=float(r.get("parallel", 1) or 1))
            yield CounterMetricFamily("edge_agent_shared_steps", "Decode steps shared by several requests", value=steps)
            yield CounterMetricFamily("edge_agent_shared_step_rows", "Rows of the shared decode steps (rows / steps: rows per step)", value=rows)
        circuit = GaugeMetricFamily("edge_agent_cloud_circuit", "1 for the cloud circuit's current state", labels=["state"])
        state = self._circuit()
        for name in ("closed", "half_open", "open", "disabled"):
            circuit.add_metric([name], 1.0 if state == name else 0.0)
        yield circuit


def _buckets(h: HistogramSnapshot, scale: float) -> list[tuple[str, float]]:
    """Prometheus buckets: (upper bound, cumulative count), the last one +Inf."""
    return [(repr(b * scale), float(c)) for b, c in zip(h.bounds, h.cumulative)] + [("+Inf", float(h.count))]


def _histograms(hists: dict[str, HistogramSnapshot]) -> Iterator[Any]:
    if "ttft_ms" in hists:
        h = hists["ttft_ms"]
        yield HistogramMetricFamily("edge_agent_ttft_seconds", "Time to first token", buckets=_buckets(h, 1e-3), sum_value=h.total / 1000)
    if "queue_wait_ms" in hists:
        h = hists["queue_wait_ms"]
        yield HistogramMetricFamily("edge_agent_queue_wait_seconds", "Time local requests waited for the model",
                                    buckets=_buckets(h, 1e-3), sum_value=h.total / 1000)
    speed = HistogramMetricFamily("edge_agent_tokens_per_second", "Decode speed of answers, by side (local, cloud)",
                                  labels=["side"])
    for name, h in sorted(hists.items()):
        if name.startswith("tokens_per_s:"):
            speed.add_metric([name.partition(":")[2]], buckets=_buckets(h, 1.0), sum_value=h.total)
    yield speed


class MetricsServer:
    """``/metrics`` on a loopback ``host:port`` until ``stop``.

    Like every TCP listener of the daemon it requires the bearer token when ``accepts``
    is given (Prometheus: ``authorization: {credentials_file: <data dir>/token}``);
    a request without it gets 401 and no figures.
    """

    def __init__(self, address: str, collector: Collector, accepts: Callable[[bytes], bool] | None = None) -> None:
        host, _, port = address.rpartition(":")
        registry = CollectorRegistry()
        registry.register(collector)
        app = make_wsgi_app(registry)
        if accepts is not None:
            app = _bearer(app, accepts)
        host = host.strip("[]")

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self._server = make_server(host, int(port), app, Server, handler_class=_QuietHandler)
        except OSError as exc:
            raise ConfigError("edge-agent serve", "server.metrics", f"an address this host can listen on (got "
                              f"{address!r}: {exc.strerror or exc}; also set by EDGE_AGENT_METRICS)") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="edge-agent-metrics", daemon=True)
        self._thread.start()
        self.port = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape (the daemon's log is for what matters); a client
    that sends nothing for ``timeout`` seconds is dropped (no thread held by idlers)."""

    timeout = 10.0

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _bearer(app: Callable[..., Iterable[bytes]], accepts: Callable[[bytes], bool]) -> Callable[..., Iterable[bytes]]:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if accepts(bearer_token(str(environ.get("HTTP_AUTHORIZATION", "")))):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                            ("WWW-Authenticate", 'Bearer realm="edge-agent"')])
        return [b"the bearer token is required: edge-agent token show\n"]

    return guarded
