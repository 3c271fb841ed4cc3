"""The one domain error hierarchy of the project, and how each error is answered.

Every layer raises these. Each class declares its ``Wire``: the gRPC status code, the
HTTP status and the OpenAI error type it is answered with, so both front doors read
one table (``common.grpc_status`` for gRPC, ``edge_agent.transport.openai_http`` for
HTTP) and no code sorts errors by message text. A subclass inherits its parent's
answer unless it declares its own.

Messages are public: they name the field or key and the rule, never internals. A bare
``DomainError`` (or any exception outside the hierarchy) is not an expected error: it
is answered INTERNAL / 500 with ``GENERIC_MESSAGE``, and the detail goes to the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Wire:
    """How an error is answered at the front doors.

    ``grpc`` is a ``grpc.StatusCode`` name (kept as text so this module needs no gRPC),
    ``http`` the HTTP status, ``openai`` the OpenAI error object's ``type`` and ``code``
    its ``code``; ``public`` says whether the message may be shown to the caller.
    """

    grpc: str
    http: int
    openai: str
    code: str | None = None
    public: bool = True


GENERIC_MESSAGE = "internal error; see the server log"
INTERNAL = Wire("INTERNAL", 500, "server_error", public=False)
_INVALID = Wire("INVALID_ARGUMENT", 400, "invalid_request_error")
_PRECONDITION = Wire("FAILED_PRECONDITION", 409, "invalid_request_error")


class DomainError(Exception):
    """Base of all expected errors; raised bare it is answered as an internal error."""

    wire: ClassVar[Wire] = INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A request field breaks a rule. ``field`` is its path, e.g. ``params.max_tokens``."""

    wire = _INVALID

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class OutOfRange(InvalidArgument):
    """A numeric field is beyond a documented limit."""

    wire = Wire("OUT_OF_RANGE", 400, "invalid_request_error")


class NotFound(DomainError):
    """The named thing does not exist."""

    wire = Wire("NOT_FOUND", 404, "not_found_error")


class FailedPrecondition(DomainError):
    """The operation is refused in the current state (e.g. removing the model in use)."""

    wire = _PRECONDITION


class PermissionDenied(DomainError):
    """The policy forbids this request (e.g. a reject rule fired)."""

    wire = Wire("PERMISSION_DENIED", 403, "permission_error")


class Unauthenticated(DomainError):
    """Missing or wrong credentials."""

    wire = Wire("UNAUTHENTICATED", 401, "authentication_error", code="invalid_api_key")


class ResourceExhausted(DomainError):
    """A queue or budget is full; ``retry_after_s`` hints when to come back."""

    wire = Wire("RESOURCE_EXHAUSTED", 429, "rate_limit_error")

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Rejected(DomainError):
    """Another service refused the request as invalid (e.g. an upstream HTTP 4xx)."""

    wire = _INVALID


class Unavailable(DomainError):
    """A dependency (the cloud, the model) cannot serve now."""

    wire = Wire("UNAVAILABLE", 503, "service_unavailable")


class DeadlineExceeded(DomainError):
    """The request's deadline passed."""

    wire = Wire("DEADLINE_EXCEEDED", 504, "timeout")


class Cancelled(DomainError):
    """The caller went away."""

    wire = Wire("CANCELLED", 499, "cancelled")


class PolicyError(DomainError):
    """A policy file is invalid: names the file, the key path and what was expected.

    Answered as a failed precondition: the daemon's policy, not the request, is wrong.
    """

    wire = _PRECONDITION

    def __init__(self, file: str, key: str, expected: str) -> None:
        super().__init__(f"{file}: {key}: {expected}")
        self.file = file
        self.key = key
        self.expected = expected


class ConfigError(PolicyError):
    """A config file or environment override is invalid (same shape as PolicyError)."""


def wire_of(exc: BaseException) -> Wire:
    """How ``exc`` is answered: its class's ``Wire``, INTERNAL outside the hierarchy."""
    return exc.wire if isinstance(exc, DomainError) else INTERNAL


def public_message(exc: BaseException) -> str:
    """The message a caller may see: the error's own, or the generic one."""
    if isinstance(exc, DomainError) and exc.wire.public:
        return exc.message
    return GENERIC_MESSAGE
