"""Bad input: hypothesis-generated requests against a running daemon, random policy
files, FTS5 syntax in searches, undecodable and oversized messages.

Every rejection must be INVALID_ARGUMENT or OUT_OF_RANGE whose details start with the
name of a field that really breaks a documented rule (an oracle written from the proto
comments decides which fields are bad); a request with no bad field must be accepted.
The daemon must neither crash nor hang, and must still be healthy at the end. Random
policy documents may only raise ``PolicyError`` naming the offending key.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suite_support import LONG, agent_target, start_agent, stop_service, write_config

from common.errors import PolicyError
from orchestrator.policy import parse_policy

pytestmark = pytest.mark.model

EXAMPLES = 200
LONG_FACTOR = 8


def fuzzed(examples: int, **strategies: Any) -> Callable[[Callable[..., None]], tuple[Any, Any]]:
    """The default test (``examples`` reproducible cases) and its long variant (eight
    times more, fresh every run, marked slow, only with ``EDGECLOUD_LONG=1``)."""

    def wrap(body: Callable[..., None]) -> tuple[Any, Any]:
        base: dict[str, Any] = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
        quick = settings(max_examples=examples, derandomize=True, **base)(given(**strategies)(body))
        long = settings(max_examples=examples * LONG_FACTOR, **base)(given(**strategies)(body))
        skip = pytest.mark.skipif(not LONG, reason="long variant: set EDGECLOUD_LONG=1")
        return quick, pytest.mark.slow(skip(long))

    return wrap

FIELD_DETAIL = re.compile(r"^(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*|ids\|source\|all): \S")
REJECT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}
# Logged fields (ids, app id, labels) refuse C0/C1 controls, DEL and the Unicode line breaks.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SEEN: Counter[str] = Counter()

MAX_PROMPT_BYTES = 32 * 1024
MAX_TOKENS = 2048
KINDS = ("email", "message", "note", "event", "contact", "preference", "document")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("badinput")
    cfg = write_config(tmp / "agent.toml", "[model]\nn_threads = 1\nwarmup = false\n")
    policy = write_config(tmp / "policy.toml", "version = 1\n")
    svc = start_agent(tmp / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_POLICY=str(policy))
    svc.policy_path = policy
    yield svc
    assert svc.proc.poll() is None, "the daemon died under bad input:\n" + svc.log()
    assert stop_service(svc) == 0, svc.log()
    print(f"\nbad-input: outcomes {dict(sorted(SEEN.items()))}")


@pytest.fixture(scope="module")
def channel(agent: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(agent_target(agent)) as ch:
        yield ch


def check_status(exc: grpc.RpcError, bad: set[str], what: str) -> None:
    code, details = exc.code(), exc.details() or ""
    SEEN[f"{what}:{code.name}"] += 1
    assert code in REJECT, (code, details)
    m = FIELD_DETAIL.match(details)
    assert m, f"details do not start with a field name: {details!r}"
    assert m.group("field") in bad or re.sub(r"\[\d+\]", "", m.group("field")) in bad, (details, bad)


# -- GenerateRequest ------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
words = st.text(st.characters(exclude_categories=("Cs", "Z", "C")), min_size=1, max_size=12)
floats = st.one_of(st.floats(width=32), st.sampled_from([-0.0, 2.0000001, -1e-9, 1.0000001]))
int32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([-1, 2049, 2**31 - 1, -(2**31)]))


def mostly(valid: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` nine times in ten, otherwise ``wild`` (which may still be valid)."""
    return st.integers(0, 9).flatmap(lambda n: wild if n == 0 else valid)


prompts = mostly(
    st.lists(words, min_size=1, max_size=8).map(" ".join),
    st.one_of(
        text,
        st.sampled_from(["", "   ", "\x00", "a\x00b", "\u2028", "\t\n"]),
        st.integers(MAX_PROMPT_BYTES - 2, MAX_PROMPT_BYTES + 2).map(lambda n: "x" * n),
        st.integers(1, 3).map(lambda n: "é" * (MAX_PROMPT_BYTES // 2 - 2 + n)),
    ),
)


@st.composite
def generate_requests(draw: st.DrawFn) -> pb.GenerateRequest:
    params = common_pb2.GenerationParams(
        max_tokens=draw(mostly(st.integers(0, MAX_TOKENS), int32)),
        temperature=draw(mostly(st.floats(0, 2), floats)),
        top_p=draw(mostly(st.floats(0, 1), floats)),
        top_k=draw(mostly(st.integers(0, 100), int32)),
        stop=draw(mostly(st.lists(words, max_size=3), st.lists(st.one_of(text, st.text(min_size=60, max_size=70)), max_size=10))),
    )
    if draw(st.booleans()):
        params.seed = draw(st.integers(0, 2**64 - 1))
    routing = pb.Routing(
        preference=draw(mostly(st.integers(0, 2), st.integers(-(2**31), 2**31 - 1))),
        deadline_ms=draw(mostly(st.integers(0, 60_000), int32)),
        max_cost=draw(mostly(st.floats(0, 10), st.floats())),
        personal=draw(st.booleans()),
        labels=draw(mostly(st.lists(words, max_size=3), st.lists(text, max_size=20))),
        app_id=draw(text),
    )
    return pb.GenerateRequest(
        prompt=draw(prompts),
        params=params,
        routing=routing,
        use_context=draw(st.booleans()),
        request_id=draw(mostly(st.text(st.characters(codec="ascii"), max_size=20), st.text(min_size=60, max_size=70))),
    )


def bad_fields(m: pb.GenerateRequest) -> set[str]:
    """The documented rules (proto comments and README), as an oracle."""
    bad: set[str] = set()
    size = len(m.prompt.encode("utf-8"))
    if not m.prompt.strip() or "\x00" in m.prompt or size > MAX_PROMPT_BYTES:
        bad.add("prompt")
    p = m.params
    if not 0 <= p.max_tokens <= MAX_TOKENS:
        bad.add("params.max_tokens")
    if not 0.0 <= p.temperature <= 2.0:
        bad.add("params.temperature")
    if not 0.0 <= p.top_p <= 1.0:
        bad.add("params.top_p")
    if p.top_k < 0:
        bad.add("params.top_k")
    if len(p.stop) > 8:
        bad.add("params.stop")
    if any(not s or len(s) > 64 for s in p.stop):
        bad.add("params.stop")
    r = m.routing
    if r.preference not in (0, 1, 2):
        bad.add("routing.preference")
    if r.deadline_ms < 0:
        bad.add("routing.deadline_ms")
    if not r.max_cost >= 0:
        bad.add("routing.max_cost")
    if len(r.labels) > 16 or any(len(x) > 64 or CONTROL.search(x) for x in r.labels):
        bad.add("routing.labels")
    if len(r.app_id) > 128 or CONTROL.search(r.app_id):
        bad.add("routing.app_id")
    if len(m.request_id) > 64 or CONTROL.search(m.request_id):
        bad.add("request_id")
    return bad


def too_long_for_context(exc: grpc.RpcError, msg: pb.GenerateRequest) -> bool:
    """More tokens than the model's context: refused naming the prompt. The byte limit
    alone cannot tell, so only long prompts may get this."""
    refused = exc.code() == grpc.StatusCode.OUT_OF_RANGE and (exc.details() or "").startswith("prompt: ")
    return refused and len(msg.prompt.encode()) > 4096


def _random_generate_requests(channel: grpc.Channel, msg: pb.GenerateRequest) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    bad = bad_fields(msg)
    try:
        decision = stub.ExplainRoute(msg, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, "ExplainRoute hung"
        if not bad and too_long_for_context(exc, msg):
            SEEN["explain:OUT_OF_RANGE"] += 1
        else:
            assert bad, f"a valid request was rejected: {exc.code()} {exc.details()}"
            check_status(exc, bad, "explain")
    else:
        SEEN["explain:OK"] += 1
        assert not bad, f"accepted although {bad} break the rules"
        assert decision.target in (pb.ROUTE_TARGET_LOCAL, pb.ROUTE_TARGET_REJECT) or decision.target
    # Generate validates the same way; a valid one starts streaming and is cancelled.
    call = stub.Generate(msg, timeout=60)
    try:
        first = next(call)
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, "Generate hung"
        if not bad:
            assert exc.code() != grpc.StatusCode.INTERNAL, exc.details()
            SEEN[f"generate:{exc.code().name}"] += 1
            assert too_long_for_context(exc, msg) or exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            return
        check_status(exc, bad, "generate")
    except StopIteration:  # pragma: no cover - a stream always has a done
        raise AssertionError("empty Generate stream") from None
    else:
        SEEN["generate:OK"] += 1
        assert not bad, f"Generate accepted although {bad} break the rules"
        assert first.HasField("delta") or first.HasField("done")
        call.cancel()


test_random_generate_requests, test_random_generate_requests_long = fuzzed(EXAMPLES, msg=generate_requests())(_random_generate_requests)


def test_use_context_with_a_long_prompt_is_accepted(channel: grpc.Channel) -> None:
    """A prompt over the store's 2000-character query limit still retrieves context (it
    was once refused OUT_OF_RANGE naming ``query``, a field the request does not have)."""
    stub = pb_grpc.EdgeAgentStub(channel)
    prompt = "Summarise my notes about the garden. " * 60  # about 2.2 kB
    d = stub.ExplainRoute(pb.GenerateRequest(prompt=prompt, use_context=True), timeout=30)
    assert d.target == pb.ROUTE_TARGET_LOCAL


# -- PutContext -----------------------------------------------------------------------------

timestamps = st.one_of(st.just(0), st.integers(-(2**63), 2**63 - 1), st.integers(253402300790, 253402300810))
valid_time = st.one_of(st.just(0), st.integers(1, 253402300799))


@st.composite
def items(draw: st.DrawFn) -> pb.ContextItem:
    starts = draw(mostly(valid_time, timestamps))
    in_range = 0 < starts <= 253402300799
    ends = draw(mostly(st.integers(starts, min(starts + 10**6, 253402300799)) if in_range else st.just(0), timestamps))
    return pb.ContextItem(
        id=draw(text),
        kind=draw(mostly(st.sampled_from(KINDS), text)),
        title=draw(mostly(text, st.integers(998, 1002).map(lambda n: "t" * n))),
        body=draw(mostly(st.lists(words, min_size=1, max_size=6).map(" ".join), st.one_of(text, st.sampled_from(["", " ", "\n"])))),
        source=draw(mostly(st.sampled_from(["", "api", "fuzz"]), st.one_of(text, st.text(min_size=199, max_size=202)))),
        source_id=draw(mostly(st.text(st.characters(codec="ascii"), max_size=10), text)),
        participants=draw(mostly(st.lists(words, max_size=3), st.lists(text, max_size=3))),
        tags=draw(mostly(st.lists(words, max_size=3), st.lists(st.one_of(text, st.text(min_size=65, max_size=66)), max_size=3))),
        sensitivity=draw(mostly(st.sampled_from(["", "public", "personal", "secret"]), text)),
        created_at=draw(mostly(valid_time, timestamps)),
        starts_at=starts,
        ends_at=ends,
        expires_at=draw(mostly(st.one_of(st.just(0), st.integers(4_000_000_000, 253402300799)), timestamps)),
    )


def bad_item_fields(i: int, it: pb.ContextItem) -> set[str]:
    f = f"items[{i}]"
    bad: set[str] = set()
    if it.kind not in KINDS:
        bad.add(f"{f}.kind")
    if (it.sensitivity or "personal") not in ("public", "personal", "secret"):
        bad.add(f"{f}.sensitivity")
    if not it.body.strip():
        bad.add(f"{f}.body")
    if len(it.title) > 1000:
        bad.add(f"{f}.title")
    if it.source and not it.source.strip():
        bad.add(f"{f}.source")
    if len(it.source) > 200:
        bad.add(f"{f}.source")
    for name in ("created_at", "starts_at", "ends_at", "expires_at"):
        v = getattr(it, name)
        if v != 0 and not 0 <= v <= 253402300799:
            bad.add(f"{f}.{name}")
    if it.starts_at and it.ends_at and it.ends_at < it.starts_at:
        bad.add(f"{f}.ends_at")
    if it.ends_at and not it.starts_at:
        bad.add(f"{f}.starts_at")
    for j, p in enumerate(it.participants):
        if not p.strip():
            bad.add(f"{f}.participants[{j}]")
    for j, t in enumerate(it.tags):
        if not t.strip() or len(t) > 64:
            bad.add(f"{f}.tags[{j}]")
    return bad


def _random_put_context(channel: grpc.Channel, batch: list[pb.ContextItem]) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    bad: set[str] = set() if batch else {"items"}
    for i, it in enumerate(batch):
        bad |= bad_item_fields(i, it)
    try:
        ids = stub.PutContext(pb.PutContextRequest(items=batch), timeout=30).ids
    except grpc.RpcError as exc:
        assert bad, f"a valid batch was rejected: {exc.code()} {exc.details()}"
        check_status(exc, bad, "put")
    else:
        SEEN["put:OK"] += 1
        assert not bad, f"accepted although {bad} break the rules"
        assert len(ids) == len(batch)


test_random_put_context, test_random_put_context_long = fuzzed(EXAMPLES, batch=st.lists(items(), max_size=4))(_random_put_context)


# -- SearchContext with FTS5 syntax ---------------------------------------------------------

FTS = ['"', "*", "NEAR(", "NEAR", ")", "(", "AND", "OR", "NOT", "^", ":", "title:", "{title body}:", "-", "+", "'", "\\", "''", '""', "dentist*", "col:x", "a OR", "NOT b"]


def _fts5_syntax_in_search_is_plain_words(channel: grpc.Channel, words: list[str], limit: int, kinds: list[str]) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    query = " ".join(words)
    bad: set[str] = set()
    if not query.strip():
        bad.add("query")
    if len(query) > 2000:
        bad.add("query")
    if not 0 <= limit <= 100:
        bad.add("limit")
    bad |= {f"kinds[{i}]" for i, k in enumerate(kinds) if k not in KINDS}
    try:
        stub.SearchContext(pb.SearchContextRequest(query=query, limit=limit, kinds=kinds), timeout=30)
    except grpc.RpcError as exc:
        assert bad, f"a valid search was rejected: {exc.code()} {exc.details()} for {query!r}"
        check_status(exc, bad, "search")
    else:
        SEEN["search:OK"] += 1
        assert not bad, f"accepted although {bad} break the rules"


test_fts5_syntax_in_search_is_plain_words, test_fts5_syntax_in_search_is_plain_words_long = fuzzed(EXAMPLES, words=st.lists(st.one_of(st.sampled_from(FTS), text), max_size=8),
    limit=st.one_of(st.integers(0, 100), st.integers(-(2**31), 2**31 - 1)),
    kinds=st.lists(st.one_of(st.sampled_from(KINDS), text), max_size=2),)(_fts5_syntax_in_search_is_plain_words)


def test_fts5_operators_find_the_words(channel: grpc.Channel) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    item = pb.ContextItem(kind="event", title="Dentist appointment", body="Dentist zebrafinch at the clinic", sensitivity="personal")
    (item_id,) = stub.PutContext(pb.PutContextRequest(items=[item]), timeout=30).ids
    for q in ['NEAR("zebrafinch" clinic)', "zebrafinch*", '"zebrafinch', "title:zebrafinch", "zebrafinch AND NOT", "(zebrafinch", "{body}: zebrafinch ^"]:
        hits = stub.SearchContext(pb.SearchContextRequest(query=q, limit=5), timeout=30).hits
        assert item_id in [h.item.id for h in hits], q
        SEEN["search:fts-operator-found"] += 1


# -- bytes that are not the message, and messages beyond the limit --------------------------


def _raw(channel: grpc.Channel, method: str, payload: bytes) -> grpc.RpcError:
    fn = channel.unary_unary(f"/edgecloud.v1.EdgeAgent/{method}", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        fn(payload, timeout=30)
    return info.value  # type: ignore[return-value]


UNDECODABLE = {
    "invalid UTF-8 in prompt": b"\x0a\x04\xff\xfe\xfd\xfc",
    "truncated varint": b"\x10\xff\xff\xff",
    "length beyond the end": b"\x0a\x7fhello",
    "wrong wire type": b"\x0d\x00\x00\x00",
}


def test_undecodable_request_bytes_leave_the_daemon_serving(channel: grpc.Channel, agent: Any) -> None:
    for payload in UNDECODABLE.values():
        for method in ("ExplainRoute", "PutContext", "SearchContext", "Complete"):
            exc = _raw(channel, method, payload)
            SEEN[f"raw:{exc.code().name}"] += 1
            assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED
    assert agent.proc.poll() is None
    stub = pb_grpc.EdgeAgentStub(channel)
    assert stub.ExplainRoute(pb.GenerateRequest(prompt="still there?"), timeout=30).target == pb.ROUTE_TARGET_LOCAL


def test_undecodable_request_bytes_are_invalid_argument(channel: grpc.Channel) -> None:
    """Bytes that are not the request message get INVALID_ARGUMENT without exception text
    (grpc.aio's own deserializer once answered UNKNOWN with the DecodeError)."""
    for name, payload in UNDECODABLE.items():
        for method in ("ExplainRoute", "PutContext", "SearchContext", "Complete", "DeleteContext"):
            exc = _raw(channel, method, payload)
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, method, exc.code(), exc.details())
            assert "Error" not in (exc.details() or "") and "<class" not in (exc.details() or ""), exc.details()
            assert FIELD_DETAIL.match(exc.details() or ""), exc.details()


def test_oversized_messages_get_resource_exhausted(channel: grpc.Channel, agent: Any) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    huge = "x" * (5 * 1024 * 1024)
    for fn, msg in [
        (stub.ExplainRoute, pb.GenerateRequest(prompt=huge)),
        (stub.Complete, pb.GenerateRequest(prompt=huge)),
        (stub.PutContext, pb.PutContextRequest(items=[pb.ContextItem(kind="note", body=huge)])),
        (stub.SearchContext, pb.SearchContextRequest(query=huge)),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            fn(msg, timeout=60)
        SEEN[f"oversized:{info.value.code().name}"] += 1
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Just under the transport limit, the API's own limits answer, naming the field.
    big = "y" * (3 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as info:
        stub.ExplainRoute(pb.GenerateRequest(prompt=big), timeout=60)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE and info.value.details().startswith("prompt:")
    with pytest.raises(grpc.RpcError) as info:
        stub.PutContext(pb.PutContextRequest(items=[pb.ContextItem(kind="note", body=big)]), timeout=60)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE and info.value.details().startswith("items[0].body:")
    assert agent.proc.poll() is None


def test_a_prompt_longer_than_the_context_window_is_refused_not_crashed(channel: grpc.Channel) -> None:
    """Within max_prompt_bytes but far beyond the model's n_ctx in tokens."""
    stub = pb_grpc.EdgeAgentStub(channel)
    prompt = " ".join(f"w{i}" for i in range(6000))[: MAX_PROMPT_BYTES - 10]
    req = pb.GenerateRequest(prompt=prompt, params=common_pb2.GenerationParams(max_tokens=2), routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY))
    try:
        msgs = list(stub.Generate(req, timeout=120))
    except grpc.RpcError as exc:
        SEEN[f"long-prompt:{exc.code().name}"] += 1
        assert exc.code() in REJECT, (exc.code(), exc.details())
        assert (exc.details() or "").startswith("prompt:"), exc.details()
    else:
        SEEN["long-prompt:OK"] += 1
        assert msgs[-1].HasField("done")


def test_rejected_generate_requests_are_counted_in_stats(channel: grpc.Channel) -> None:
    """StatsResponse.errors counts requests rejected with any status, validation included."""
    stub = pb_grpc.EdgeAgentStub(channel)
    before = stub.GetStats(pb.GetStatsRequest(), timeout=10).errors
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            list(stub.Generate(pb.GenerateRequest(prompt="hi", params=common_pb2.GenerationParams(max_tokens=-1)), timeout=10))
    assert stub.GetStats(pb.GetStatsRequest(), timeout=10).errors >= before + 5


def test_daemon_is_healthy_after_the_abuse(channel: grpc.Channel, agent: Any) -> None:
    h = health_pb2_grpc.HealthStub(channel)
    assert h.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    stub = pb_grpc.EdgeAgentStub(channel)
    msgs = list(stub.Generate(pb.GenerateRequest(prompt="The sky is", params=common_pb2.GenerationParams(max_tokens=2)), timeout=60))
    assert msgs[-1].HasField("done") and msgs[-1].done.usage.completion_tokens > 0
    assert "internal error" not in agent.log(), agent.log()[-3000:]


# -- random policy files --------------------------------------------------------------------

SECTIONS: dict[str, dict[str, Any]] = {
    "privacy": {"local_sensitivities": ["personal"], "local_pii": ["email"], "local_keywords": ["x"]},
    "privacy.redaction": {"enabled": True, "kinds": ["email"], "sensitivities": []},
    "latency": {"default_deadline_ms": 1000, "margin": 0.2, "ewma_alpha": 0.2},
    "latency.local": {"ttft_ms": 100.0, "ms_per_prompt_token": 1.0, "tokens_per_s": 20.0},
    "cost": {"currency": "USD", "cloud_price_in_per_1k": 0.1, "daily_budget": 1.0, "on_budget_exhausted": "local"},
    "quality": {"prefer_cloud_prompt_tokens_over": 10, "prefer_cloud_keywords": ["prove"]},
    "quality.cascade": {"enabled": False, "first_tokens": 8, "min_mean_prob": 0.5},
    "weights": {"latency": 1.0, "cost": 1.0, "quality": 2.0},
}
toml_values = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), text,
    st.lists(st.one_of(text, st.integers()), max_size=3), st.just({"k": 1}),
)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


@st.composite
def policies(draw: st.DrawFn) -> tuple[str, str]:
    """(TOML text, the key path that was set to a random value or added)."""
    section = draw(st.sampled_from(sorted(SECTIONS)))
    keys = dict(SECTIONS[section])
    unknown = draw(st.booleans()) and draw(st.booleans())
    name = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True)) if unknown else draw(st.sampled_from(sorted(keys)))
    if unknown and name in keys:
        unknown = False
    keys[name] = draw(toml_values)
    doc = "version = 1\n" + f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
    return doc, f"{section}.{name}"


def _random_policy_files_raise_only_policy_errors_naming_the_key(case: tuple[str, str]) -> None:
    doc, key = case
    try:
        parse_policy(doc, "fuzz.toml")
    except PolicyError as exc:
        SEEN["policy:PolicyError"] += 1
        assert exc.file == "fuzz.toml"
        assert exc.key and str(exc).startswith(f"fuzz.toml: {exc.key}: ")
        # The error names the key that was changed (or a key inside it, or its table's rule).
        assert exc.key.startswith(key) or key.startswith(exc.key) or exc.key.rsplit(".", 1)[0] == key.rsplit(".", 1)[0], (exc.key, key, doc)
    else:
        SEEN["policy:ok"] += 1


test_random_policy_files_raise_only_policy_errors_naming_the_key, test_random_policy_files_raise_only_policy_errors_naming_the_key_long = fuzzed(EXAMPLES * 2, case=policies())(_random_policy_files_raise_only_policy_errors_naming_the_key)


def _random_policy_text_raises_only_policy_errors(doc: str) -> None:
    try:
        parse_policy(doc, "fuzz.toml")
    except PolicyError as exc:
        SEEN["policy-text:PolicyError"] += 1
        assert exc.key
    else:
        SEEN["policy-text:ok"] += 1


test_random_policy_text_raises_only_policy_errors, test_random_policy_text_raises_only_policy_errors_long = fuzzed(EXAMPLES, doc=st.one_of(text, st.text(st.sampled_from(list('[]="{}.,#\n \\0123456789abcdefxyz_-tru')), max_size=80)))(_random_policy_text_raises_only_policy_errors)


def test_policy_reload_rejects_a_bad_file_and_keeps_the_old(channel: grpc.Channel, agent: Any) -> None:
    """ReloadPolicy refuses a broken file with FAILED_PRECONDITION naming the key; the old
    policy stays in force."""
    stub = pb_grpc.EdgeAgentStub(channel)
    pol: Path = agent.policy_path
    good = pol.read_text()
    try:
        for bad, key in [("[latency]\nmargin = \"wide\"\n", "latency.margin"), ("[privacy]\nlocal_pii = [\"dna\"]\n", "privacy.local_pii[0]"), ("[[rules]]\nname = 1\n", "rules[0].name"), ("[x\n", "<toml>")]:
            pol.write_text("version = 1\n" + bad)
            with pytest.raises(grpc.RpcError) as info:
                stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30)
            SEEN[f"reload:{info.value.code().name}"] += 1
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert key in (info.value.details() or ""), (key, info.value.details())
            assert stub.ExplainRoute(pb.GenerateRequest(prompt="hi"), timeout=30).target == pb.ROUTE_TARGET_LOCAL
    finally:
        pol.write_text(good)
    assert stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30).policy_file
