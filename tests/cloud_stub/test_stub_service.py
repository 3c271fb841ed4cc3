"""The CloudInference service over real gRPC (port 0) with a scripted backend: Info,
limits (OUT_OF_RANGE naming the field), bearer auth, error mapping, cancellation."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stub_helpers import ScriptedBackend, generate, serving

from cloud_stub.backends import BackendError
from cloud_stub.server import StubSettings
from common.errors import InvalidArgument, OutOfRange, Rejected, ResourceExhausted
from common.grpc_status import status_for

SETTINGS = StubSettings(price_in_per_1k=0.25, price_out_per_1k=0.75, max_tokens_limit=64, max_prompt_bytes=100)


def test_info_reports_price_and_limits() -> None:
    async def main() -> cloud_pb2.InfoResponse:
        async with serving(ScriptedBackend(), SETTINGS) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await cloud_pb2_grpc.CloudInferenceStub(ch).Info(cloud_pb2.InfoRequest(), timeout=5)

    info = asyncio.run(main())
    assert (info.model, info.context_length, info.backend) == ("scripted", 2048, "scripted")
    assert (info.price_in_per_1k, info.price_out_per_1k, info.max_tokens_limit) == (0.25, 0.75, 64)


def test_generate_streams_deltas_then_done() -> None:
    backend = ScriptedBackend()

    async def main():  # type: ignore[no-untyped-def]
        async with serving(backend, SETTINGS) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch, "Say hi", max_tokens=0)

    r = asyncio.run(main())
    assert r.code is None and r.text == "Hello, world"
    assert r.done is not None and r.done.finish_reason == "stop"
    assert (r.done.usage.prompt_tokens, r.done.usage.completion_tokens) == (3, 3)
    assert backend.calls[0][1].max_tokens == StubSettings().default_max_tokens  # 0 means the default
    assert backend.closed  # closed at shutdown


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "code", "prefix"),
    [
        ("x" * 101, 8, grpc.StatusCode.OUT_OF_RANGE, "prompt:"),
        ("é" * 51, 8, grpc.StatusCode.OUT_OF_RANGE, "prompt:"),  # 102 bytes in UTF-8
        ("ok", 65, grpc.StatusCode.OUT_OF_RANGE, "params.max_tokens:"),
        ("ok", -1, grpc.StatusCode.INVALID_ARGUMENT, "params.max_tokens:"),
        ("", 8, grpc.StatusCode.INVALID_ARGUMENT, "prompt:"),
    ],
)
def test_limits_name_the_field(prompt: str, max_tokens: int, code: grpc.StatusCode, prefix: str) -> None:
    backend = ScriptedBackend()

    async def main():  # type: ignore[no-untyped-def]
        async with serving(backend, SETTINGS) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch, prompt, max_tokens=max_tokens)

    r = asyncio.run(main())
    assert r.code == code, r.details
    assert r.details.startswith(prefix)
    assert not r.deltas and not backend.calls


def test_limits_at_the_edge_pass() -> None:
    backend = ScriptedBackend()

    async def main():  # type: ignore[no-untyped-def]
        async with serving(backend, SETTINGS) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch, "x" * 100, max_tokens=64)

    r = asyncio.run(main())
    assert r.code is None and r.done is not None
    assert backend.calls[0][1].max_tokens == 64


def test_bearer_token_required_but_health_open() -> None:
    settings = StubSettings(token="s3cret")

    async def main():  # type: ignore[no-untyped-def]
        async with serving(ScriptedBackend(), settings) as addr, grpc.aio.insecure_channel(addr) as ch:
            none = await generate(ch)
            wrong = await generate(ch, metadata=[("authorization", "Bearer s3cres")])
            right = await generate(ch, metadata=[("authorization", "Bearer s3cret")])
            with pytest.raises(grpc.aio.AioRpcError) as info_err:
                await cloud_pb2_grpc.CloudInferenceStub(ch).Info(cloud_pb2.InfoRequest(), timeout=5)
            health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            return none, wrong, right, info_err.value.code(), health.status

    none, wrong, right, info_code, health = asyncio.run(main())
    assert none.code == wrong.code == info_code == grpc.StatusCode.UNAUTHENTICATED
    assert right.code is None and right.text == "Hello, world"
    assert health == health_pb2.HealthCheckResponse.SERVING


class _Failing(ScriptedBackend):
    def __init__(self, exc: Exception, after: int = 0) -> None:
        super().__init__()
        self.exc = exc
        self.after = after

    async def generate(self, prompt, params):  # type: ignore[no-untyped-def, override]
        for d in self.deltas[: self.after]:
            yield d
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "code", "details"),
    [
        (BackendError("upstream server answered HTTP 500"), grpc.StatusCode.UNAVAILABLE, "upstream server answered HTTP 500"),
        (ResourceExhausted("busy", retry_after_s=2.0), grpc.StatusCode.RESOURCE_EXHAUSTED, "busy (retry after 2.0s)"),
        (Rejected("rejected"), grpc.StatusCode.INVALID_ARGUMENT, "rejected"),
        (KeyError("/secret/path"), grpc.StatusCode.INTERNAL, "internal error; see the server log"),
    ],
)
def test_backend_errors_become_status_codes(exc: Exception, code: grpc.StatusCode, details: str) -> None:
    async def main():  # type: ignore[no-untyped-def]
        async with serving(_Failing(exc, after=2)) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch)

    r = asyncio.run(main())
    assert (r.code, r.details) == (code, details)
    assert r.deltas == ["Hello", ","]  # what was sent before the failure arrives first


def test_status_table_order() -> None:
    assert status_for(OutOfRange("prompt", "too big"))[0] == grpc.StatusCode.OUT_OF_RANGE
    assert status_for(InvalidArgument("prompt", "empty"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(RuntimeError("x")) == (grpc.StatusCode.INTERNAL, "internal error; see the server log")


def test_cancelled_call_closes_the_backend_stream() -> None:
    backend = ScriptedBackend(deltas=[f"t{i}" for i in range(100)], delay_s=0.02)

    async def main() -> None:
        async with serving(backend) as addr, grpc.aio.insecure_channel(addr) as ch:
            stub = cloud_pb2_grpc.CloudInferenceStub(ch)
            call = stub.Generate(cloud_pb2.CloudGenerateRequest(prompt="go"), timeout=10)
            got = 0
            async for _ in call:
                got += 1
                if got == 3:
                    call.cancel()
                    break
            for _ in range(100):
                if backend.closed_early:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert backend.closed_early == 1


def test_oversized_messages_are_refused_by_grpc_itself() -> None:
    backend = ScriptedBackend()

    async def main():  # type: ignore[no-untyped-def]
        async with serving(backend, SETTINGS) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch, "x" * (SETTINGS.max_prompt_bytes + 70 * 1024))

    r = asyncio.run(main())
    assert r.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not backend.calls
