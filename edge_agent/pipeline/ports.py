"""The ports of the request path: what the pipeline needs from the world, as Protocols.

The adapters (``edge_agent.adapters``: the gRPC cloud client, the SQLite ledger; the
SQLite context store; the llama.cpp engine) implement them, and so do the fakes in
``edge_agent.pipeline.fakes``, which the fast tests run the whole pipeline on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from common.chat import Prompt
from edge_agent.context.api import Hit, NewItem, Retrieved
from edge_agent.engine.api import Engine, SamplingParams
from orchestrator.budget import Spend

__all__ = [
    "CloudDone",
    "CloudEvent",
    "CloudFailure",
    "CloudInfo",
    "CloudLink",
    "CloudUsage",
    "ContextStore",
    "Engine",
    "Ledger",
]


class ContextStore(Protocol):
    """The personal-context store (``edge_agent.context.store.ContextStore``)."""

    def retrieve(
        self,
        query: str,
        *,
        token_budget: int,
        count_tokens: Callable[[str], int],
        vector: npt.NDArray[np.float32] | None = None,
        vector_model: str = "",
    ) -> Retrieved: ...

    def contact_names(self) -> list[str]: ...

    def put(self, items: Sequence[NewItem]) -> list[str]: ...

    def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        tags: Sequence[str] = (),
        sensitivities: Sequence[str] = (),
        limit: int = 10,
    ) -> list[Hit]: ...

    def delete(
        self,
        *,
        ids: Sequence[str] = (),
        source: str | None = None,
        query: str | None = None,
        everything: bool = False,
    ) -> int: ...

    def stats(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class VectorStore(Protocol):
    """The store's side of hybrid retrieval: items to embed, their vectors."""

    def unembedded(self, vector_model: str, limit: int = 16) -> list[tuple[str, float, str]]: ...

    def put_vectors(
        self, vector_model: str, rows: Sequence[tuple[str, float, npt.NDArray[np.float32]]]
    ) -> int: ...

    def drop_vectors(self, *, keep_model: str) -> int: ...

    def vector_count(self, vector_model: str) -> int: ...


class Ledger(Protocol):
    """The egress ledger: one row per cloud attempt whose bytes left the device."""

    def record(
        self,
        *,
        request_id: str,
        rule: str,
        target: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        pii_kinds_redacted: Sequence[str],
        text_sha256: str,
        attempt: int,
        outcome: str,
        app_id: str = "",
    ) -> None: ...

    def spend(self, now: datetime | None = None) -> Spend: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CloudInfo:
    model: str
    context_length: int
    price_in_per_1k: float
    price_out_per_1k: float
    max_tokens_limit: int


@dataclass(frozen=True)
class CloudUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0


@dataclass(frozen=True)
class CloudDone:
    """The last event of a cloud answer."""

    usage: CloudUsage
    finish_reason: str


CloudEvent = str | CloudDone


class CloudFailure(Exception):
    """A cloud call failed; ``started`` is True when text had already arrived.

    ``retryable``: the cloud could not be reached (UNAVAILABLE before any answer), so
    another attempt may succeed. ``sent`` is False only when nothing left the device
    (no connection to the cloud was up), so the ledger can say so."""

    def __init__(self, reason: str, started: bool, retryable: bool = False, *, sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.started = started
        self.retryable = retryable and not started
        self.sent = sent or started


class CloudLink(Protocol):
    """The connection to the cloud side (``edge_agent.adapters.cloud.CloudClient``)."""

    @property
    def available(self) -> bool:
        """False while the circuit breaker is open."""
        ...

    @property
    def circuit(self) -> str:
        """The breaker's state: closed, open or half_open."""
        ...

    @property
    def info(self) -> CloudInfo | None: ...

    @property
    def max_attempts(self) -> int: ...

    def generate(
        self, request_id: str, prompt: Prompt, params: SamplingParams, *, timeout_s: float | None = None
    ) -> AsyncGenerator[CloudEvent, None]:
        """Text deltas then one CloudDone for a prompt or a conversation; raises
        CloudFailure on any failure."""
        ...

    async def close(self) -> None: ...
