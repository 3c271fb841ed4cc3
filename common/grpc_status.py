"""Domain errors as gRPC status codes, applied once by an interceptor.

Servicers raise ``common.errors.DomainError`` subclasses; this interceptor answers
each with the status code its class declares (``common.errors.Wire``, the table the
HTTP door reads too) and its public message. Anything else, a bare ``DomainError``
included, becomes INTERNAL with a generic message, and the detail goes to the log with
the request's method.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from common import errors as e
from common.wire import bad_utf8_field

log = logging.getLogger(__name__)

def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(status code, public message) for an exception, from its class's ``Wire``."""
    code = grpc.StatusCode[e.wire_of(exc).grpc]
    message = e.public_message(exc)
    if isinstance(exc, e.ResourceExhausted) and exc.retry_after_s is not None:
        message = f"{message} (retry after {exc.retry_after_s:.1f}s)"
    return code, message


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error in %s", method, exc_info=exc)
    elif isinstance(exc, (e.Unavailable, e.DeadlineExceeded)):
        log.warning("%s -> %s: %s", method, code.name, message)
    else:
        log.info("%s -> %s: %s", method, code.name, message)
    if isinstance(exc, e.ResourceExhausted) and exc.retry_after_s is not None:
        context.set_trailing_metadata((("retry-after-s", f"{exc.retry_after_s:.1f}"),))
    await context.abort(code, message)


def _decoder(handler: grpc.RpcMethodHandler, method: str) -> Callable[[Any], Any]:
    """Deserialise inside the wrapped call, so a request that does not decode is an
    INVALID_ARGUMENT through the table instead of grpc's own UNKNOWN with raw text."""
    deserialize = handler.request_deserializer

    def decode(raw: Any) -> Any:
        if deserialize is None or not isinstance(raw, bytes):
            return raw
        try:
            return deserialize(raw)
        except DecodeError:
            name = method.rsplit("/", 1)[-1]
            desc = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
            field = bad_utf8_field(desc, raw) if desc is not None else None
            if field:
                raise e.InvalidArgument(field, "must be valid UTF-8 text") from None
            raise e.InvalidArgument("request", f"must be a valid {name} request message (bytes do not decode)") from None

    return decode


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Applies ``status_for`` to every unary-unary and unary-stream method.

    ``on_error`` is called once for every edgecloud request answered with an error
    status (for the daemon's error counter).
    """

    def __init__(self, on_error: Callable[[], None] | None = None) -> None:
        self._on_error = on_error

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
        if self._on_error is not None and method.startswith("/edgecloud."):
            self._on_error()
        await _abort(context, method, exc)

    def _unary(self, handler: grpc.RpcMethodHandler, method: str) -> Callable[..., Awaitable[Any]]:
        fn, decode = handler.unary_unary, _decoder(handler, method)

        async def wrapper(raw: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await fn(decode(raw), context)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._fail(context, method, exc)

        return wrapper

    def _stream(self, handler: grpc.RpcMethodHandler, method: str) -> Callable[..., AsyncIterator[Any]]:
        fn, decode = handler.unary_stream, _decoder(handler, method)

        async def wrapper(raw: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in fn(decode(raw), context):
                    yield item
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._fail(context, method, exc)

        return wrapper

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler, method), request_deserializer=None, response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler, method), request_deserializer=None, response_serializer=handler.response_serializer
            )
        return handler
