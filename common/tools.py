"""Tool calling: functions a model may call, as one JSON answer under a grammar.

A request that offers tools (OpenAI ``tools`` / ``tool_choice``) asks the model for one
JSON object, in every case the same documented answer format:

    {"tool_calls": [{"name": "<function>", "arguments": {<the function's parameters>}}]}
    {"content": "<a plain answer>"}                  (only with tool_choice "auto")

The answer's JSON schema (``ToolUse.answer_schema``) is made of the functions' own
parameter schemas, so the engine's grammar (the one behind structured output) makes
every call valid by construction: the name is one of the offered functions and the
arguments match its schema, also under speculative decoding, which checks drafts
against the same grammar. ``tool_choice`` picks the shape: ``auto`` (a call or a plain
answer), ``required`` (at least one call), a named function (a call of it), ``none``
(the tools are described but no call is asked for: free text). One call an answer
unless ``parallel_tool_calls`` is true (then up to ``MAX_PARALLEL_CALLS``). The functions are
described to the model in a system message (``ToolUse.instructions``); a routed-out
request sends the same text and schema, and the cloud's answer is held back until it
is valid, as for structured output. A conversation's earlier calls and their results
go back to the model as text (``call_turn``, ``result_turn``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import InvalidArgument

MAX_TOOLS = 64
MAX_PARALLEL_CALLS = 8
MAX_DESCRIPTION_CHARS = 4096
CHOICES = ("none", "auto", "required")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EMPTY_PARAMETERS = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ToolNames:
    """Where the tool fields live on a door's wire, for error messages (``{i}``: a
    tool's index). The defaults are OpenAI's."""

    tools: str = "tools"
    type: str = "tools[{i}].type"
    function: str = "tools[{i}].function"  # a function's keys are ``<function>.<key>``
    choice: str = "tool_choice"
    choice_name: str = "tool_choice.function.name"
    parallel: str = "parallel_tool_calls"
    parameters: str = "tools[{i}].function.parameters"  # the schema's own errors (request builder)


PROTO_TOOL_NAMES = ToolNames(tools="tools.tools", type="tools.tools[{i}]", function="tools.tools[{i}]",
                             choice="tools.choice", choice_name="tools.choice", parallel="tools.parallel",
                             parameters="tools.tools[{i}].parameters_json")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # a JSON schema object (checked by the caller)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any  # the parsed JSON value the grammar let through


@dataclass(frozen=True)
class ToolUse:
    """The tools a request offers and how it wants them used."""

    tools: tuple[Tool, ...]
    choice: str = "auto"  # one of CHOICES, or the name of the one function to call
    # more than one call in an answer: only when asked (parallel_tool_calls: true), as
    # llama.cpp's server has it; a small model offered room for eight calls fills it
    parallel: bool = False

    @property
    def asks_for_json(self) -> bool:
        """Whether the answer is the JSON answer format (every choice but ``none``)."""
        return bool(self.tools) and self.choice != "none"

    def _offered(self) -> tuple[Tool, ...]:
        if self.choice in CHOICES:
            return self.tools
        return tuple(t for t in self.tools if t.name == self.choice)

    def answer_schema(self) -> dict[str, Any]:
        """The JSON schema of the answer (see the module docstring)."""
        calls = [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for t in self._offered()
        ]
        item = calls[0] if len(calls) == 1 else {"anyOf": calls}
        tool_calls = {
            "type": "object",
            "properties": {
                "tool_calls": {"type": "array", "items": item, "minItems": 1,
                               "maxItems": MAX_PARALLEL_CALLS if self.parallel else 1},
            },
            "required": ["tool_calls"],
            "additionalProperties": False,
        }
        if self.choice != "auto":
            return tool_calls
        content = {
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
            "additionalProperties": False,
        }
        return {"anyOf": [tool_calls, content]}

    def instructions(self) -> str:
        """The system text that describes the functions and the answer format."""
        lines = ["You can call functions. Answer with one JSON object and nothing else:"]
        lines.append('{"tool_calls": [{"name": <function name>, "arguments": <object of its parameters>}]} to call')
        if self.choice == "auto":
            lines.append('or {"content": <your answer as a string>} to answer without a call.')
        elif self.choice not in CHOICES:
            lines.append(f"Call the function {self.choice}.")
        lines.append("Functions:")
        for t in self.tools:
            params = json.dumps(t.parameters, ensure_ascii=False, separators=(",", ":"))
            about = f" {t.description}" if t.description else ""
            lines.append(f"- {t.name}:{about} Parameters (JSON Schema): {params}")
        return "\n".join(lines)


def check_tools(raw: Any, choice: Any, parallel: Any, *, names: ToolNames = ToolNames()) -> ToolUse | None:
    """OpenAI's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` checked; ``None``
    when the request offers no tools. Parameter schemas are checked by the caller (the
    request builder checks the whole answer schema, and each function's by name).
    Errors name the fields as ``names`` spells them."""
    if raw is None or raw == []:  # an empty list as many clients send it: no tools
        if choice is not None and choice != "none":
            raise InvalidArgument(names.choice, "needs tools: offer at least one function in tools")
        return None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TOOLS:
        raise InvalidArgument(names.tools, f"must be a list of 1..{MAX_TOOLS} tools")
    tools: list[Tool] = []
    for i, t in enumerate(raw):
        where = names.function.format(i=i)
        if not isinstance(t, dict) or t.get("type") != "function":
            raise InvalidArgument(names.type.format(i=i), 'must be "function" (the only tool type)')
        unknown = sorted(set(t) - {"type", "function"})
        if unknown:
            raise InvalidArgument(f"{names.tools}[{i}].{unknown[0][:32]}", "unknown key (known: type, function)")
        fn = t.get("function")
        if not isinstance(fn, dict):
            raise InvalidArgument(where, "must be an object with name, description, parameters")
        unknown = sorted(set(fn) - {"name", "description", "parameters", "strict"})
        if unknown:
            raise InvalidArgument(f"{where}.{unknown[0][:32]}", "unknown key (known: name, description, parameters, strict)")
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidArgument(f"{where}.name", "1..64 characters of letters, digits, _ and -")
        if any(prev.name == name for prev in tools):
            raise InvalidArgument(f"{where}.name", f"{name} is offered twice")
        description = fn.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgument(f"{where}.description", f"must be a string of at most {MAX_DESCRIPTION_CHARS} characters")
        if "strict" in fn and not isinstance(fn["strict"], bool):
            raise InvalidArgument(f"{where}.strict", "must be true or false (calls always match the schema here)")
        params = fn.get("parameters", _EMPTY_PARAMETERS)
        if not isinstance(params, dict):
            raise InvalidArgument(names.parameters.format(i=i), "must be a JSON Schema object")
        tools.append(Tool(name, description, params))
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidArgument(names.parallel, "must be true or false")
    return ToolUse(tuple(tools), _choice(choice, tools, names), parallel is True)


def _choice(choice: Any, tools: Sequence[Tool], names: ToolNames) -> str:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in CHOICES:
            raise InvalidArgument(names.choice, f'one of {", ".join(CHOICES)} or {{"type": "function", "function": {{"name": ...}}}}')
        return choice
    fn = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise InvalidArgument(names.choice, 'must be a string or {"type": "function", "function": {"name": ...}}')
    if not any(t.name == name for t in tools):
        raise InvalidArgument(names.choice_name, f"{name[:64]!r} is not one of the offered tools")
    return name


def parse_answer(text: str) -> tuple[str | None, tuple[ToolCall, ...]]:
    """An answer in the format above: (content, calls); text that is not in the format
    (an answer cut short by max_tokens) is returned as content, with no calls."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text, ()
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        calls = tuple(ToolCall(c["name"], c.get("arguments", {})) for c in value["tool_calls"]
                      if isinstance(c, dict) and isinstance(c.get("name"), str))
        if calls:
            return None, calls
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"], ()
    return text, ()


@dataclass(frozen=True)
class Turn:
    """A conversation message as a door received it, tool fields included."""

    role: str
    content: str
    calls: tuple[tuple[str, str, str], ...] = ()  # an assistant's (id, name, arguments JSON text)
    tool_call_id: str | None = None  # a "tool" message: the call it answers


def as_pairs(turns: Sequence[Turn], field: str = "messages") -> list[tuple[str, str]]:
    """(role, content) pairs for the request builder: an assistant turn that called
    functions as the answer the model gave (``call_turn``), a ``tool`` message as a user
    turn with the result (``result_turn``); errors name ``field[i]...``."""
    pairs: list[tuple[str, str]] = []
    called: dict[str, str] = {}  # call id -> function name, from earlier assistant turns
    for i, t in enumerate(turns):
        if t.role == "tool":
            if not t.tool_call_id:
                raise InvalidArgument(f"{field}[{i}].tool_call_id", "must name the call this result answers")
            pairs.append(("user", result_turn(called.get(t.tool_call_id, ""), t.tool_call_id[:64], t.content)))
        elif t.calls:
            if t.role != "assistant":
                raise InvalidArgument(f"{field}[{i}].tool_calls", "only an assistant message has tool calls")
            made = []
            for j, (call_id, name, arguments) in enumerate(t.calls):
                try:
                    args = json.loads(arguments)
                except json.JSONDecodeError:
                    raise InvalidArgument(f"{field}[{i}].tool_calls[{j}].function.arguments", "must be JSON text") from None
                if call_id:
                    called[call_id] = name
                made.append({"name": name, "arguments": args})
            pairs.append(("assistant", call_turn(made)))
        else:
            pairs.append((t.role, t.content))
    return pairs


def call_turn(calls: Sequence[Mapping[str, Any]]) -> str:
    """An earlier assistant turn that called functions, as the model wrote it."""
    return json.dumps({"tool_calls": list(calls)}, ensure_ascii=False, separators=(",", ":"))


def result_turn(name: str, call_id: str, content: str) -> str:
    """A function's result, given back to the model as a user turn."""
    who = f"{name} (call {call_id})" if name else f"call {call_id}"
    return f"Result of {who}: {content}"
