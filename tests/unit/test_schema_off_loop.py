"""A JSON schema is checked off the event loop, so a health check is answered while a
schema request is being checked: on the daemon's gRPC door, its HTTP door (where a
large body is also parsed off the loop) and cloud-stub, each served in-process (no
model).

The schema check is replaced by a gate that holds until the test has had a health
answer: whatever the machine's speed, the health check can only be answered first if
the check runs in another thread. Were it on the event loop, the loop would be held and
the gate would give up after ``GATE_S`` (the test then fails).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import pytest
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc, common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import common.params
from cloud_stub.backends import BackendInfo, Done, Event, Params
from cloud_stub.server import StubSettings, run_server
from common.errors import InvalidArgument
from common.grpc_status import ErrorMappingInterceptor
from common.rpc import Lifecycle
from edge_agent.config import LimitsConfig
from edge_agent.pipeline.readiness import Readiness
from edge_agent.transport import openai_convert
from edge_agent.transport.grpc_server import SERVICE_NAME, EdgeAgentServicer
from edge_agent.transport.openai_http import OpenAIFrontDoor

GATE_S = 10.0
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


class Gate:
    """A schema check that blocks until ``open`` (or ``GATE_S``), then refuses."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.held_until_opened = False
        self.thread: threading.Thread | None = None

    def check(self, schema: Any, field: str = "json_schema") -> str:
        self.thread = threading.current_thread()
        self.entered.set()
        self.held_until_opened = self.opened.wait(GATE_S)
        raise InvalidArgument(field, "held by the test")

    async def wait_entered(self) -> None:
        while not self.entered.is_set():
            await asyncio.sleep(0.005)


# what the HTTP door reads of a ready service here: its state and its error counter
_READY = SimpleNamespace(model_state=lambda: {"state": "ready", "name": "m"}, stats=SimpleNamespace(error=lambda: None))


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    g = Gate()
    monkeypatch.setattr(common.params, "check_schema", g.check)  # every door's sampling check
    return g


def test_http_health_is_answered_while_a_schema_is_checked(gate: Gate) -> None:
    door = OpenAIFrontDoor(Readiness(_READY),  # type: ignore[arg-type]
                           model_name="m", limits=LimitsConfig(), max_body_bytes=1 << 20)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}}

    async def main() -> tuple[httpx.Response, bool, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://127.0.0.1") as client:
            pending = asyncio.create_task(client.post("/v1/chat/completions", json=body))
            await gate.wait_entered()
            health = await client.get("/health")
            still_checking = not pending.done()
            gate.opened.set()
            return health, still_checking, await pending

    health, still_checking, answer = asyncio.run(main())
    assert health.status_code == 200 and still_checking
    assert gate.held_until_opened and gate.thread is not threading.main_thread()
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "response_format.json_schema.schema"


def test_http_health_is_answered_while_a_large_body_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1.5 MB schema's body: parsing it (tens of ms) is not done on the loop either."""
    gate = Gate()
    monkeypatch.setattr(openai_convert, "parse_body", lambda raw: gate.check(raw, "body"))
    door = OpenAIFrontDoor(Readiness(_READY),  # type: ignore[arg-type]
                           model_name="m", limits=LimitsConfig(), max_body_bytes=4 << 20)
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(50000)}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}

    async def main() -> tuple[httpx.Response, bool, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://127.0.0.1") as client:
            pending = asyncio.create_task(client.post("/v1/chat/completions", json=body))
            await gate.wait_entered()
            health = await client.get("/health")
            still_parsing = not pending.done()
            gate.opened.set()
            return health, still_parsing, await pending

    health, still_parsing, answer = asyncio.run(main())
    assert health.status_code == 200 and still_parsing
    assert gate.held_until_opened and gate.thread is not threading.main_thread()
    assert answer.status_code == 400


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=GATE_S * 2)
    return int(reply.status)


def test_grpc_health_is_answered_while_a_schema_is_checked(gate: Gate) -> None:
    async def main() -> tuple[int, bool, grpc.StatusCode, str]:
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        pb_grpc.add_EdgeAgentServicer_to_server(EdgeAgentServicer(LimitsConfig(), Readiness()), server)  # type: ignore[arg-type]
        lifecycle = Lifecycle(server, (SERVICE_NAME,), readiness=("",))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await lifecycle.set(["liveness"], True)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                req = pb.GenerateRequest(prompt="hi", params=common_pb2.GenerationParams(json_schema=json.dumps(SCHEMA)))
                call = pb_grpc.EdgeAgentStub(ch).Complete(req, timeout=GATE_S * 2)
                pending = asyncio.ensure_future(call)
                await gate.wait_entered()
                status = await _health(ch, "liveness")
                still_checking = not pending.done()
                gate.opened.set()
                try:
                    await pending
                except grpc.aio.AioRpcError as err:
                    return status, still_checking, err.code(), err.details() or ""
                raise AssertionError("the request was not refused")
        finally:
            await server.stop(0)

    status, still_checking, code, details = asyncio.run(main())
    assert status == health_pb2.HealthCheckResponse.SERVING and still_checking
    assert gate.held_until_opened and gate.thread is not threading.main_thread()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("params.json_schema: ")


class _Quiet:
    """A backend that answers one word."""

    def info(self) -> BackendInfo:
        return BackendInfo(model="quiet", context_length=512, backend="test")

    async def generate(self, prompt: Any, params: Params) -> AsyncGenerator[Event, None]:
        yield "ok"
        yield Done(1, 1, 1.0, 1.0, "stop")

    async def aclose(self) -> None:
        return None


def test_cloud_stub_health_is_answered_while_a_schema_is_checked(gate: Gate) -> None:
    async def main() -> tuple[int, bool, grpc.StatusCode]:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(
            run_server(_Quiet(), StubSettings(), "127.0.0.1:0", ready=ready.set_result, stop_event=stop, grace_s=0.5)
        )
        port = await ready
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                req = cloud_pb2.CloudGenerateRequest(prompt="hi", params=common_pb2.GenerationParams(json_schema=json.dumps(SCHEMA)))
                call = cloud_pb2_grpc.CloudInferenceStub(ch).Generate(req, timeout=GATE_S * 2)

                async def drain() -> None:
                    async for _ in call:
                        pass

                pending = asyncio.ensure_future(drain())
                await gate.wait_entered()
                status = await _health(ch, "")
                still_checking = not pending.done()
                gate.opened.set()
                try:
                    await pending
                except grpc.aio.AioRpcError as err:
                    return status, still_checking, err.code()
                raise AssertionError("the request was not refused")
        finally:
            stop.set()
            await serving

    status, still_checking, code = asyncio.run(main())
    assert status == health_pb2.HealthCheckResponse.SERVING and still_checking
    assert gate.held_until_opened and gate.thread is not threading.main_thread()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
