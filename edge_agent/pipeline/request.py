"""The one request builder behind both front doors.

A door (gRPC ``transport/convert.py``, OpenAI HTTP ``transport/openai_convert.py``)
maps its wire shape onto ``RequestFields``: plain values, ``None`` for a field left
out, and the names its wire gives each field (``Names``). ``ask_request`` owns every
rule a request must keep (prompt or conversation, sampling parameters, routing fields,
identifiers that are logged) and makes the ``AskRequest`` the pipeline runs. A broken
rule raises ``InvalidArgument`` / ``OutOfRange`` naming the field as the caller spelt it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from common import tools as toolfmt
from common.chat import check_messages
from common.errors import InvalidArgument, OutOfRange
from common.params import MAX_INT32, PROTO_NAMES, ParamNames, check_sampling, check_schema
from edge_agent.config import LimitsConfig
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.types import AskRequest
from orchestrator.types import Preference

MAX_LABELS = 16
MAX_LABEL_CHARS = 64
MAX_APP_ID_CHARS = 128
MAX_REQUEST_ID_CHARS = 64
MAX_EMBED_INPUTS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Names:
    """Where each field of a request lives on a door's wire."""

    prompt: str = "prompt"
    messages: str = "messages"
    params: ParamNames = PROTO_NAMES
    deadline_ms: str = "routing.deadline_ms"
    max_cost: str = "routing.max_cost"
    labels: str = "routing.labels"
    app_id: str = "routing.app_id"
    request_id: str = "request_id"
    tools: toolfmt.ToolNames = field(default_factory=toolfmt.ToolNames)


GRPC_NAMES = Names(tools=toolfmt.PROTO_TOOL_NAMES)


@dataclass(frozen=True)
class RequestFields:
    """A generation request as plain values; ``None`` means the field is absent."""

    prompt: str | None = None
    messages: Sequence[tuple[str, str]] | None = None  # (role, content)
    max_tokens: int | None = None
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: Sequence[str] = ()
    json_schema: str | Mapping[str, Any] | None = None  # JSON text or a parsed schema
    preference: Preference = Preference.AUTO
    deadline_ms: int | None = None
    max_cost: float | None = None
    personal: bool = False
    labels: Sequence[str] = ()
    app_id: str = ""
    request_id: str = ""
    use_context: bool = False
    tools: toolfmt.ToolUse | None = None  # checked shapes (common.tools.check_tools); schemas checked here
    names: Names = field(default=GRPC_NAMES)


def identifier(name: str, value: str, limit: int) -> str:
    """A short printable string that is logged and recorded (ids, app ids, labels)."""
    if len(value) > limit:
        raise InvalidArgument(name, f"at most {limit} characters")
    if _CONTROL.search(value):
        raise InvalidArgument(name, "must not contain control characters (newlines, tabs, ...)")
    return value


def check_prompt(prompt: str, limits: LimitsConfig, name: str = "prompt") -> str:
    """A prompt string: not blank, no NUL, at most ``limits.max_prompt_bytes``."""
    if not prompt.strip():
        raise InvalidArgument(name, "must not be empty (or send messages instead)")
    if "\x00" in prompt:
        raise InvalidArgument(name, "must not contain NUL characters")
    size = len(prompt.encode("utf-8", "surrogatepass"))
    if size > limits.max_prompt_bytes:
        raise OutOfRange(name, f"must be at most {limits.max_prompt_bytes} bytes (got {size})")
    return prompt


def ask_request(f: RequestFields, limits: LimitsConfig) -> AskRequest:
    """Every rule of a generation request checked, cheapest first (the schema last:
    it costs milliseconds, see ``common.params.check_schema``)."""
    n = f.names
    if f.messages and f.prompt:
        raise InvalidArgument(n.messages, "set exactly one of prompt and messages")
    pairs = _with_tools(f, limits) if f.messages is not None else None
    messages = check_messages(pairs, limits.max_prompt_bytes, n.messages) if pairs is not None else ()
    prompt = "" if f.messages is not None else check_prompt(f.prompt or "", limits, n.prompt)
    if f.deadline_ms is not None and not 0 <= f.deadline_ms <= MAX_INT32:
        raise InvalidArgument(n.deadline_ms, f"must be in [0, {MAX_INT32}] (0 means the policy default)")
    if f.max_cost is not None and not f.max_cost >= 0:  # also NaN
        raise InvalidArgument(n.max_cost, "must be >= 0 (0 means no cap)")
    if len(f.labels) > MAX_LABELS:
        raise InvalidArgument(n.labels, f"at most {MAX_LABELS} labels")
    for i, label in enumerate(f.labels):
        identifier(f"{n.labels}[{i}]", label, MAX_LABEL_CHARS)
    identifier(n.app_id, f.app_id, MAX_APP_ID_CHARS)
    identifier(n.request_id, f.request_id, MAX_REQUEST_ID_CHARS)
    schema, names = f.json_schema, n.params
    use = f.tools if f.tools is not None and f.tools.asks_for_json else None
    if use is not None:
        if schema is not None:
            raise InvalidArgument(n.params.json_schema, 'cannot be combined with tools (unless tool_choice is "none")')
        for i, t in enumerate(use.tools):
            check_schema(t.parameters, n.tools.parameters.format(i=i))
        schema, names = use.answer_schema(), replace(n.params, json_schema=n.tools.tools)
    p = check_sampling(
        max_tokens=f.max_tokens, temperature=f.temperature, top_p=f.top_p, top_k=f.top_k, seed=f.seed,
        stop=f.stop, json_schema=schema, default_max_tokens=limits.default_max_tokens,
        max_tokens_limit=limits.max_tokens, names=names,
    )
    return AskRequest(
        prompt=prompt,
        messages=messages,
        params=SamplingParams(p.max_tokens, p.temperature, p.top_p, p.top_k, p.seed, p.stop, p.json_schema),
        request_id=f.request_id,
        preference=f.preference,
        deadline_ms=f.deadline_ms or None,
        max_cost=f.max_cost or None,
        personal=f.personal,
        labels=tuple(f.labels),
        app_id=f.app_id,
        use_context=f.use_context,
        tools=use,
    )


def _with_tools(f: RequestFields, limits: LimitsConfig) -> list[tuple[str, str]]:
    """The conversation with the offered functions described in its system message
    (``common.tools.ToolUse.instructions``), within the prompt's size."""
    pairs = list(f.messages or ())
    if f.tools is None:
        return pairs
    if not pairs:
        raise InvalidArgument(f.names.messages, "must hold at least one message")
    text = f.tools.instructions()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_prompt_bytes:
        raise OutOfRange(f.names.tools.tools, f"the functions take {size} bytes of the prompt described; "
                                        f"the prompt holds at most {limits.max_prompt_bytes}")
    if pairs[0][0] == "system":
        pairs[0] = ("system", f"{text}\n\n{pairs[0][1]}")
    else:
        pairs.insert(0, ("system", text))
    return pairs


def embed_inputs(texts: Sequence[str], limits: LimitsConfig, name: str = "input", *, listed: bool = True) -> tuple[str, ...]:
    """The texts of an embeddings request: 1..``MAX_EMBED_INPUTS``, each a prompt
    (``check_prompt``); errors name ``input[i]`` (or ``input`` for a lone string)."""
    if not texts:
        raise InvalidArgument(name, f"must hold 1..{MAX_EMBED_INPUTS} texts")
    if len(texts) > MAX_EMBED_INPUTS:
        raise InvalidArgument(name, f"at most {MAX_EMBED_INPUTS} texts a request (got {len(texts)})")
    for i, text in enumerate(texts):
        check_prompt(text, limits, f"{name}[{i}]" if listed else name)
    return tuple(texts)

