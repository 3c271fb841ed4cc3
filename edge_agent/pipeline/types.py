"""The request path's values: what came in, what was planned, what one runner did, and
what the caller is told. All frozen: runners return results, none mutates a shared one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from common.chat import Message, Prompt
from common.tools import ToolUse
from edge_agent.context.api import Retrieved
from edge_agent.engine.api import SamplingParams, Usage
from orchestrator.types import Decision, Preference, Target

CONTEXT_HEADER = "Notes from the user's own data:\n"
# With context the prompt becomes a question over the notes, so that a base (not
# instruction-tuned) model answers it instead of continuing the user's text.
QUESTION, ANSWER = "Question: ", "\nAnswer:"


@dataclass(frozen=True)
class AskRequest:
    """A validated generation request: a prompt, or a conversation (``messages``)."""

    prompt: str
    params: SamplingParams
    messages: tuple[Message, ...] = ()
    request_id: str = ""
    preference: Preference = Preference.AUTO
    deadline_ms: int | None = None
    max_cost: float | None = None
    personal: bool = False
    labels: tuple[str, ...] = ()
    app_id: str = ""
    use_context: bool = False
    tools: ToolUse | None = None  # set when the answer is in the tool-call format (common/tools.py)


@dataclass(frozen=True)
class Plan:
    """What will run: the route, the exact prompt text and the request's one clock.

    ``prompt`` is what the local model sees (a conversation rendered by its chat
    template); ``outgoing`` is what the cloud would get before redaction: the same
    prompt, or the conversation as messages (context as a system message)."""

    request_id: str
    request: AskRequest
    decision: Decision
    prompt: str
    prompt_tokens: int
    context: Retrieved | None
    started: float  # time.perf_counter() when the request arrived
    deadline: float  # the same clock: when the request's deadline passes
    outgoing: Prompt = ""

    @property
    def context_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.context.items) if self.context else ()

    @property
    def draft_texts(self) -> tuple[str, ...]:
        """What the drafter may copy from: retrieved items and the earlier turns."""
        items = tuple(i.body for i in self.context.items) if self.context else ()
        return items + tuple(m.content for m in self.request.messages[:-1])


@dataclass(frozen=True)
class Run:
    """What one runner did: who answered, with which figures."""

    decision: Decision
    answered_by: tuple[str, ...]  # "local", "cloud", "cloud_redacted", in order
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    fallback_reason: str = ""  # non-empty: the cloud failed and the local model answered
    cloud_chars: int = 0  # characters of a partial cloud answer the local model continued

    @property
    def route(self) -> str:
        return "+".join(self.answered_by) or self.decision.target.value

    def after(self, earlier: Run) -> Run:
        """This run continuing ``earlier`` (a partial cloud answer, a held-back start)."""
        return replace(self, answered_by=(*earlier.answered_by, *self.answered_by), usage=earlier.usage.then(self.usage))


@dataclass(frozen=True)
class Outcome:
    """A finished request, for the final stream message: the route and why, and the
    answer's figures (``usage``, on the request's own clock)."""

    request_id: str
    decision: Decision
    context_ids: tuple[str, ...]
    route: str
    finish_reason: str
    usage: Usage
    fallback_reason: str = ""
    cloud_chars: int = 0

    @property
    def fallback(self) -> bool:
        return bool(self.fallback_reason)

    @classmethod
    def of(cls, plan: Plan, run: Run, *, ttft_ms: float, total_ms: float) -> Outcome:
        return cls(
            request_id=plan.request_id,
            decision=run.decision,
            context_ids=plan.context_ids,
            route=run.route,
            finish_reason=run.finish_reason,
            usage=replace(run.usage, ttft_ms=ttft_ms, total_ms=total_ms),
            fallback_reason=run.fallback_reason,
            cloud_chars=run.cloud_chars,
        )


Event = str | Outcome


@dataclass(frozen=True)
class ContextQuery:
    """A search of the personal-context store."""

    text: str
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    tags: tuple[str, ...] = ()
    sensitivities: tuple[str, ...] = ()
    limit: int = 10


@dataclass(frozen=True)
class ForgetSelector:
    """Which items to forget: exactly one of ids, source, query or everything."""

    ids: tuple[str, ...] = ()
    source: str | None = None
    query: str | None = None
    everything: bool = False


def cloud_side(target: Target) -> str:
    """How a cloud answer is named in routes and stats."""
    return "cloud_redacted" if target is Target.CLOUD_REDACTED else "cloud"


def compose_prompt(prompt: str, context: Retrieved | None) -> str:
    """The text the model sees: retrieved context (if any) above the user's prompt."""
    if context is None or not context.text:
        return prompt
    return f"{CONTEXT_HEADER}{context.text}\n\n{QUESTION}{prompt}{ANSWER}"


def compose_messages(messages: tuple[Message, ...], context: Retrieved | None) -> tuple[Message, ...]:
    """A conversation with retrieved context (if any) as its system message, before
    the caller's own system message."""
    if context is None or not context.text:
        return messages
    notes = f"{CONTEXT_HEADER}{context.text}"
    if messages and messages[0].role == "system":
        return (Message("system", f"{notes}\n\n{messages[0].content}"), *messages[1:])
    return (Message("system", notes), *messages)
