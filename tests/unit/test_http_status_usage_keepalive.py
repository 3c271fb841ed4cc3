"""The HTTP door on the fakes (ASGI in-process): ``stream_options.include_usage`` ends the
stream with a ``choices: []`` chunk carrying the usage, ``GET /v1/status`` says what is
running, a top-level ``keep_alive`` (0 unloads after the answer) is taken per request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from edge_agent.config import LimitsConfig
from edge_agent.pipeline.fakes import MemoryStore, ScriptedEngine
from edge_agent.pipeline.readiness import Readiness
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.service import AgentService
from edge_agent.transport.openai_http import OpenAIFrontDoor

HEADERS = {"content-type": "application/json"}


def _door(keep_alive_s: float | None = 300.0) -> tuple[OpenAIFrontDoor, AgentService, ScriptedEngine]:
    engine = ScriptedEngine("one two three")
    svc = AgentService(engine, MemoryStore(), RoutingState(""), keep_alive_s=keep_alive_s)
    door = OpenAIFrontDoor(Readiness(svc), model_name="scripted", limits=LimitsConfig(), max_body_bytes=1 << 20)
    return door, svc, engine


async def _post(door: OpenAIFrontDoor, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://localhost") as client:
        return await client.post("/v1/chat/completions", json=body, headers=HEADERS)


async def _get(door: OpenAIFrontDoor, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://localhost") as client:
        return await client.get(path)


def _events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "count"}], "max_tokens": 8}


def test_include_usage_sends_a_last_chunk_without_choices() -> None:
    async def main() -> None:
        door, svc, _ = _door()
        r = await _post(door, CHAT | {"stream": True, "stream_options": {"include_usage": True}})
        assert r.status_code == 200, r.text
        assert r.text.rstrip().endswith("data: [DONE]")
        chunks = _events(r.text)
        *deltas, last = chunks
        assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
        assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 3
        assert all(c["usage"] is None and c["choices"] for c in deltas)
        assert deltas[-1]["choices"][0]["finish_reason"] is not None
        await svc.close()

    asyncio.run(main())


def test_stream_options_are_checked() -> None:
    async def main() -> None:
        door, svc, _ = _door()
        r = await _post(door, CHAT | {"stream_options": {"include_usage": True}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options"
        r = await _post(door, CHAT | {"stream": True, "stream_options": {"include_usage": "yes"}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options.include_usage"
        await svc.close()

    asyncio.run(main())


def test_status_says_what_is_running() -> None:
    async def main() -> None:
        door, svc, _ = _door(keep_alive_s=300.0)
        r = await _get(door, "/v1/status")
        assert r.status_code == 200
        st = r.json()
        assert (st["status"], st["model"], st["keep_alive_s"], st["expires_in_s"]) == ("ready", "scripted", 300.0, None)
        assert st["requests"] == {"active": 0, "waiting": 0, "queue_depth": svc.slot.depth}
        assert set(st["memory_mib"]) == {"weights", "kv_cache", "kv_types", "resident"}
        await _post(door, CHAT)
        st = (await _get(door, "/v1/status")).json()
        assert 0 < st["expires_in_s"] <= 300.0
        await svc.close()

    asyncio.run(main())


@pytest.mark.parametrize("stream", [False, True])
def test_keep_alive_zero_unloads_after_the_answer(stream: bool) -> None:
    async def main() -> None:
        door, svc, engine = _door(keep_alive_s=300.0)
        r = await _post(door, CHAT | {"keep_alive": 0, "stream": stream})
        assert r.status_code == 200, r.text
        for _ in range(200):
            if not engine.loaded:
                break
            await asyncio.sleep(0.01)
        assert not engine.loaded and engine.unloads == 1
        assert (await _get(door, "/v1/status")).json()["status"] == "unloaded"
        await svc.close()

    asyncio.run(main())


def test_keep_alive_takes_durations_and_forever() -> None:
    async def main() -> None:
        door, svc, engine = _door(keep_alive_s=300.0)
        assert (await _post(door, CHAT | {"keep_alive": "10m"})).status_code == 200
        assert 300 < svc.model_state()["expires_in_s"] <= 600
        assert (await _post(door, CHAT | {"keep_alive": -1})).status_code == 200
        assert svc.model_state()["expires_in_s"] == -1.0 and engine.loaded
        r = await _post(door, CHAT | {"keep_alive": "soon"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "keep_alive"
        await svc.close()

    asyncio.run(main())


def test_a_model_alias_is_the_id_apps_see_and_the_file_name_still_works() -> None:
    async def main() -> None:
        engine = ScriptedEngine("one two three")
        svc = AgentService(engine, MemoryStore(), RoutingState(""))
        door = OpenAIFrontDoor(Readiness(svc), model_name="scripted", limits=LimitsConfig(), max_body_bytes=1 << 20,
                               alias="assistant")
        listed = (await _get(door, "/v1/models")).json()
        assert [m["id"] for m in listed["data"]] == ["assistant"]
        for name in ("assistant", "scripted", "assistant:latest"):
            r = await _post(door, CHAT | {"model": name})
            assert r.status_code == 200 and r.json()["model"] == "assistant", r.text
        assert (await _post(door, CHAT | {"model": "other"})).status_code == 404
        assert (await _get(door, "/v1/models/scripted")).status_code == 200
        await svc.close()

    asyncio.run(main())
