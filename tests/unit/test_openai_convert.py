"""The HTTP front door's request rules: every rejection names the JSON field."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import InvalidArgument, OutOfRange
from edge_agent.config import LimitsConfig
from edge_agent.transport import openai_convert as oc
from edge_agent.transport.openai_http import ModelNotFound, PayloadTooLarge, error_body
from orchestrator.types import Preference

LIMITS = LimitsConfig()


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def _field(body: dict[str, Any], chat: bool = True) -> str:
    with pytest.raises(InvalidArgument) as err:
        oc.http_request(body, LIMITS, chat=chat)
    return err.value.field


def test_a_plain_chat_request() -> None:
    r = oc.http_request(_chat(max_tokens=7, temperature=0, stop="\n", seed=3), LIMITS, chat=True)
    assert r.chat and not r.stream and r.model == "m"
    assert [(m.role, m.content) for m in r.ask.messages] == [("user", "hi")]
    p = r.ask.params
    assert (p.max_tokens, p.temperature, p.stop, p.seed) == (7, 0.0, ("\n",), 3)


def test_defaults_follow_the_openai_api() -> None:
    p = oc.http_request(_chat(), LIMITS, chat=True).ask.params
    assert p.temperature == oc.DEFAULT_TEMPERATURE and p.max_tokens == LIMITS.default_max_tokens and p.seed is None


def test_developer_role_and_text_parts() -> None:
    body = {"model": "m", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]}
    msgs = oc.http_request(body, LIMITS, chat=True).ask.messages
    assert [(m.role, m.content) for m in msgs] == [("system", "Be brief."), ("user", "ab")]


def test_extension_fields() -> None:
    ext = {"use_context": True, "personal": True, "preference": "local_only", "deadline_ms": 500,
           "max_cost": 0.5, "labels": ["a"], "app_id": "mail", "top_k": 40}
    a = oc.http_request(_chat(edgecloud=ext), LIMITS, chat=True).ask
    assert a.use_context and a.personal and a.preference is Preference.LOCAL_ONLY
    assert (a.deadline_ms, a.max_cost, a.labels, a.app_id, a.params.top_k) == (500, 0.5, ("a",), "mail", 40)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (_chat(messages=[]), "messages"),
        (_chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (_chat(messages=[{"role": "user", "content": "  "}]), "messages[0].content"),
        (_chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content[0]"),
        (_chat(messages=[{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]), "messages[1].role"),
        (_chat(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]), "messages[1].role"),
        (_chat(messages=["hi"]), "messages[0]"),
        (_chat(temperature=2.5), "temperature"),
        (_chat(temperature="hot"), "temperature"),
        (_chat(temperature=True), "temperature"),
        (_chat(top_p=0), "top_p"),
        (_chat(max_tokens=0), "max_tokens"),
        (_chat(max_tokens=1.5), "max_tokens"),
        (_chat(stop=[1]), "stop"),
        (_chat(stop=["x"] * 9), "stop"),
        (_chat(stream="yes"), "stream"),
        (_chat(n=2), "n"),
        (_chat(logprobs=True), "logprobs"),
        (_chat(presence_penalty=0.5), "presence_penalty"),
        (_chat(tools=[{"type": "function"}]), "tools[0].function"),
        (_chat(edgecloud=[]), "edgecloud"),
        (_chat(edgecloud={"bogus": 1}), "edgecloud.bogus"),
        (_chat(edgecloud={"preference": "cheapest"}), "edgecloud.preference"),
        (_chat(edgecloud={"deadline_ms": -1}), "edgecloud.deadline_ms"),
        (_chat(edgecloud={"max_cost": -1}), "edgecloud.max_cost"),
        (_chat(edgecloud={"labels": ["a\nb"]}), "edgecloud.labels[0]"),
        (_chat(edgecloud={"use_context": "yes"}), "edgecloud.use_context"),
        (_chat(user="evil\r\nINFO forged"), "user"),
    ],
)
def test_rejections_name_the_field(body: dict[str, Any], field: str) -> None:
    assert _field(body) == field


def test_completion_prompts() -> None:
    assert oc.http_request({"model": "m", "prompt": ["one"]}, LIMITS, chat=False).ask.prompt == "one"
    assert _field({"model": "m", "prompt": ["a", "b"]}, chat=False) == "prompt"
    assert _field({"model": "m", "prompt": ""}, chat=False) == "prompt"
    assert _field({"model": "m", "prompt": "a\x00b"}, chat=False) == "prompt"
    with pytest.raises(OutOfRange):
        oc.http_request({"model": "m", "prompt": "x" * (LIMITS.max_prompt_bytes + 1)}, LIMITS, chat=False)
    with pytest.raises(OutOfRange) as big:
        oc.http_request(_chat(max_tokens=LIMITS.max_tokens + 1), LIMITS, chat=True)
    assert big.value.field == "max_tokens"


@pytest.mark.parametrize("raw", [b"", b"[1]", b"{bad", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object(raw: bytes) -> None:
    with pytest.raises(InvalidArgument) as err:
        oc.parse_body(raw)
    assert err.value.field == "body"


def test_error_objects_and_statuses() -> None:
    from common import errors as e

    status, body, headers = error_body(e.ResourceExhausted("queue full", retry_after_s=2.4))
    assert (status, body["error"]["type"], headers["Retry-After"]) == (429, "rate_limit_error", "2")
    assert error_body(e.InvalidArgument("temperature", "must be in [0, 2]"))[1]["error"]["param"] == "temperature"
    assert error_body(ModelNotFound("x"))[:2][0] == 404 and error_body(ModelNotFound("x"))[1]["error"]["code"] == "model_not_found"
    assert error_body(PayloadTooLarge("body", "too big"))[0] == 413
    assert error_body(e.PermissionDenied("policy"))[0] == 403
    assert error_body(e.Unavailable("starting"))[0] == 503
    status, body, _ = error_body(RuntimeError("secret detail"))
    assert status == 500 and "secret" not in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_chat(max_tokenz=5), "max_tokenz"),  # a typo is refused, not ignored
        ({"model": "m", "prompt": "x", "messages": []}, "messages"),  # on /v1/completions
        (_chat(n=True), "n"),  # bool is not int: the neutral values match with their JSON type
        (_chat(n=1.0), "n"),
        (_chat(logprobs=0), "logprobs"),
        (_chat(presence_penalty=False), "presence_penalty"),
        (_chat(frequency_penalty=False), "frequency_penalty"),
        (_chat(seed=-1), "seed"),
        (_chat(seed=2**64), "seed"),
        (_chat(edgecloud={"top_k": -1}), "edgecloud.top_k"),
        (_chat(edgecloud={"top_k": 2**40}), "edgecloud.top_k"),
        (_chat(edgecloud={"deadline_ms": 2**40}), "edgecloud.deadline_ms"),
    ],
)
def test_unknown_fields_strict_types_and_ranges_name_the_field(body: dict[str, Any], field: str) -> None:
    assert _field(body, chat="messages" in body and "prompt" not in body) == field


def test_neutral_values_of_unsupported_fields_pass() -> None:
    body = _chat(n=1, logprobs=False, presence_penalty=0, frequency_penalty=0.0, tools=[], seed=2**64 - 1)
    assert oc.http_request(body, LIMITS, chat=True).ask.params.seed == 2**64 - 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
        (b'{"model": "m", "user": "a\\udfffb", "messages": []}', "user"),
        (b'{"model": "m", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "body"),
        (b'{"model": "m", "e": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001, "body"),
        (b'{"model": "m", "seed": ' + b"9" * 5000 + b"}", "body"),
    ],
)
def test_bodies_that_used_to_raise_inside_the_parser(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        oc.parse_body(raw)
    assert err.value.field == field


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[{" * 5000 + '\\"'
    body = oc.parse_body(b'{"model": "m", "messages": [{"role": "user", "content": "' + text.encode() + b'"}]}')
    assert body["messages"][0]["content"].startswith("[{[{")
    assert oc.body_depth(b'{"a": [[{"b": "]]]]"}]]}') == 4
