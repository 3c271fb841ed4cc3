"""One readiness for both doors: not ready while starting (HTTP 503 ``starting``, gRPC
readiness NOT_SERVING until the service is attached); once started, a model freed when
idle or being read again for a request is still ready (HTTP 200, as gRPC says SERVING)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from edge_agent.config import LimitsConfig
from edge_agent.pipeline.readiness import Readiness
from edge_agent.transport.openai_http import OpenAIFrontDoor


def _health(ready: Readiness) -> httpx.Response:
    door = OpenAIFrontDoor(ready, model_name="m", limits=LimitsConfig(), max_body_bytes=1 << 20)

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://localhost") as c:
            return await c.get("/health")

    return asyncio.run(main())


def test_starting_is_not_ready() -> None:
    ready = Readiness()
    assert not ready.health().serving and not ready.ready
    r = _health(ready)
    assert (r.status_code, r.json()["status"]) == (503, "starting")


@pytest.mark.parametrize("state", ["ready", "unloaded", "loading"])
def test_once_started_every_model_state_is_ready(state: str) -> None:
    service = SimpleNamespace(model_state=lambda: {"state": state, "name": "m"})
    ready = Readiness(service)  # type: ignore[arg-type]
    assert ready.health().serving and ready.ready  # what gRPC health's readiness says (SERVING once attached)
    r = _health(ready)
    assert (r.status_code, r.json()) == (200, {"status": state, "model": "m"})
