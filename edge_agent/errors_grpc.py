"""The one table from domain errors to gRPC status codes, applied by an interceptor.

Servicers raise ``orchestrator.errors.DomainError`` subclasses; this interceptor turns
them into status codes with their public message. Anything else becomes INTERNAL with a
generic message, and the detail goes to the log with the request's method.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc

from orchestrator import errors as e

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
STATUS_TABLE: tuple[tuple[type[e.DomainError], grpc.StatusCode], ...] = (
    (e.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (e.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (e.PolicyError, grpc.StatusCode.FAILED_PRECONDITION),
    (e.NotFound, grpc.StatusCode.NOT_FOUND),
    (e.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (e.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (e.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (e.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (e.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (e.Cancelled, grpc.StatusCode.CANCELLED),
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(status code, public message) for an exception."""
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            message = exc.message
            if isinstance(exc, e.ResourceExhausted) and exc.retry_after_s is not None:
                message = f"{message} (retry after {exc.retry_after_s:.1f}s)"
            return code, message
    if isinstance(exc, e.DomainError):
        return grpc.StatusCode.UNKNOWN, exc.message
    return grpc.StatusCode.INTERNAL, "internal error; see the daemon log"


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error in %s", method, exc_info=exc)
    else:
        log.info("%s -> %s: %s", method, code.name, message)
    if isinstance(exc, e.ResourceExhausted) and exc.retry_after_s is not None:
        context.set_trailing_metadata((("retry-after-s", f"{exc.retry_after_s:.1f}"),))
    await context.abort(code, message)


def _wrap_unary(fn: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except (e.DomainError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, method, exc)

    return wrapper


def _wrap_stream(fn: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in fn(request, context):
                yield item
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, method, exc)

    return wrapper


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Applies ``STATUS_TABLE`` to every unary-unary and unary-stream method."""

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
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
