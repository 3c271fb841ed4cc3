"""Bodies that used to end in HTTP 500 with a traceback are 400s naming the field: lone
surrogates, JSON nested 10k deep, a 5,000-digit integer, ``"seed": -1``, a client that
goes away while sending the body (ASGI in-process, on the fakes)."""

from __future__ import annotations

import asyncio
import logging
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
CHAT = b'{"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4'


def _door() -> tuple[OpenAIFrontDoor, AgentService]:
    svc = AgentService(ScriptedEngine("one two three"), MemoryStore(), RoutingState(""), keep_alive_s=300.0)
    return OpenAIFrontDoor(Readiness(svc), model_name="scripted", limits=LimitsConfig(), max_body_bytes=1 << 20), svc


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"model": "scripted", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
        (CHAT + b', "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "body"),
        (CHAT + b', "seed": ' + b"7" * 5000 + b"}", "body"),
        (CHAT + b', "seed": -1}', "seed"),
        (CHAT + b', "max_tokenz": 5}', "max_tokenz"),
        (CHAT + b', "edgecloud": {"top_k": -3}}', "edgecloud.top_k"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(raw: bytes, param: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> httpx.Response:
        door, svc = _door()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://localhost") as c:
                return await c.post("/v1/chat/completions", content=raw, headers=HEADERS)
        finally:
            await svc.close()

    with caplog.at_level(logging.INFO):
        r = asyncio.run(main())
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_a_client_that_goes_away_while_sending_the_body(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": CHAT[:20], "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        door, svc = _door()
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                 "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        try:
            await door(scope, receive, send)
        finally:
            await svc.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert sent and sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
