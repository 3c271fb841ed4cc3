"""The CloudInference gRPC service: bearer auth, health, reflection, backend streaming."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc, common_pb2
from edgecloud.validate import check_params
from orchestrator.errors import InvalidArgument

from .backends import Backend, BackendError, Done, Params

log = logging.getLogger(__name__)

SERVICE_NAME = cloud_pb2.DESCRIPTOR.services_by_name["CloudInference"].full_name
_OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class StubSettings:
    """What the service announces and enforces."""

    token: str = ""
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    max_tokens_limit: int = 4096
    default_max_tokens: int = 128


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without ``authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(_OPEN_METHODS):
            return await continuation(details)
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        got_b = got.encode() if isinstance(got, str) else got
        if hmac.compare_digest(got_b, self._expected):
            return await continuation(details)
        handler = await continuation(details)

        async def deny_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization: missing or wrong bearer token")

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization: missing or wrong bearer token")
            yield None  # pragma: no cover - abort raises

        if handler is not None and handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                deny_stream, handler.request_deserializer, handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            deny_unary,
            handler.request_deserializer if handler else None,
            handler.response_serializer if handler else None,
        )


class CloudServicer(cloud_pb2_grpc.CloudInferenceServicer):
    """Thin: validate, call the backend, convert events to messages."""

    def __init__(self, backend: Backend, settings: StubSettings) -> None:
        self._backend = backend
        self._settings = settings

    async def Info(self, request: cloud_pb2.InfoRequest, context: grpc.aio.ServicerContext) -> cloud_pb2.InfoResponse:
        info = self._backend.info()
        return cloud_pb2.InfoResponse(
            model=info.model,
            context_length=info.context_length,
            price_in_per_1k=self._settings.price_in_per_1k,
            price_out_per_1k=self._settings.price_out_per_1k,
            max_tokens_limit=self._settings.max_tokens_limit,
            backend=info.backend,
        )

    async def Generate(
        self, request: cloud_pb2.CloudGenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[cloud_pb2.CloudGenerateResponse]:
        try:
            if not request.prompt:
                raise InvalidArgument("prompt", "must not be empty")
            p = check_params(
                request.params,
                default_max_tokens=self._settings.default_max_tokens,
                max_tokens_limit=self._settings.max_tokens_limit,
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        params = Params(p.max_tokens, p.temperature, p.top_p, p.top_k, p.seed, p.stop)
        log.info("generate request_id=%s prompt_chars=%d max_tokens=%d", request.request_id, len(request.prompt), p.max_tokens)
        try:
            async for event in self._backend.generate(request.prompt, params):
                if isinstance(event, Done):
                    decode_s = max(event.total_ms - event.ttft_ms, 1e-3) / 1000
                    usage = common_pb2.Usage(
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        ttft_ms=event.ttft_ms,
                        total_ms=event.total_ms,
                        tokens_per_s=max(event.completion_tokens - 1, 0) / decode_s,
                    )
                    yield cloud_pb2.CloudGenerateResponse(
                        done=cloud_pb2.CloudDone(usage=usage, finish_reason=event.finish_reason)
                    )
                else:
                    yield cloud_pb2.CloudGenerateResponse(delta=event)
        except BackendError as exc:
            log.warning("backend failed request_id=%s: %s", request.request_id, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


async def run_server(
    backend: Backend,
    settings: StubSettings,
    listen: str,
    *,
    ready: Callable[[int], None] | None = None,
    stop_event: asyncio.Event | None = None,
    grace_s: float = 5.0,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop_event``), then shut down in order."""
    interceptors = [BearerAuthInterceptor(settings.token)] if settings.token else []
    server = grpc.aio.server(interceptors=interceptors)
    cloud_pb2_grpc.add_CloudInferenceServicer_to_server(CloudServicer(backend, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), server)
    port = server.add_insecure_port(listen)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("cloud-stub listening on %s (port %d)", listen, port)
    if ready:
        ready(port)
    await stop.wait()
    log.info("cloud-stub shutting down")
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace_s)
    await backend.aclose()
