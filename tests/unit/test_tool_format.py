"""The tool-call answer format (``common/tools.py``) and how the OpenAI door maps a
conversation with tools onto the request builder, without a model: the answer schema's
shape per ``tool_choice``, parsing an answer, earlier calls and results as turns."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from common import tools
from common.errors import InvalidArgument, OutOfRange
from edge_agent.config import LimitsConfig
from edge_agent.transport.openai_convert import http_request

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ALARM = {"type": "function", "function": {
    "name": "set_alarm", "parameters": {"type": "object", "properties": {"hour": {"type": "integer"}}, "required": ["hour"]}}}


def _use(choice: Any = None, parallel: Any = None) -> tools.ToolUse:
    use = tools.check_tools([WEATHER, ALARM], choice, parallel)
    assert use is not None
    return use


def test_required_admits_calls_of_offered_functions_only() -> None:
    schema = _use("required").answer_schema()
    jsonschema.validate({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}, schema)
    for bad in ({"tool_calls": [{"name": "get_weather", "arguments": {}}]},  # its schema: city required
                {"tool_calls": [{"name": "rm_rf", "arguments": {}}]},
                {"tool_calls": []},
                {"content": "hello"},  # required: a call, not a plain answer
                {"tool_calls": [{"name": "set_alarm", "arguments": {"hour": 7}}] * 2}):  # one call unless parallel
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_auto_admits_a_plain_answer_and_parallel_calls_when_asked() -> None:
    schema = _use("auto", parallel=True).answer_schema()
    jsonschema.validate({"content": "It is sunny."}, schema)
    jsonschema.validate({"tool_calls": [{"name": "set_alarm", "arguments": {"hour": 7}}] * 2}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "set_alarm", "arguments": {"hour": 7}}] * (tools.MAX_PARALLEL_CALLS + 1)}, schema)


def test_a_named_choice_admits_that_function_only() -> None:
    schema = _use({"type": "function", "function": {"name": "set_alarm"}}).answer_schema()
    jsonschema.validate({"tool_calls": [{"name": "set_alarm", "arguments": {"hour": 7}}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}, schema)
    assert "Call the function set_alarm." in _use({"type": "function", "function": {"name": "set_alarm"}}).instructions()


def test_none_asks_for_no_json() -> None:
    assert not _use("none").asks_for_json and _use("auto").asks_for_json


def test_parse_answer() -> None:
    assert tools.parse_answer('{"content": "hi"}') == ("hi", ())
    content, calls = tools.parse_answer('{"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}')
    assert content is None and calls == (tools.ToolCall("f", {"x": 1}),)
    cut = '{"tool_calls": [{"name": "f", "argu'  # cut short by max_tokens: shown as it is
    assert tools.parse_answer(cut) == (cut, ())


@pytest.mark.parametrize(("raw", "choice", "parallel", "field"), [
    ({"type": "function"}, None, None, "tools"),
    ([], "required", None, "tool_choice"),
    ([{"type": "function", "function": {"name": "x" * 65}}], None, None, "tools[0].function.name"),
    ([{"type": "function", "function": {"name": "f", "extra": 1}}], None, None, "tools[0].function.extra"),
    ([{"type": "function", "function": {"name": "f", "description": 3}}], None, None, "tools[0].function.description"),
    ([{"type": "function", "function": {"name": "f", "parameters": []}}], None, None, "tools[0].function.parameters"),
    (None, "auto", None, "tool_choice"),
    ([WEATHER], {"type": "function"}, None, "tool_choice"),
    ([WEATHER], None, 1, "parallel_tool_calls"),
])
def test_check_tools_names_the_field(raw: Any, choice: Any, parallel: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        tools.check_tools(raw, choice, parallel)
    assert err.value.field == field


def test_a_conversation_with_calls_and_results_becomes_turns() -> None:
    body = {
        "model": "m", "tools": [WEATHER], "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees, rain"},
        ],
    }
    req = http_request(body, LimitsConfig(), chat=True)
    msgs = req.ask.messages
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0].content.startswith("You can call functions.") and msgs[0].content.endswith("Be brief.")
    assert json.loads(msgs[2].content) == {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    assert msgs[3].content == "Result of get_weather (call call_1): 4 degrees, rain"
    assert req.ask.tools is not None and json.loads(req.ask.params.json_schema) == req.ask.tools.answer_schema()


def test_tools_are_refused_on_text_completions() -> None:
    with pytest.raises(InvalidArgument) as err:
        http_request({"model": "m", "prompt": "hi", "tools": [WEATHER]}, LimitsConfig(), chat=False)
    assert err.value.field == "tools"


def test_a_too_large_tool_set_is_refused_by_name() -> None:
    big = [{"type": "function", "function": {"name": f"f{i}", "description": "d" * 4000,
                                              "parameters": {"type": "object", "properties": {f"p{j}": {"type": "string", "description": "x" * 200} for j in range(40)}}}}
           for i in range(40)]
    with pytest.raises(OutOfRange) as err:
        http_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": big}, LimitsConfig(), chat=True)
    assert err.value.field == "tools" and "bytes of the prompt" in str(err.value)
