"""Validation of the shared wire messages against the rules documented in the protos.

Hand-written (not generated); used by both services so a ``GenerationParams`` means the
same everywhere. Errors name the field path and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from common.errors import InvalidArgument, OutOfRange

MAX_STOP_SEQUENCES = 8
MAX_STOP_CHARS = 64


@dataclass(frozen=True)
class CheckedParams:
    """GenerationParams with defaults applied and every rule checked."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    stop: tuple[str, ...]


class ParamsMessage(Protocol):
    """The fields of ``edgecloud.v1.GenerationParams`` this check reads."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int

    @property
    def stop(self) -> Sequence[str]: ...

    def HasField(self, name: str) -> bool: ...


def check_params(msg: ParamsMessage, *, default_max_tokens: int, max_tokens_limit: int, prefix: str = "params") -> CheckedParams:
    """Validate an ``edgecloud.v1.GenerationParams`` message."""
    max_tokens = int(msg.max_tokens)
    if max_tokens < 0:
        raise InvalidArgument(f"{prefix}.max_tokens", "must be >= 0 (0 means the default)")
    if max_tokens > max_tokens_limit:
        raise OutOfRange(f"{prefix}.max_tokens", f"must be <= {max_tokens_limit}")
    temperature = float(msg.temperature)
    if not 0.0 <= temperature <= 2.0:  # also rejects NaN
        raise InvalidArgument(f"{prefix}.temperature", "must be in [0, 2]")
    top_p = float(msg.top_p)
    if not 0.0 <= top_p <= 1.0:
        raise InvalidArgument(f"{prefix}.top_p", "must be in [0, 1] (0 means 1)")
    top_k = int(msg.top_k)
    if top_k < 0:
        raise InvalidArgument(f"{prefix}.top_k", "must be >= 0 (0 means no cut)")
    stop = tuple(msg.stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(f"{prefix}.stop", f"at most {MAX_STOP_SEQUENCES} sequences")
    for i, s in enumerate(stop):
        if not s or len(s) > MAX_STOP_CHARS:
            raise InvalidArgument(f"{prefix}.stop[{i}]", f"must be 1..{MAX_STOP_CHARS} characters")
    seed = int(msg.seed) if msg.HasField("seed") else None
    return CheckedParams(
        max_tokens=max_tokens or default_max_tokens,
        temperature=temperature,
        top_p=top_p or 1.0,
        top_k=top_k,
        seed=seed,
        stop=stop,
    )
