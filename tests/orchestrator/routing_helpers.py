"""Builders shared by the orchestrator tests."""

from __future__ import annotations

from typing import Any

from orchestrator.types import Estimates, RouteRequest

# Local: 200 ms + 50 tok/s -> 128 tokens take ~2.8 s. Cloud: 300 ms + 100 tok/s -> ~1.6 s.
FAST_CLOUD = Estimates(
    local_ttft_ms=200.0,
    local_tokens_per_s=50.0,
    cloud_ttft_ms=300.0,
    cloud_tokens_per_s=100.0,
    cloud_available=True,
    cloud_price_in_per_1k=0.001,
    cloud_price_out_per_1k=0.002,
)


def est(**changes: Any) -> Estimates:
    base = FAST_CLOUD.__dict__ | changes
    return Estimates(**base)


def req(prompt: str = "Summarise the history of the printing press.", **kw: Any) -> RouteRequest:
    kw.setdefault("prompt_tokens", max(1, len(prompt) // 4))
    kw.setdefault("max_tokens", 128)
    return RouteRequest(prompt=prompt, **kw)
