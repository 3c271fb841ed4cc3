"""In-memory counters and percentiles behind ``GetStats`` (bounded memory), and the
cumulative token counters and latency histograms ``/metrics`` exposes (fixed buckets,
as Prometheus histograms are: TTFT, decode speed, queue wait)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from edge_agent.engine.api import Usage

TTFT_BUCKETS_MS = (25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0)
TOKENS_PER_S_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
QUEUE_WAIT_BUCKETS_MS = (1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 30000.0)


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative counts per upper bound (the last bound is +Inf), their sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # len(bounds) + 1: the last is every observation
    total: float
    count: int


class Histogram:
    """Observations counted into fixed buckets since start (not thread-safe: Stats locks)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        i = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self._counts[i] += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        running, cumulative = 0, []
        for c in self._counts:
            running += c
            cumulative.append(running)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self._sum, running)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass(frozen=True)
class StatsSnapshot:
    requests_by_route: dict[str, int]
    errors: int
    cancelled: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    local_tokens_per_s_p50: float
    acceptance_rate: float
    cloud_spend: float
    fallbacks: int
    local_energy_j: float = 0.0  # total energy of local generations
    local_tokens_per_j_p50: float = 0.0  # completion tokens per joule, median
    energy_source: str = ""  # "rapl" or "estimate"
    # Since start: tokens by (route, "prompt" | "completion"); histograms by name
    # ("ttft_ms", "tokens_per_s" with the route's side, "queue_wait_ms").
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)
    histograms: dict[str, HistogramSnapshot] = field(default_factory=dict)


class Stats:
    """Thread-safe request statistics over the last ``window`` requests."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self._routes: Counter[str] = Counter()
        self._errors = 0
        self._cancelled = 0
        self._fallbacks = 0
        self._ttft: deque[float] = deque(maxlen=window)
        self._local_tps: deque[float] = deque(maxlen=window)
        self._drafted = 0
        self._accepted = 0
        self._spend = 0.0
        self._energy_j = 0.0
        self._tokens_per_j: deque[float] = deque(maxlen=window)
        self._energy_source = ""
        self._tokens: Counter[tuple[str, str]] = Counter()
        self._hist_ttft = Histogram(TTFT_BUCKETS_MS)
        self._hist_tps: dict[str, Histogram] = {}
        self._hist_wait = Histogram(QUEUE_WAIT_BUCKETS_MS)

    def record(self, route: str, u: Usage, *, local: bool, fallback: bool) -> None:
        """One finished request: its route and its figures (``local``: the local model
        answered some of it, so its speed and queue wait are the local model's)."""
        with self._lock:
            self._routes[route] += 1
            self._ttft.append(u.ttft_ms)
            self._hist_ttft.observe(u.ttft_ms)
            self._tokens[(route, "prompt")] += u.prompt_tokens
            self._tokens[(route, "completion")] += u.completion_tokens
            if u.tokens_per_s > 0:
                side = "local" if local else "cloud"
                self._hist_tps.setdefault(side, Histogram(TOKENS_PER_S_BUCKETS)).observe(u.tokens_per_s)
            if local:
                self._hist_wait.observe(u.queue_wait_ms)
                self._local_tps.append(u.tokens_per_s)
            self._drafted += u.drafted_tokens
            self._accepted += u.accepted_tokens
            self._spend += u.cost
            self._fallbacks += int(fallback)
        self.energy(u.energy_j, u.completion_tokens, u.energy_source)

    def energy(self, joules: float, completion_tokens: int, source: str) -> None:
        """One local generation's energy."""
        if joules <= 0:
            return
        with self._lock:
            self._energy_j += joules
            self._tokens_per_j.append(completion_tokens / joules)
            self._energy_source = source

    def cancelled(self) -> None:
        with self._lock:
            self._cancelled += 1

    def error(self) -> None:
        with self._lock:
            self._errors += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            ttft = list(self._ttft)
            return StatsSnapshot(
                requests_by_route=dict(self._routes),
                errors=self._errors,
                cancelled=self._cancelled,
                ttft_p50_ms=percentile(ttft, 50),
                ttft_p99_ms=percentile(ttft, 99),
                local_tokens_per_s_p50=percentile(list(self._local_tps), 50),
                acceptance_rate=self._accepted / self._drafted if self._drafted else 0.0,
                cloud_spend=self._spend,
                fallbacks=self._fallbacks,
                local_energy_j=self._energy_j,
                local_tokens_per_j_p50=percentile(list(self._tokens_per_j), 50),
                energy_source=self._energy_source,
                tokens=dict(self._tokens),
                histograms={
                    "ttft_ms": self._hist_ttft.snapshot(),
                    "queue_wait_ms": self._hist_wait.snapshot(),
                    **{f"tokens_per_s:{side}": h.snapshot() for side, h in self._hist_tps.items()},
                },
            )
