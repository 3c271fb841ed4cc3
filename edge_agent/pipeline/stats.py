"""In-memory counters and percentiles behind ``GetStats`` (bounded memory)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass


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

    def record(self, *, route: str, ttft_ms: float, local_tps: float | None, drafted: int, accepted: int, cost: float, fallback: bool) -> None:
        with self._lock:
            self._routes[route] += 1
            self._ttft.append(ttft_ms)
            if local_tps is not None:
                self._local_tps.append(local_tps)
            self._drafted += drafted
            self._accepted += accepted
            self._spend += cost
            self._fallbacks += int(fallback)

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
            )
