"""OpenAI JSON <-> domain conversion for the HTTP front door, with request validation.

The HTTP twin of ``convert``: it checks the JSON shapes (types, known fields, the
OpenAI fields this server refuses) and maps the body onto the request builder
(``pipeline/request.py``), which owns every rule both doors share; errors name the JSON
field (``messages[2].content``, ``edgecloud.deadline_ms``).

Our extension travels in the request body as ``edgecloud`` (the ``openai`` SDK sends
it with ``extra_body={"edgecloud": {...}}``)::

    {"use_context": bool, "personal": bool, "preference": "auto|local_only|cloud_preferred",
     "deadline_ms": int, "max_cost": float, "labels": [str], "app_id": str, "top_k": int}

and comes back in every response (and the last stream chunk) as ``edgecloud``: the
route taken, the rules that fired, the explanation, the context items used and the
decoding figures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from common import tools as toolfmt
from common.duration import RULE as DURATION_RULE
from common.duration import parse_keep_alive
from common.errors import InvalidArgument
from common.params import MAX_STOP_SEQUENCES, ParamNames
from common.schema_limits import check_parsed_size
from edge_agent.config import LimitsConfig
from edge_agent.engine.api import Embeddings
from edge_agent.pipeline import request
from edge_agent.pipeline.types import AskRequest, Outcome
from orchestrator.types import Preference

_PREFERENCES = {"auto": Preference.AUTO, "local_only": Preference.LOCAL_ONLY, "cloud_preferred": Preference.CLOUD_PREFERRED}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_EXTENSION_KEYS = {"use_context", "personal", "preference", "deadline_ms", "max_cost", "labels", "app_id", "top_k"}
# OpenAI fields that change what is generated and that this daemon does not do: set to
# anything but their neutral value they are refused, never silently dropped.
_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "n": (None, 1),
    "best_of": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "echo": (None, False),
    "suffix": (None, ""),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "functions": (None, []),  # the deprecated forms of tools / tool_choice
    "function_call": (None, "none"),
}
# The fields this server reads (besides the _UNSUPPORTED ones, refused unless neutral);
# any other top-level field is refused, never silently ignored.
_COMMON_KEYS = {
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "stream",
    "stream_options", "user", "keep_alive", "edgecloud",
}
_CHAT_KEYS = _COMMON_KEYS | {"messages", "response_format", "tools", "tool_choice", "parallel_tool_calls"}
_COMPLETION_KEYS = _COMMON_KEYS | {"prompt", "response_format"}
DEFAULT_TEMPERATURE = 1.0  # the OpenAI API's default when the field is absent
MAX_BODY_DEPTH = 512  # objects and arrays: room for a schema the schema check refuses by name, far below the parser's recursion limit
MAX_INT_DIGITS = 24  # no integer field takes more (a uint64 seed has 20 digits)
HTTP_NAMES = request.Names(
    params=ParamNames(top_k="edgecloud.top_k", json_schema="response_format"),
    deadline_ms="edgecloud.deadline_ms",
    max_cost="edgecloud.max_cost",
    labels="edgecloud.labels",
    app_id="edgecloud.app_id",
)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a string literal, escapes included


def body_depth(raw: bytes) -> int:
    """The deepest nesting of objects and arrays in a JSON text, brackets inside string
    literals not counted; linear, without recursion (runs before the parser)."""
    brackets = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    steps = np.zeros(len(brackets), dtype=np.int32)
    steps[(brackets == ord("[")) | (brackets == ord("{"))] = 1
    steps[(brackets == ord("]")) | (brackets == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def _bounded_int(text: str) -> int:
    """``json.loads``' integer hook: an integer literal longer than any field takes is
    refused before Python converts it (a 5,000-digit one would raise ValueError)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidArgument("body", f"an integer has at most {MAX_INT_DIGITS} digits (got one of {len(text.lstrip('-'))})")
    return int(text)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object: nesting bounded before it is parsed, integers
    bounded while it is parsed, every string valid Unicode (no lone surrogates)."""
    if body_depth(raw) > MAX_BODY_DEPTH:
        raise InvalidArgument("body", f"nested too deep: at most {MAX_BODY_DEPTH} levels of objects and arrays")
    try:
        body = json.loads(raw, parse_int=_bounded_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument("body", f"must be a JSON object ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:  # a backstop: body_depth bounds the nesting first
        raise InvalidArgument("body", f"nested too deep: at most {MAX_BODY_DEPTH} levels of objects and arrays") from None
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    _check_unicode(body)
    return body


def _check_unicode(body: dict[str, Any]) -> None:
    """Refuse a lone surrogate (``"\\ud800"`` is valid JSON but not Unicode text: it
    cannot be encoded, tokenized or logged), naming the field it is in."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(_surrogate_path(body, "") or "body", "must be valid Unicode (a lone surrogate such as \\ud800 is not)") from None


def _surrogate_path(value: Any, path: str) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, if any."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if _has_surrogate(key):
                return path or "body"
            found = _surrogate_path(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass(frozen=True)
class HttpRequest:
    """A validated OpenAI request: what to ask, and how to answer."""

    ask: AskRequest
    model: str
    stream: bool
    chat: bool
    include_usage: bool = False  # stream_options.include_usage: a last chunk with usage, choices []
    # Ollama's top-level keep_alive: the model's idle time after this request (None:
    # forever); keep_alive_set is False when the request has none (the configured one holds).
    keep_alive_s: float | None = None
    keep_alive_set: bool = False


def _stream_options(body: Mapping[str, Any], stream: bool) -> bool:
    """``stream_options.include_usage`` (only with ``stream: true``, as OpenAI has it)."""
    opts = body.get("stream_options")
    if opts is None:
        return False
    if not stream:
        raise InvalidArgument("stream_options", "is only allowed with stream: true")
    if not isinstance(opts, dict):
        raise InvalidArgument("stream_options", "must be an object")
    unknown = sorted(set(opts) - {"include_usage"})
    if unknown:
        raise InvalidArgument(f"stream_options.{unknown[0][:32]}", "unknown key (known: include_usage)")
    return bool(_get(opts, "include_usage", bool, "true or false", "stream_options.include_usage"))


def keep_alive(body: Mapping[str, Any]) -> tuple[float | None, bool]:
    """The top-level ``keep_alive`` as Ollama apps send it: ``"5m"``, seconds, 0, -1."""
    if "keep_alive" not in body or body["keep_alive"] is None:
        return None, False
    value = body["keep_alive"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidArgument("keep_alive", f"must be {DURATION_RULE}")
    try:
        return parse_keep_alive(value), True
    except ValueError:
        raise InvalidArgument("keep_alive", f"must be {DURATION_RULE} (got {str(value)[:32]!r})") from None


def _get(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, field: str = "") -> Any:
    value = body.get(key)
    if value is None:
        return None
    numeric = kind in (int, float) or kind == (int, float)
    if (numeric and isinstance(value, bool)) or not isinstance(value, kind):
        raise InvalidArgument(field or key, f"must be {what}")
    return value


def number(body: Mapping[str, Any], key: str, field: str = "") -> float | None:
    v = _get(body, key, (int, float), "a number", field)
    return None if v is None else float(v)


def integer(body: Mapping[str, Any], key: str, field: str = "") -> int | None:
    v = _get(body, key, int, "an integer", field)
    return None if v is None else int(v)


def stop_sequences(stop: Any, field: str = "stop") -> tuple[str, ...]:
    """``stop``: a string or a list of strings (the request builder bounds them)."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidArgument(field, f"must be a string or a list of at most {MAX_STOP_SEQUENCES} strings")
    return tuple(stop)


def _is_neutral(value: object, neutral: tuple[object, ...]) -> bool:
    """Whether ``value`` is one of ``neutral`` with its JSON type too (``true`` is not
    1, ``1.0`` is not the integer 1, ``0`` is not ``false``)."""
    return any(type(value) is type(n) and value == n for n in neutral)


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    for key, neutral in _UNSUPPORTED.items():
        if key in body and not _is_neutral(body[key], neutral):
            raise InvalidArgument(key, f"is not supported by this server (allowed: {', '.join(json.dumps(v) for v in neutral if v is not None)} or absent)")


def refuse_unknown(body: Mapping[str, Any], known: set[str], where: str) -> None:
    """A field this server does not know is refused (a typo such as ``max_tokenz``
    would otherwise be silently ignored)."""
    unknown = sorted(str(k) for k in set(body) - known)
    if unknown:
        raise InvalidArgument(unknown[0][:64], f"unknown field for {where} (known: {', '.join(sorted(known))})")


def _refuse_unknown(body: Mapping[str, Any], chat: bool) -> None:
    known = (_CHAT_KEYS if chat else _COMPLETION_KEYS) | set(_UNSUPPORTED)
    refuse_unknown(body, known, "/v1/chat/completions" if chat else "/v1/completions")


def _max_tokens(body: Mapping[str, Any]) -> tuple[int | None, str]:
    """``max_completion_tokens`` (the current name) or ``max_tokens``, and which one."""
    value = integer(body, "max_completion_tokens")
    if value is not None:
        return value, "max_completion_tokens"
    return integer(body, "max_tokens"), "max_tokens"


SCHEMA_FIELD = "response_format.json_schema.schema"
PARSE_INLINE_BYTES = 64 * 1024  # a larger body is parsed in a worker thread


async def checked_request(raw: bytes, limits: LimitsConfig, *, chat: bool) -> HttpRequest:
    """The validated request of a raw body, for the event loop. A body over
    ``PARSE_INLINE_BYTES`` is parsed and checked in a worker thread; so is any body with a
    ``response_format`` (a schema takes milliseconds to check and turn into a grammar),
    after a first bound on the schema's size here, which stops early on a huge one."""
    if len(raw) > PARSE_INLINE_BYTES:
        return await asyncio.to_thread(lambda: http_request(parse_body(raw), limits, chat=chat))
    body = parse_body(raw)
    rf = body.get("response_format")
    if body.get("tools") is None and (rf is None or (isinstance(rf, dict) and rf.get("type") == "text")):
        return http_request(body, limits, chat=chat)
    spec = rf.get("json_schema") if isinstance(rf, dict) else None
    if isinstance(spec, dict) and "schema" in spec:
        check_parsed_size(spec["schema"], SCHEMA_FIELD)
    return await asyncio.to_thread(http_request, body, limits, chat=chat)


def _response_format(body: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str]:
    """``response_format``: text (no schema), ``json_object`` (any JSON object) or
    ``json_schema``; the schema and the field it came from. The request builder checks
    it (milliseconds for a large schema: see ``checked_request``)."""
    rf = body.get("response_format")
    if rf is None:
        return None, ""
    if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidArgument("response_format.type", "one of text, json_object, json_schema")
    if rf["type"] == "text":
        return None, ""
    if rf["type"] == "json_object":
        return {"type": "object"}, "response_format"
    spec = rf.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise InvalidArgument(SCHEMA_FIELD, "must be a JSON Schema object")
    return spec["schema"], SCHEMA_FIELD


def _content(value: Any, field: str) -> str:
    """A message's content: a string, or a list of text parts (joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidArgument(f"{field}[{j}]", "only text parts ({\"type\": \"text\", \"text\": ...}) are supported")
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidArgument(field, "must be a string or a list of text parts")


def _messages(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The conversation as (role, content) pairs, tool calls and results as turns
    (``common.tools.as_pairs``)."""
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument("messages", "must be a non-empty list of {role, content} objects")
    turns = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InvalidArgument(f"messages[{i}]", "must be an object with role and content")
        role = m.get("role")
        if not isinstance(role, str) or (role not in _ROLES and role != "tool"):
            raise InvalidArgument(f"messages[{i}].role", f"one of {', '.join([*_ROLES, 'tool'])} (got {str(role)[:32]!r})")
        if m.get("tool_calls") is not None:
            turns.append(toolfmt.Turn(role, "", calls=_earlier_calls(m["tool_calls"], f"messages[{i}].tool_calls")))
            continue
        content = _content(m.get("content"), f"messages[{i}].content")
        call_id = m.get("tool_call_id")
        turns.append(toolfmt.Turn(_ROLES.get(role, role), content, tool_call_id=call_id if isinstance(call_id, str) else None))
    return toolfmt.as_pairs(turns)


def _earlier_calls(raw: Any, field: str) -> tuple[tuple[str, str, str], ...]:
    """An assistant message's ``tool_calls`` (OpenAI's shape) as (id, name, arguments)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument(field, "must be a non-empty list of calls")
    out = []
    for j, c in enumerate(raw):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
            raise InvalidArgument(f"{field}[{j}].function", "must be {name, arguments} with arguments as JSON text")
        out.append((c["id"] if isinstance(c.get("id"), str) else "", fn["name"], fn["arguments"]))
    return tuple(out)


def _prompt(body: Mapping[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidArgument("prompt", "must be a string (one prompt per request)")
    return prompt


def _extension(body: Mapping[str, Any]) -> dict[str, Any]:
    ext = body.get("edgecloud")
    if ext is None:
        return {}
    if not isinstance(ext, dict):
        raise InvalidArgument("edgecloud", "must be an object")
    unknown = sorted(set(ext) - _EXTENSION_KEYS)
    if unknown:
        raise InvalidArgument(f"edgecloud.{unknown[0][:32]}", f"unknown key (known: {', '.join(sorted(_EXTENSION_KEYS))})")
    return ext


def http_request(body: Mapping[str, Any], limits: LimitsConfig, *, chat: bool) -> HttpRequest:
    """A /v1/chat/completions (``chat``) or /v1/completions body mapped onto the request
    builder (``pipeline/request.py``, which checks every rule), and how to answer it."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("model", "must name a model from GET /v1/models")
    _refuse_unsupported(body)
    _refuse_unknown(body, chat)
    stream = _get(body, "stream", bool, "true or false") or False
    ext = _extension(body)
    pref = _get(ext, "preference", str, f"one of {', '.join(_PREFERENCES)}", "edgecloud.preference") or "auto"
    if pref not in _PREFERENCES:
        raise InvalidArgument("edgecloud.preference", f"one of {', '.join(_PREFERENCES)} (got {pref[:32]!r})")
    labels = _get(ext, "labels", list, "a list of strings", "edgecloud.labels") or []
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise InvalidArgument(f"edgecloud.labels[{i}]", "must be a string")
    app_id = _get(ext, "app_id", str, "a string", "edgecloud.app_id") or _get(body, "user", str, "a string") or ""
    max_tokens, max_tokens_field = _max_tokens(body)
    schema, schema_field = _response_format(body)
    use = toolfmt.check_tools(body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls")) if chat else None
    temperature = number(body, "temperature")
    names = replace(HTTP_NAMES, app_id="edgecloud.app_id" if ext.get("app_id") else "user",
                    params=replace(HTTP_NAMES.params, max_tokens=max_tokens_field, json_schema=schema_field))
    ask = request.ask_request(
        request.RequestFields(
            prompt=None if chat else _prompt(body),
            messages=_messages(body) if chat else None,
            max_tokens=max_tokens,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            top_p=number(body, "top_p"),
            top_k=integer(ext, "top_k", "edgecloud.top_k"),
            seed=integer(body, "seed"),
            stop=stop_sequences(body.get("stop")),
            json_schema=schema,
            preference=_PREFERENCES[pref],
            deadline_ms=integer(ext, "deadline_ms", "edgecloud.deadline_ms"),
            max_cost=number(ext, "max_cost", "edgecloud.max_cost"),
            personal=bool(_get(ext, "personal", bool, "true or false", "edgecloud.personal")),
            labels=tuple(labels),
            app_id=app_id,
            use_context=bool(_get(ext, "use_context", bool, "true or false", "edgecloud.use_context")),
            tools=use,
            names=names,
        ),
        limits,
    )
    keep_alive_s, keep_alive_set = keep_alive(body)
    return HttpRequest(ask=ask, model=model, stream=stream, chat=chat, include_usage=_stream_options(body, stream),
                       keep_alive_s=keep_alive_s, keep_alive_set=keep_alive_set)


# The usage record's figures the ``edgecloud`` field carries (rounded where float).
_ROUTE_FIGURES = ("ttft_ms", "total_ms", "tokens_per_s", "drafted_tokens", "accepted_tokens", "verify_steps",
                  "queue_wait_ms", "cost", "energy_j", "energy_source")
_DECIMALS = {"energy_j": 4}  # the cost is given unrounded, the other floats to 2 decimals


def route_info(o: Outcome) -> dict[str, Any]:
    """The ``edgecloud`` field of a response: the route and why, and the figures."""
    d = o.decision
    figures = {name: getattr(o.usage, name) for name in _ROUTE_FIGURES}
    return {
        "request_id": o.request_id,
        "route": o.route,
        "target": d.target.value,
        "rules_fired": list(d.rules_fired),
        "explanation": d.explanation,
        "pii_kinds": list(d.pii_kinds),
        "context_item_ids": list(o.context_ids),
        "fallback": o.fallback,
        "fallback_reason": o.fallback_reason,
        **{k: round(v, _DECIMALS.get(k, 2)) if isinstance(v, float) and k != "cost" else v for k, v in figures.items()},
    }


def usage(o: Outcome) -> dict[str, int]:
    u = o.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def finish_reason(o: Outcome) -> str:
    """OpenAI's finish reasons: "stop" or "length"."""
    return "length" if o.finish_reason == "length" else "stop"


# -- embeddings ---------------------------------------------------------------------
_EMBED_KEYS = {"model", "input", "encoding_format", "dimensions", "user"}


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    texts: tuple[str, ...]
    base64: bool  # encoding_format "base64": little-endian float32, base64
    dimensions: int | None
    app_id: str


def embedding_request(body: Mapping[str, Any], limits: LimitsConfig) -> EmbeddingRequest:
    """A /v1/embeddings body: ``input`` a string or a list of strings."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("model", "must name a model from GET /v1/models")
    unknown = sorted(str(k) for k in set(body) - _EMBED_KEYS)
    if unknown:
        raise InvalidArgument(unknown[0][:64], f"unknown field for /v1/embeddings (known: {', '.join(sorted(_EMBED_KEYS))})")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InvalidArgument("input", "must be a string or a list of strings (token arrays are not supported)")
    checked = request.embed_inputs(texts, limits, listed=isinstance(raw, list))
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise InvalidArgument("encoding_format", f"one of float, base64 (got {str(fmt)[:32]!r})")
    dims = integer(body, "dimensions")
    if dims is not None and dims < 1:
        raise InvalidArgument("dimensions", "must be >= 1")
    app_id = _get(body, "user", str, "a string") or ""
    request.identifier("user", app_id, request.MAX_APP_ID_CHARS)
    return EmbeddingRequest(model, checked, fmt == "base64", dims, app_id)


def embedding_response(req: EmbeddingRequest, emb: Embeddings, model: str) -> dict[str, Any]:
    """OpenAI's embeddings list, with ``edgecloud`` saying where it was computed."""
    dims = int(emb.vectors.shape[1])
    if req.dimensions is not None and req.dimensions != dims:
        raise InvalidArgument("dimensions", f"this model gives {dims}-dimensional embeddings: set {dims} or leave it out")

    def encode(v: np.ndarray) -> Any:
        if req.base64:
            return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
        return [float(x) for x in v]

    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(emb.vectors)],
        "model": model,
        "usage": {"prompt_tokens": emb.prompt_tokens, "total_tokens": emb.prompt_tokens},
        "edgecloud": {"route": "local", "pooling": emb.pooling, "dimensions": dims},
    }

