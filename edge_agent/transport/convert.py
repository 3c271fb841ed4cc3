"""Protobuf <-> domain conversion for the EdgeAgent API.

The one place that knows both the wire messages and the domain types. A generation
request is mapped onto the request builder (``pipeline/request.py``), which owns its
rules; the context calls' rules are here. Every rule broken raises ``InvalidArgument`` /
``OutOfRange`` naming the proto field path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb

from common import tools as toolfmt
from common.errors import InvalidArgument
from common.params import proto_sampling
from edge_agent.config import LimitsConfig
from edge_agent.context.api import Hit, Item, NewItem
from edge_agent.engine.api import Embeddings, Usage
from edge_agent.pipeline import request
from edge_agent.pipeline.stats import StatsSnapshot
from edge_agent.pipeline.types import AskRequest, ContextQuery, ForgetSelector, Outcome
from orchestrator.types import Decision, Preference, Target

MAX_ITEMS_PER_PUT = 1000
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # ServerConfig.max_message_bytes' default
_RESPONSE_MARGIN = 64  # the ``omitted`` field and slack

_PREFERENCES = {
    pb.ROUTE_PREFERENCE_AUTO: Preference.AUTO,
    pb.ROUTE_PREFERENCE_LOCAL_ONLY: Preference.LOCAL_ONLY,
    pb.ROUTE_PREFERENCE_CLOUD_PREFERRED: Preference.CLOUD_PREFERRED,
}
_TARGETS = {
    Target.LOCAL: pb.ROUTE_TARGET_LOCAL,
    Target.CLOUD: pb.ROUTE_TARGET_CLOUD,
    Target.CLOUD_REDACTED: pb.ROUTE_TARGET_CLOUD_REDACTED,
    Target.REJECT: pb.ROUTE_TARGET_REJECT,
}


def ask_request(msg: pb.GenerateRequest, limits: LimitsConfig) -> AskRequest:
    """A GenerateRequest mapped onto the request builder (which checks every rule)."""
    r = msg.routing
    if r.preference not in _PREFERENCES:
        raise InvalidArgument("routing.preference", f"unknown RoutePreference value {r.preference}")
    return request.ask_request(
        request.RequestFields(
            prompt=msg.prompt,
            messages=_messages(msg) if msg.messages else None,
            **proto_sampling(msg.params),
            preference=_PREFERENCES[r.preference],
            deadline_ms=r.deadline_ms,
            max_cost=r.max_cost,
            personal=r.personal,
            labels=tuple(r.labels),
            app_id=r.app_id,
            request_id=msg.request_id,
            use_context=msg.use_context,
            tools=_tools(msg.tools) if msg.HasField("tools") else None,
        ),
        limits,
    )


def _messages(msg: pb.GenerateRequest) -> list[tuple[str, str]]:
    """The conversation, tool calls and results as turns (``common.tools.as_pairs``)."""
    turns = [toolfmt.Turn(m.role, m.content, calls=tuple((c.id, c.name, c.arguments_json) for c in m.tool_calls),
                          tool_call_id=m.tool_call_id or None) for m in msg.messages]
    return toolfmt.as_pairs(turns)


def _tools(use: pb.ToolUse) -> toolfmt.ToolUse | None:
    """A ToolUse message checked by ``common.tools.check_tools``, errors on proto paths."""
    raw = []
    for i, t in enumerate(use.tools):
        fn: dict[str, Any] = {"name": t.name, "description": t.description}
        if t.parameters_json:
            try:
                fn["parameters"] = json.loads(t.parameters_json)
            except json.JSONDecodeError:
                raise InvalidArgument(f"tools.tools[{i}].parameters_json", "must be a JSON Schema object as JSON text") from None
        raw.append({"type": "function", "function": fn})
    return toolfmt.check_tools(raw or None, use.choice or None, use.parallel, names=toolfmt.PROTO_TOOL_NAMES)


def embed_request(msg: pb.EmbedRequest, limits: LimitsConfig) -> tuple[tuple[str, ...], str, str]:
    """The texts, the app and the model of an EmbedRequest (the request builder's rules)."""
    texts = request.embed_inputs(list(msg.input), limits)
    model = request.identifier("model", msg.model, request.MAX_APP_ID_CHARS)
    return texts, request.identifier("app_id", msg.app_id, request.MAX_APP_ID_CHARS), model


def embed_response(emb: Embeddings) -> pb.EmbedResponse:
    return pb.EmbedResponse(
        data=[pb.Embedding(values=v.tolist()) for v in emb.vectors],
        prompt_tokens=emb.prompt_tokens, pooling=emb.pooling, dimensions=int(emb.vectors.shape[1]),
    )


def search_query(msg: pb.SearchContextRequest) -> ContextQuery:
    """Validate a SearchContextRequest."""
    if not msg.query.strip():
        raise InvalidArgument("query", "must not be empty")
    if not 0 <= msg.limit <= 100:
        raise InvalidArgument("limit", "must be in 1..100 (0 means 10)")
    since, until = time_range(msg.since, msg.until)
    return ContextQuery(
        msg.query, tuple(msg.kinds), since, until, tuple(msg.tags), tuple(msg.sensitivities), msg.limit or 10
    )


def delete_selector(msg: pb.DeleteContextRequest) -> ForgetSelector:
    """Validate a DeleteContextRequest."""
    if sum([bool(msg.ids), bool(msg.source), bool(msg.query), msg.all]) != 1:
        raise InvalidArgument("ids|source|query|all", "set exactly one of ids, source, query or all")
    return ForgetSelector(tuple(msg.ids), msg.source or None, msg.query or None, msg.all)


def route_decision(d: Decision, context_ids: tuple[str, ...] = (), outcome: Outcome | None = None) -> pb.RouteDecision:
    msg = pb.RouteDecision(
        target=_TARGETS[d.target],
        rules_fired=list(d.rules_fired),
        explanation=d.explanation,
        pii_kinds=list(d.pii_kinds),
        context_item_ids=list(context_ids),
        options=[
            pb.RouteOption(
                target=_TARGETS[o.target],
                estimated_latency_ms=o.latency_ms,
                estimated_cost=o.cost,
                allowed=o.allowed,
                note=o.note,
            )
            for o in d.options
        ],
    )
    if outcome is not None:
        msg.fallback = outcome.fallback
        msg.fallback_reason = outcome.fallback_reason
        msg.cloud_chars = outcome.cloud_chars
    return msg


_WIRE_USAGE = tuple(f.name for f in common_pb2.Usage.DESCRIPTOR.fields)


def usage(u: Usage) -> common_pb2.Usage:
    """The usage record as the wire's ``Usage`` (every figure the message has a field for)."""
    return common_pb2.Usage(**{name: getattr(u, name) for name in _WIRE_USAGE})


def done(o: Outcome, calls: tuple[toolfmt.ToolCall, ...] = ()) -> pb.GenerateDone:
    """The last message; ``calls``: the calls of an answer in the tool-call format."""
    return pb.GenerateDone(
        usage=usage(o.usage),
        route=route_decision(o.decision, o.context_ids, o),
        finish_reason="tool_calls" if calls else o.finish_reason,
        request_id=o.request_id,
        tool_calls=[common_pb2.ToolCall(id=f"call_{o.request_id}_{i}", name=c.name,
                                        arguments_json=json.dumps(c.arguments, ensure_ascii=False))
                    for i, c in enumerate(calls)],
    )


def _time(value: int, field: str) -> datetime | None:
    if value == 0:
        return None
    if value < 0 or value > 253402300799:  # year 9999
        raise InvalidArgument(field, "must be unix seconds between 1970 and 9999")
    return datetime.fromtimestamp(value, tz=UTC)


def time_range(since: int, until: int) -> tuple[datetime | None, datetime | None]:
    """A search's time bounds (0 = open), checked."""
    start, end = _time(since, "since"), _time(until, "until")
    if start and end and end < start:
        raise InvalidArgument("until", "must not be before since")
    return start, end


def new_items(msg: pb.PutContextRequest) -> list[NewItem]:
    """Convert PutContext items; the store checks content rules (kind, size, ...)."""
    if not msg.items:
        raise InvalidArgument("items", "must hold at least one item")
    if len(msg.items) > MAX_ITEMS_PER_PUT:
        raise InvalidArgument("items", f"at most {MAX_ITEMS_PER_PUT} items per call")
    out = []
    for i, it in enumerate(msg.items):
        f = f"items[{i}]"
        starts, ends = _time(it.starts_at, f"{f}.starts_at"), _time(it.ends_at, f"{f}.ends_at")
        if starts and ends and ends < starts:
            raise InvalidArgument(f"{f}.ends_at", "must not be before starts_at")
        out.append(
            NewItem(
                kind=it.kind,
                body=it.body,
                title=it.title,
                source=it.source or "api",
                source_id=it.source_id,
                participants=tuple(it.participants),
                tags=tuple(it.tags),
                sensitivity=it.sensitivity or "personal",
                created_at=_time(it.created_at, f"{f}.created_at"),
                starts_at=starts,
                ends_at=ends,
                expires_at=_time(it.expires_at, f"{f}.expires_at"),
            )
        )
    return out


def _unix(t: datetime | None) -> int:
    return int(t.timestamp()) if t else 0


def context_item(item: Item) -> pb.ContextItem:
    return pb.ContextItem(
        id=item.id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        source=item.source,
        source_id=item.source_id,
        participants=list(item.participants),
        tags=list(item.tags),
        sensitivity=item.sensitivity,
        created_at=_unix(item.created_at),
        starts_at=_unix(item.starts_at),
        ends_at=_unix(item.ends_at),
        expires_at=_unix(item.expires_at),
    )


def search_hits(hits: list[Hit], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> pb.SearchContextResponse:
    """The hits, best first, as many as fit in a message of ``max_bytes`` (the gRPC
    send limit); the rest are counted in ``omitted`` instead of failing the call."""
    out = pb.SearchContextResponse()
    budget = max_bytes - _RESPONSE_MARGIN
    for i, h in enumerate(hits):
        hit = pb.SearchHit(item=context_item(h.item), score=h.score)
        size = hit.ByteSize()
        budget -= 1 + _varint_len(size) + size  # the field's tag, length and bytes
        if budget < 0:
            out.omitted = len(hits) - i
            break
        out.hits.append(hit)
    return out


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def runtime_info(r: Mapping[str, Any]) -> pb.RuntimeInfo:
    return pb.RuntimeInfo(
        build_variant=str(r.get("build_variant", "")),
        llama_cpp_python=str(r.get("llama_cpp_python", "")),
        system_info=str(r.get("system_info", "")),
        buffer_types_mib={str(k): float(v) for k, v in dict(r.get("buffer_types_mib", {})).items()},
        plain_step_ms=float(r.get("plain_step_ms", 0.0)),
        verify_cost=[float(x) for x in r.get("verify_cost", [])],
        threads=int(r.get("threads", 0)),
        thread_switches=int(r.get("thread_switches", 0)),
        parallel=int(r.get("parallel", 1)),
        shared_steps=int(r.get("shared_steps", 0)),
        shared_rows=int(r.get("shared_rows", 0)),
        selfcheck=str(r.get("selfcheck", "")),
        kv_cache_mib=float(r.get("kv_cache_mib", 0.0)),
        kv_types=str(r.get("kv_types", "")),
        resident_mib=float(r.get("resident_mib", 0.0)),
    )


def stats_response(
    s: StatsSnapshot, context_items: int, circuit: str, runtime: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
) -> pb.StatsResponse:
    return pb.StatsResponse(
        runtime=runtime_info(runtime or {}),
        model=pb.ModelState(**dict(model or {})),
        requests_by_route=s.requests_by_route,
        errors=s.errors,
        ttft_p50_ms=s.ttft_p50_ms,
        ttft_p99_ms=s.ttft_p99_ms,
        local_tokens_per_s_p50=s.local_tokens_per_s_p50,
        acceptance_rate=s.acceptance_rate,
        cloud_spend=s.cloud_spend,
        cloud_circuit=circuit,
        context_items=context_items,
        fallbacks=s.fallbacks,
        local_energy_j=s.local_energy_j,
        local_tokens_per_j_p50=s.local_tokens_per_j_p50,
        energy_source=s.energy_source,
    )
