"""The CloudInference gRPC service: bearer auth, TLS/mTLS, limits, health, reflection,
backend streaming. Errors become status codes through the one table both servers use
(``common.grpc_status``)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import grpc
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc, common_pb2

from cloud_stub.backends import Backend, Done, Params
from common.chat import ROLES, Message, Prompt, as_text
from common.errors import InvalidArgument, OutOfRange
from common.grpc_status import ErrorMappingInterceptor
from common.params import check_params
from common.rpc import Lifecycle
from common.schema_limits import check_schema_bytes

log = logging.getLogger(__name__)

SERVICE_NAME = cloud_pb2.DESCRIPTOR.services_by_name["CloudInference"].full_name
_OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Room for the other request fields on top of the prompt.
_MESSAGE_SLACK_BYTES = 64 * 1024

@dataclass(frozen=True)
class StubSettings:
    """What the service announces and enforces."""

    token: str = ""
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    max_tokens_limit: int = 4096
    default_max_tokens: int = 128
    max_prompt_bytes: int = 256 * 1024


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

    def _check(self, request: cloud_pb2.CloudGenerateRequest) -> tuple[Prompt, Params]:
        limit = self._settings.max_prompt_bytes
        prompt: Prompt
        if request.messages:
            if request.prompt:
                raise InvalidArgument("messages", "set exactly one of prompt and messages")
            for i, m in enumerate(request.messages):
                if m.role not in ROLES:
                    raise InvalidArgument(f"messages[{i}].role", f"one of {', '.join(ROLES)}")
                if not m.content:
                    raise InvalidArgument(f"messages[{i}].content", "must not be empty")
            prompt = tuple(Message(m.role, m.content) for m in request.messages)
            size = sum(len(m.content.encode()) for m in prompt)
            field = "messages"
        else:
            if not request.prompt:
                raise InvalidArgument("prompt", "must not be empty")
            prompt, size, field = request.prompt, len(request.prompt.encode()), "prompt"
        if size > limit:
            raise OutOfRange(field, f"must be at most {limit} bytes in UTF-8 (got {size})")
        p = check_params(
            request.params,
            default_max_tokens=self._settings.default_max_tokens,
            max_tokens_limit=self._settings.max_tokens_limit,
        )
        return prompt, p

    async def Generate(
        self, request: cloud_pb2.CloudGenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[cloud_pb2.CloudGenerateResponse]:
        if request.params.json_schema:  # checking a schema takes milliseconds: not on the event loop
            check_schema_bytes(request.params.json_schema, "params.json_schema")
            prompt, params = await asyncio.to_thread(self._check, request)
        else:
            prompt, params = self._check(request)
        log.info(
            "generate request_id=%s messages=%d prompt_bytes=%d max_tokens=%d",
            request.request_id, len(request.messages), len(as_text(prompt).encode()), params.max_tokens,
        )
        async with aclosing(self._backend.generate(prompt, params)) as events:
            async for event in events:
                yield _to_message(event)


def _to_message(event: str | Done) -> cloud_pb2.CloudGenerateResponse:
    if not isinstance(event, Done):
        return cloud_pb2.CloudGenerateResponse(delta=event)
    decode_s = max(event.total_ms - event.ttft_ms, 1e-3) / 1000
    usage = common_pb2.Usage(
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        ttft_ms=event.ttft_ms,
        total_ms=event.total_ms,
        tokens_per_s=max(event.completion_tokens - 1, 0) / decode_s,
    )
    return cloud_pb2.CloudGenerateResponse(done=cloud_pb2.CloudDone(usage=usage, finish_reason=event.finish_reason))


async def run_server(
    backend: Backend,
    settings: StubSettings,
    listen: str,
    *,
    ready: Callable[[int], None] | None = None,
    stop_event: asyncio.Event | None = None,
    grace_s: float = 5.0,
    credentials: grpc.ServerCredentials | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop_event``), then shut down in order.

    With ``credentials`` (see ``tls.server_credentials``) the port speaks TLS only.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [BearerAuthInterceptor(settings.token)] if settings.token else []
    interceptors.append(ErrorMappingInterceptor())
    max_message = settings.max_prompt_bytes + _MESSAGE_SLACK_BYTES
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", max_message)],
    )
    cloud_pb2_grpc.add_CloudInferenceServicer_to_server(CloudServicer(backend, settings), server)
    lifecycle = Lifecycle(server, (SERVICE_NAME,), readiness=("", SERVICE_NAME))
    if credentials is not None:
        port = server.add_secure_port(listen, credentials)
    else:
        port = server.add_insecure_port(listen)
    await server.start()
    await lifecycle.ready(True)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop_event is None else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    log.info("cloud-stub listening on %s (port %d)", listen, port)
    if ready:
        ready(port)
    await stop.wait()
    log.info("cloud-stub shutting down")
    await lifecycle.drain(grace_s)
    for sig in signals:
        loop.remove_signal_handler(sig)
    await backend.aclose()
