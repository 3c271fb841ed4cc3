"""Every domain error class through both front doors: the gRPC status code (through
``ErrorMappingInterceptor`` on a real in-process server), the HTTP status and the
OpenAI error type (through the OpenAI door's ASGI app), each counted once as an error.

The expected answers are written out here, apart from ``common.errors``: a class added
to the hierarchy without a row below fails ``test_every_class_has_a_row``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

import cloud_stub.backends
import edge_agent.context.schema
import edge_agent.datadir
import edge_agent.runtime.selfcheck
import edge_agent.transport.openai_http as oh
from common import errors as e
from common.grpc_status import ErrorMappingInterceptor
from edge_agent.config import LimitsConfig
from edge_agent.pipeline.readiness import Readiness
from edge_agent.pipeline.service import AgentService

C = grpc.StatusCode
GENERIC = "internal error; see the server log"

# class -> (an instance, gRPC code, HTTP status, OpenAI type, message shown)
ROWS: dict[type[Exception], tuple[Exception, grpc.StatusCode, int, str, bool]] = {
    e.DomainError: (e.DomainError("bare detail"), C.INTERNAL, 500, "server_error", False),
    e.InvalidArgument: (e.InvalidArgument("params.top_p", "must be in (0, 1]"), C.INVALID_ARGUMENT, 400, "invalid_request_error", True),
    e.OutOfRange: (e.OutOfRange("prompt", "too long"), C.OUT_OF_RANGE, 400, "invalid_request_error", True),
    e.NotFound: (e.NotFound("item abc"), C.NOT_FOUND, 404, "not_found_error", True),
    e.FailedPrecondition: (e.FailedPrecondition("model in use"), C.FAILED_PRECONDITION, 409, "invalid_request_error", True),
    e.PermissionDenied: (e.PermissionDenied("rule x"), C.PERMISSION_DENIED, 403, "permission_error", True),
    e.Unauthenticated: (e.Unauthenticated("token"), C.UNAUTHENTICATED, 401, "authentication_error", True),
    e.ResourceExhausted: (e.ResourceExhausted("queue full"), C.RESOURCE_EXHAUSTED, 429, "rate_limit_error", True),
    e.Rejected: (e.Rejected("upstream 422"), C.INVALID_ARGUMENT, 400, "invalid_request_error", True),
    e.Unavailable: (e.Unavailable("cloud down"), C.UNAVAILABLE, 503, "service_unavailable", True),
    e.DeadlineExceeded: (e.DeadlineExceeded("late"), C.DEADLINE_EXCEEDED, 504, "timeout", True),
    e.Cancelled: (e.Cancelled("gone"), C.CANCELLED, 499, "cancelled", True),
    e.PolicyError: (e.PolicyError("p.toml", "cost.daily", "a number >= 0"), C.FAILED_PRECONDITION, 409, "invalid_request_error", True),
    e.ConfigError: (e.ConfigError("c.toml", "server.listen", "an address"), C.FAILED_PRECONDITION, 409, "invalid_request_error", True),
    oh.PayloadTooLarge: (oh.PayloadTooLarge("body", "must be at most 10 bytes"), C.INVALID_ARGUMENT, 413, "invalid_request_error", True),
    oh.ModelNotFound: (oh.ModelNotFound("other"), C.NOT_FOUND, 404, "not_found_error", True),
    edge_agent.datadir.AlreadyRunning: (edge_agent.datadir.AlreadyRunning(Path("/d"), "pid 1"), C.FAILED_PRECONDITION, 409, "invalid_request_error", True),
    edge_agent.context.schema.SchemaError: (edge_agent.context.schema.SchemaError("newer schema"), C.FAILED_PRECONDITION, 409, "invalid_request_error", True),
    edge_agent.runtime.selfcheck.RuntimeUnusable: (edge_agent.runtime.selfcheck.RuntimeUnusable("bad build"), C.UNAVAILABLE, 503, "service_unavailable", True),
    cloud_stub.backends.BackendError: (cloud_stub.backends.BackendError("backend down"), C.UNAVAILABLE, 503, "service_unavailable", True),
    KeyError: (KeyError("secret internals /home/user/db"), C.INTERNAL, 500, "server_error", False),
}


def _subclasses(cls: type[Exception]) -> Iterator[type[Exception]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_class_has_a_row() -> None:
    product = {c for c in _subclasses(e.DomainError) if not c.__module__.startswith("tests")}
    assert product | {e.DomainError} <= set(ROWS), sorted(c.__qualname__ for c in product - set(ROWS))


async def _grpc_code(exc: Exception, counted: list[int]) -> tuple[grpc.StatusCode, str]:
    async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise exc

    handler = grpc.method_handlers_generic_handler("edgecloud.test.Errors", {"Fail": grpc.unary_unary_rpc_method_handler(fail)})
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor(on_error=lambda: counted.append(1))])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary("/edgecloud.test.Errors/Fail")(b"")
        return err.value.code(), err.value.details() or ""
    finally:
        await server.stop(0)


class _Failing(Readiness):
    """A readiness whose service raises ``exc``; counts the errors answered."""

    def __init__(self, exc: Exception, counted: list[int]) -> None:
        super().__init__()
        self._exc, self._counted = exc, counted

    @property
    def service(self) -> AgentService:
        raise self._exc

    def count_error(self) -> None:
        self._counted.append(1)


async def _http_answer(exc: Exception, counted: list[int]) -> httpx.Response:
    door = oh.OpenAIFrontDoor(_Failing(exc, counted), model_name="m", limits=LimitsConfig(), max_body_bytes=1 << 20)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://localhost") as client:
        return await client.post("/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 4})


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__qualname__)
def test_each_error_through_both_doors(cls: type[Exception]) -> None:
    exc, code, http, kind, shown = ROWS[cls]
    grpc_counted: list[int] = []
    http_counted: list[int] = []
    got_code, details = asyncio.run(_grpc_code(exc, grpc_counted))
    response = asyncio.run(_http_answer(exc, http_counted))
    error = response.json()["error"]
    assert (got_code, response.status_code, error["type"]) == (code, http, kind)
    message = exc.message if isinstance(exc, e.DomainError) else ""
    assert (details, error["message"]) == ((message, message) if shown else (GENERIC, GENERIC))
    assert (grpc_counted, http_counted) == ([1], [1])


def test_every_declared_grpc_name_is_a_status_code() -> None:
    for cls in ROWS:
        if issubclass(cls, e.DomainError):
            assert cls.wire.grpc in C.__members__, cls


def test_a_mid_stream_failure_is_counted_once() -> None:
    """An error after the first token is still one failed request (the HTTP status is
    sent already, so it travels as an ``error`` event)."""
    counted: list[int] = []
    answer = oh._Answer(chat=False, model="m", request_id="r")
    answer.on_error = lambda: counted.append(1)

    async def events() -> AsyncGenerator[str, None]:
        yield "x"
        raise e.Unavailable("cloud went away")

    async def main() -> list[bytes]:
        stream = events()
        first = await anext(stream)
        return [chunk async for chunk in oh._sse(answer, first, stream, "POST /v1/completions")]

    chunks = asyncio.run(main())
    assert b"cloud went away" in chunks[-1] and counted == [1]
