"""Tool calling through the OpenAI door, with the official ``openai`` SDK against the
real daemon and the real model: every call names an offered function and its arguments
match that function's schema (the grammar makes them so), streamed or not, after a
``role: tool`` turn too; bad tool requests are refused with the field named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from conftest import Service, http_agent, openai_client

pytestmark = pytest.mark.model

TOKEN = "tools-token"
MODEL = "gemma-3-270m-q4_k_m"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ALARM = {
    "type": "function",
    "function": {
        "name": "set_alarm",
        "description": "Set an alarm.",
        "parameters": {
            "type": "object",
            "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23},
                           "minute": {"type": "integer", "minimum": 0, "maximum": 59}},
            "required": ["hour", "minute"],
            "additionalProperties": False,
        },
    },
}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ALARM)}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from http_agent(tmp_path_factory, "agent-tools", TOKEN)


@pytest.fixture(scope="module")
def client(agent: Service) -> Iterator[openai.OpenAI]:
    yield from openai_client(agent, TOKEN)


def _valid(name: str, arguments: str) -> dict[str, Any]:
    args = json.loads(arguments)
    jsonschema.validate(args, SCHEMAS[name])
    return args


def test_a_required_call_is_valid_by_construction(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, ALARM], tool_choice="required",
                                          temperature=0, max_tokens=96)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        _valid(call.function.name, call.function.arguments)


def test_a_named_function_is_the_one_called(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, ALARM], temperature=0,
                                          tool_choice={"type": "function", "function": {"name": "set_alarm"}},
                                          parallel_tool_calls=False, max_tokens=96)
    calls = resp.choices[0].message.tool_calls
    assert calls and len(calls) == 1 and calls[0].function.name == "set_alarm"
    _valid("set_alarm", calls[0].function.arguments)


def test_a_streamed_call_equals_the_whole_answer(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "messages": ASK, "tools": [WEATHER], "tool_choice": "required",
                              "temperature": 0, "max_tokens": 96}
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls
    assert whole
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if not chunk.choices:
            continue
        for d in chunk.choices[0].delta.tool_calls or []:
            got = calls.setdefault(d.index, {"name": "", "arguments": ""})
            got["name"] += (d.function.name or "") if d.function else ""
            got["arguments"] += (d.function.arguments or "") if d.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == \
        [(c.function.name, json.loads(c.function.arguments)) for c in whole]


def test_the_result_of_a_call_goes_back_to_the_model(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
                                           temperature=0, max_tokens=96).choices[0].message
    assert first.tool_calls
    call = first.tool_calls[0]
    convo = [*ASK, {"role": "assistant", "content": None,
                    "tool_calls": [{"id": call.id, "type": "function",
                                    "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
             {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18, "sky": "clear"}'}]
    resp = client.chat.completions.create(model=MODEL, messages=convo, tools=[WEATHER], tool_choice="auto",
                                          temperature=0, max_tokens=64)
    choice = resp.choices[0]
    # auto: a plain answer or another valid call, nothing else
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        for c in choice.message.tool_calls:
            _valid(c.function.name, c.function.arguments)
    else:
        assert isinstance(choice.message.content, str) and choice.finish_reason in ("stop", "length")


def test_tool_choice_none_answers_in_plain_text(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none",
                                          temperature=0, max_tokens=12)
    msg = resp.choices[0].message
    assert not msg.tool_calls and isinstance(msg.content, str) and resp.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]},
     "tools[0].function.parameters"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
])
def test_bad_tool_requests_name_the_field(client: openai.OpenAI, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, **kwargs)
    assert err.value.status_code == 400 and err.value.body["param"] == param, err.value.body  # type: ignore[index]


def test_a_tool_turn_must_name_its_call(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, max_tokens=8, tools=[WEATHER],
                                       messages=[*ASK, {"role": "tool", "content": "18 degrees"}])
    assert err.value.body["param"] == "messages[1].tool_call_id"  # type: ignore[index]


# -- the gRPC door: the same rules and the same calls ---------------------------------


def _stub(agent: Service) -> tuple[Any, Any]:
    import grpc
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

    ch = grpc.insecure_channel(agent.grpc_target)
    return ch, pb_grpc.EdgeAgentStub(ch)


def _pb_tools(choice: str = "required") -> Any:
    from edgecloud.v1 import edge_agent_pb2 as pb

    return pb.ToolUse(choice=choice, tools=[
        pb.Tool(name=t["function"]["name"], description=t["function"]["description"],
                parameters_json=json.dumps(t["function"]["parameters"])) for t in (WEATHER, ALARM)])


def test_grpc_calls_equal_the_openai_doors(client: openai.OpenAI, agent: Service) -> None:
    from edgecloud.v1 import common_pb2
    from edgecloud.v1 import edge_agent_pb2 as pb

    http = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, ALARM], tool_choice="required",
                                          temperature=0, max_tokens=96).choices[0].message.tool_calls
    assert http
    ch, stub = _stub(agent)
    with ch:
        req = pb.GenerateRequest(messages=[common_pb2.ChatMessage(role="user", content=ASK[0]["content"])],
                                 params=common_pb2.GenerationParams(max_tokens=96), tools=_pb_tools())
        whole = stub.Complete(req, timeout=120)
        streamed = list(stub.Generate(req, timeout=120))
    assert whole.done.finish_reason == "tool_calls" and whole.text == ""
    assert [(c.name, json.loads(c.arguments_json)) for c in whole.done.tool_calls] == \
        [(c.function.name, json.loads(c.function.arguments)) for c in http]
    assert [r.WhichOneof("event") for r in streamed] == ["done"]  # a call is no text
    assert [(c.name, c.arguments_json) for c in streamed[-1].done.tool_calls] == \
        [(c.name, c.arguments_json) for c in whole.done.tool_calls]
    # the call and its result go back as turns
    call = whole.done.tool_calls[0]
    ch2, stub2 = _stub(agent)
    with ch2:
        follow = stub2.Complete(pb.GenerateRequest(
            messages=[common_pb2.ChatMessage(role="user", content=ASK[0]["content"]),
                      common_pb2.ChatMessage(role="assistant", tool_calls=[call]),
                      common_pb2.ChatMessage(role="tool", tool_call_id=call.id, content="18 degrees, clear")],
            params=common_pb2.GenerationParams(max_tokens=48), tools=_pb_tools("auto")), timeout=120)
    assert follow.done.finish_reason in ("tool_calls", "stop", "length")
    for c in follow.done.tool_calls:
        _valid(c.name, c.arguments_json)


@pytest.mark.parametrize(("tools", "field"), [
    ({"tools": [{"name": "bad name!"}]}, "tools.tools[0].name"),
    ({"tools": [{"name": "f", "parameters_json": "{not json"}]}, "tools.tools[0].parameters_json"),
    ({"tools": [{"name": "f", "parameters_json": '{"type": "nonsense"}'}]}, "tools.tools[0].parameters_json"),
    ({"tools": [{"name": "f"}], "choice": "g"}, "tools.choice"),
    ({"choice": "required"}, "tools.choice"),
])
def test_grpc_bad_tools_name_the_field(agent: Service, tools: dict[str, Any], field: str) -> None:
    import grpc
    from edgecloud.v1 import common_pb2
    from edgecloud.v1 import edge_agent_pb2 as pb

    use = pb.ToolUse(choice=tools.get("choice", ""), tools=[pb.Tool(**t) for t in tools.get("tools", [])])
    ch, stub = _stub(agent)
    with ch, pytest.raises(grpc.RpcError) as err:
        stub.Complete(pb.GenerateRequest(messages=[common_pb2.ChatMessage(role="user", content="hi")],
                                         params=common_pb2.GenerationParams(max_tokens=4), tools=use), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(field + ":"), err.value.details()
