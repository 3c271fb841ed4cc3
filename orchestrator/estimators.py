"""Live latency estimates of both sides, learned online with exponential smoothing.

Local time to first token is modelled as ``a + b * prompt_tokens``; ``a`` and ``b`` are
fitted by exponentially weighted least squares over the engine's own usage figures,
so prefill speed and fixed overhead are both learned. Decode rates (which include
speculative acceptance, as the engine reports effective tokens/s) and cloud round
trips are plain EWMAs. Priors come from the policy until observations arrive.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from orchestrator.policy_model import Latency
from orchestrator.types import Estimates


@dataclass
class _Ewma:
    alpha: float
    value: float
    count: int = 0

    def add(self, x: float) -> None:
        # The first observations weigh more so a wrong prior is forgotten quickly.
        a = max(self.alpha, 1.0 / (self.count + 1))
        self.value += a * (x - self.value)
        self.count += 1


class _LinearEwma:
    """Exponentially weighted least squares fit of ``y = a + b * x``."""

    def __init__(self, alpha: float, a: float, b: float) -> None:
        self.alpha = alpha
        self.a, self.b = a, b
        self.count = 0
        self._w = self._x = self._y = self._xx = self._xy = 0.0

    def add(self, x: float, y: float) -> None:
        d = 1.0 - self.alpha
        self._w = self._w * d + 1.0
        self._x = self._x * d + x
        self._y = self._y * d + y
        self._xx = self._xx * d + x * x
        self._xy = self._xy * d + x * y
        self.count += 1
        mx, my = self._x / self._w, self._y / self._w
        var = self._xx / self._w - mx * mx
        if var > 1e-6 * max(1.0, mx * mx) and self.count >= 3:
            b = (self._xy / self._w - mx * my) / var
            if b >= 0.0:
                self.a, self.b = max(0.0, my - b * mx), b
                return
        # Too little spread in prompt lengths to separate the terms: keep the slope,
        # move the intercept so the line passes through the weighted mean.
        self.a = max(0.0, my - self.b * mx)

    def predict(self, x: float) -> float:
        return self.a + self.b * x


class Estimators:
    """Thread-safe estimates fed by the engine and the cloud client."""

    def __init__(self, latency: Latency | None = None) -> None:
        lat = latency or Latency()
        self._lock = threading.Lock()
        self._local_ttft = _LinearEwma(
            lat.ewma_alpha, lat.local.ttft_ms, lat.local.ms_per_prompt_token
        )
        self._local_rate = _Ewma(lat.ewma_alpha, lat.local.tokens_per_s)
        self._cloud_ttft = _Ewma(lat.ewma_alpha, lat.cloud.ttft_ms)
        self._cloud_per_token = lat.cloud.ms_per_prompt_token
        self._cloud_rate = _Ewma(lat.ewma_alpha, lat.cloud.tokens_per_s)
        self._local_energy = _Ewma(lat.ewma_alpha, 0.0)  # joules per token, measured

    def observe_energy(self, joules_per_token: float) -> None:
        """One local generation's energy per (prompt + completion) token."""
        if joules_per_token > 0:
            with self._lock:
                self._local_energy.add(float(joules_per_token))

    def reconfigure(self, latency: Latency) -> None:
        """Apply a reloaded policy: new smoothing; new priors where nothing was observed."""
        with self._lock:
            for est in (self._local_ttft, self._local_rate, self._cloud_ttft, self._cloud_rate):
                est.alpha = latency.ewma_alpha
            if self._local_ttft.count == 0:
                self._local_ttft.a = latency.local.ttft_ms
                self._local_ttft.b = latency.local.ms_per_prompt_token
            if self._local_rate.count == 0:
                self._local_rate.value = latency.local.tokens_per_s
            if self._cloud_ttft.count == 0:
                self._cloud_ttft.value = latency.cloud.ttft_ms
            if self._cloud_rate.count == 0:
                self._cloud_rate.value = latency.cloud.tokens_per_s
            self._cloud_per_token = latency.cloud.ms_per_prompt_token

    def observe_local(
        self, prompt_tokens: int, ttft_ms: float, completion_tokens: int, tokens_per_s: float
    ) -> None:
        """One local generation's usage figures."""
        with self._lock:
            if ttft_ms >= 0 and prompt_tokens >= 0:
                self._local_ttft.add(float(prompt_tokens), float(ttft_ms))
            if completion_tokens >= 2 and tokens_per_s > 0:
                self._local_rate.add(float(tokens_per_s))

    def observe_cloud(self, ttft_ms: float, completion_tokens: int, tokens_per_s: float) -> None:
        """One cloud call's round trip (request sent -> first token) and decode rate."""
        with self._lock:
            if ttft_ms >= 0:
                self._cloud_ttft.add(float(ttft_ms))
            if completion_tokens >= 2 and tokens_per_s > 0:
                self._cloud_rate.add(float(tokens_per_s))

    def snapshot(
        self,
        *,
        prompt_tokens: int,
        cloud_available: bool,
        price_in_per_1k: float,
        price_out_per_1k: float,
    ) -> Estimates:
        """Estimates for a request of ``prompt_tokens`` tokens."""
        with self._lock:
            return Estimates(
                local_ttft_ms=self._local_ttft.predict(float(prompt_tokens)),
                local_tokens_per_s=self._local_rate.value,
                cloud_ttft_ms=self._cloud_ttft.value + self._cloud_per_token * prompt_tokens,
                cloud_tokens_per_s=self._cloud_rate.value,
                cloud_available=cloud_available,
                cloud_price_in_per_1k=price_in_per_1k,
                cloud_price_out_per_1k=price_out_per_1k,
                local_j_per_token=self._local_energy.value,
            )
