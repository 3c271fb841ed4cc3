"""The one table from domain errors to gRPC status codes."""

from __future__ import annotations

import grpc
import pytest

from common import errors as e
from common.grpc_status import status_for


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (e.InvalidArgument("params.max_tokens", "must be >= 0"), grpc.StatusCode.INVALID_ARGUMENT, "params.max_tokens: must be >= 0"),
        (e.OutOfRange("prompt", "too long"), grpc.StatusCode.OUT_OF_RANGE, "prompt: too long"),
        (e.NotFound("item abc"), grpc.StatusCode.NOT_FOUND, "item abc"),
        (e.PermissionDenied("rule x"), grpc.StatusCode.PERMISSION_DENIED, "rule x"),
        (e.Unauthenticated("token"), grpc.StatusCode.UNAUTHENTICATED, "token"),
        (e.ResourceExhausted("queue full", retry_after_s=2.0), grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full (retry after 2.0s)"),
        (e.Unavailable("cloud down"), grpc.StatusCode.UNAVAILABLE, "cloud down"),
        (e.PolicyError("p.toml", "cost.daily", "a number >= 0"), grpc.StatusCode.FAILED_PRECONDITION, "p.toml: cost.daily: a number >= 0"),
        (e.DeadlineExceeded("late"), grpc.StatusCode.DEADLINE_EXCEEDED, "late"),
    ],
)
def test_domain_errors_map_to_codes(exc: Exception, code: grpc.StatusCode, message: str) -> None:
    assert status_for(exc) == (code, message)


def test_unknown_errors_become_internal_without_detail() -> None:
    code, message = status_for(KeyError("secret internals /home/user/db"))
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message and "KeyError" not in message
