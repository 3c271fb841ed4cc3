"""The one domain error hierarchy of the project.

Every layer raises these; the gRPC servers map them to status codes in a single
table (``edge_agent/errors_grpc.py``), so no code sorts errors by message text.
Messages are public: they name the field or key and the rule, never internals.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of all expected errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A request field breaks a rule. ``field`` is its path, e.g. ``params.max_tokens``."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class OutOfRange(InvalidArgument):
    """A numeric field is beyond a documented limit."""


class NotFound(DomainError):
    """The named thing does not exist."""


class FailedPrecondition(DomainError):
    """The operation is refused in the current state (e.g. removing the model in use)."""


class PermissionDenied(DomainError):
    """The policy forbids this request (e.g. a reject rule fired)."""


class Unauthenticated(DomainError):
    """Missing or wrong credentials."""


class ResourceExhausted(DomainError):
    """A queue or budget is full; ``retry_after_s`` hints when to come back."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Rejected(DomainError):
    """Another service refused the request as invalid (e.g. an upstream HTTP 4xx)."""


class Unavailable(DomainError):
    """A dependency (the cloud, the model) cannot serve now."""


class DeadlineExceeded(DomainError):
    """The request's deadline passed."""


class Cancelled(DomainError):
    """The caller went away."""


class PolicyError(DomainError):
    """A policy file is invalid: names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        super().__init__(f"{file}: {key}: {expected}")
        self.file = file
        self.key = key
        self.expected = expected


class ConfigError(PolicyError):
    """A config file or environment override is invalid (same shape as PolicyError)."""
