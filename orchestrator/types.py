"""Domain types of a routing decision: what comes in, what the router answers.

Pure data, no behaviour: the edge agent fills ``RouteRequest`` and ``Estimates``, the
router returns a ``Decision`` that the servers convert to protobuf in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Target(str, Enum):
    """Where a request is answered."""

    LOCAL = "local"
    CLOUD = "cloud"
    CLOUD_REDACTED = "cloud_redacted"  # cloud, with PII replaced by placeholders
    REJECT = "reject"


class Preference(str, Enum):
    """The caller's wish; it can make privacy stricter, never looser."""

    AUTO = "auto"
    LOCAL_ONLY = "local_only"
    CLOUD_PREFERRED = "cloud_preferred"


@dataclass(frozen=True)
class ContextRef:
    """A personal-context item pulled into the prompt."""

    item_id: str
    sensitivity: str  # "public" | "personal" | "secret"
    text: str
    kind: str = "note"


@dataclass(frozen=True)
class StoredValue:
    """A distinctive value (a code, a number) of a sensitive store item typed into the
    request, with the item's label (see ``orchestrator.stored_values``)."""

    value: str
    sensitivity: str  # "personal" | "secret"


@dataclass(frozen=True)
class RouteRequest:
    """Everything the router may look at for one request."""

    prompt: str
    prompt_tokens: int
    max_tokens: int
    preference: Preference = Preference.AUTO
    deadline_ms: int | None = None  # None: the policy's default deadline
    max_cost: float | None = None  # currency units; None: no per-request cap
    marked_personal: bool = False  # the client says the prompt is personal
    labels: tuple[str, ...] = ()
    app_id: str = ""
    context: tuple[ContextRef, ...] = ()
    contact_names: tuple[str, ...] = ()  # names from the user's contacts, for PII
    # Stop sequences are checked like the prompt (they are applied on the device and
    # never sent, but a stop with PII keeps the request as private as the prompt would).
    stop: tuple[str, ...] = ()
    # Every string of the JSON schema (keys, enum values, descriptions, titles, defaults,
    # examples) in document order: it goes to the cloud with the prompt.
    schema_strings: tuple[str, ...] = ()
    # Values of sensitive store items found in the request (whatever use_context says).
    stored_values: tuple[StoredValue, ...] = ()


@dataclass(frozen=True)
class Estimates:
    """Live figures of both sides (from the EWMA estimators and the cloud's Info)."""

    local_ttft_ms: float
    local_tokens_per_s: float
    cloud_ttft_ms: float
    cloud_tokens_per_s: float
    cloud_available: bool
    cloud_price_in_per_1k: float = 0.0
    cloud_price_out_per_1k: float = 0.0
    local_j_per_token: float = 0.0  # measured energy per token (0: nothing measured yet)


@dataclass(frozen=True)
class OptionEstimate:
    """One option the router weighed."""

    target: Target
    latency_ms: float
    cost: float
    allowed: bool
    note: str = ""  # why it is not allowed, or why it was chosen


@dataclass(frozen=True)
class Decision:
    """The router's answer, explainable on its own."""

    target: Target
    rules_fired: tuple[str, ...]  # names of the rules / checks that decided, in order
    explanation: str  # one line for a human
    options: tuple[OptionEstimate, ...] = ()
    pii_kinds: tuple[str, ...] = ()  # PII kinds detected in prompt + context
    # For CLOUD_REDACTED (as target or as escalate_to): the text to send and
    # placeholder -> original for the answer.
    redacted_prompt: str | None = None
    restore: dict[str, str] = field(default_factory=dict)
    # For CLOUD_REDACTED: the context to send (items the policy keeps local left out,
    # PII in the others replaced with the same placeholders as the prompt).
    redacted_context: tuple[ContextRef, ...] = ()
    # For LOCAL with the quality cascade on: where to escalate when the local model's
    # first tokens look unsure (None: no escalation allowed).
    escalate_to: Target | None = None
    # For CLOUD_REDACTED: the request's stop sequences with the same placeholders.
    redacted_stop: tuple[str, ...] = ()
    # For CLOUD_REDACTED: the JSON schema's strings (RouteRequest.schema_strings), redacted.
    redacted_schema_strings: tuple[str, ...] = ()
