"""The gRPC server lifecycle both servers share: health (per-name readiness),
reflection, and the drain on shutdown (readiness off, then ``server.stop(grace)``);
the bearer-token check of a listener (``BearerInterceptor``) and the client side of it
(``with_bearer``).

One lifecycle may span several servers (the daemon runs one per listener, so that each
has its own connection bound): they share one health servicer, so a readiness change
is seen on every listener at once, and they drain together.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

HEALTH_METHODS = "/grpc.health.v1.Health/"


class Lifecycle:
    """Health and reflection on ``servers``; ``readiness`` are the readiness names."""

    def __init__(
        self, servers: grpc.aio.Server | Sequence[grpc.aio.Server], service_names: Sequence[str], readiness: Sequence[str]
    ) -> None:
        self.servers = [servers] if isinstance(servers, grpc.aio.Server) else list(servers)
        self.server = self.servers[0]
        self.health = health.aio.HealthServicer()
        self.readiness = tuple(readiness)
        for server in self.servers:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection.enable_server_reflection((*service_names, reflection.SERVICE_NAME, health.SERVICE_NAME), server)

    async def set(self, names: Sequence[str], serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in names:
            await self.health.set(name, status)

    async def ready(self, serving: bool) -> None:
        await self.set(self.readiness, serving)

    async def drain(self, grace_s: float) -> None:
        """Readiness off, then stop: calls in flight get ``grace_s`` to finish."""
        await self.ready(False)
        await asyncio.gather(*(server.stop(grace_s) for server in self.servers))


def bearer_token(value: str | bytes) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` value (b"" if another scheme)."""
    # a token is ASCII: anything else never matches, and must not raise
    raw = value.encode("utf-8", "replace") if isinstance(value, str) else bytes(value)
    scheme, _, token = raw.strip().partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def bearer_of(metadata: Any) -> bytes:
    """The token of an ``authorization: Bearer <token>`` entry (b"" if none)."""
    for key, value in metadata or ():
        if key == "authorization":
            return bearer_token(value)
    return b""


def token_matches(given: bytes, expected: bytes) -> bool:
    """Constant-time comparison; an empty expected token matches nothing."""
    return bool(expected) and hmac.compare_digest(given, expected)


class BearerInterceptor(grpc.aio.ServerInterceptor):
    """Every call needs ``authorization: Bearer <token>`` accepted by ``accepts``,
    except methods under ``open_prefixes``; others get UNAUTHENTICATED with ``message``."""

    def __init__(self, accepts: Callable[[bytes], bool], message: str, open_prefixes: tuple[str, ...] = (HEALTH_METHODS,)) -> None:
        self._accepts = accepts
        self._message = message
        self._open = open_prefixes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(self._open) or self._accepts(bearer_of(details.invocation_metadata)):
            return await continuation(details)
        return _denying(await continuation(details), self._message)


def _denying(handler: grpc.RpcMethodHandler | None, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts with UNAUTHENTICATED."""

    async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield None  # pragma: no cover - abort raises

    des = handler.request_deserializer if handler else None
    ser = handler.response_serializer if handler else None
    if handler is not None and handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(deny_stream, des, ser)
    if handler is not None and handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(deny, des, ser)
    if handler is not None and handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(deny_stream, des, ser)
    return grpc.unary_unary_rpc_method_handler(deny, des, ser)


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _WithMetadata(
    grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor,
):
    """Adds fixed metadata to every call of a (synchronous) channel."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = tuple(pairs)

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = (*(d.metadata or ()), *self._pairs)
        return _CallDetails(d.method, d.timeout, metadata, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def with_bearer(channel: grpc.Channel, token: str) -> grpc.Channel:
    """``channel`` sending ``authorization: Bearer <token>`` on every call."""
    return grpc.intercept_channel(channel, _WithMetadata((("authorization", f"Bearer {token}"),)))
