"""Conversations in GenerateRequest: each rule broken names its field."""

from __future__ import annotations

import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb

from common.chat import Message
from common.errors import InvalidArgument, OutOfRange
from edge_agent.config import LimitsConfig
from edge_agent.transport.convert import ask_request


def req(*turns: tuple[str, str], prompt: str = "") -> pb.GenerateRequest:
    return pb.GenerateRequest(prompt=prompt, messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in turns])


def test_a_valid_conversation() -> None:
    r = ask_request(req(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")), LimitsConfig())
    assert r.messages == (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye"))
    assert r.prompt == ""


@pytest.mark.parametrize(
    ("msg", "field", "rule"),
    [
        (req(("user", "Hi"), prompt="Hi"), "messages", "exactly one of prompt and messages"),
        (pb.GenerateRequest(), "prompt", "must not be empty"),
        (req(("robot", "Hi")), "messages[0].role", "one of system, user, assistant"),
        (req(("user", "Hi"), ("system", "late")), "messages[1].role", "only come first"),
        (req(("user", "  ")), "messages[0].content", "must not be empty"),
        (req(("user", "a\x1eb")), "messages[0].content", "U+001E"),
        (req(("user", "a\x00b")), "messages[0].content", "NUL"),
        (req(("user", "Hi"), ("assistant", "Hello")), "messages[1].role", "last message must be from the user"),
        (req(*[("user", "x")] * 257), "messages", "at most 256"),
    ],
)
def test_broken_rules_name_the_field(msg: pb.GenerateRequest, field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        ask_request(msg, LimitsConfig())
    assert exc.value.field == field and rule in exc.value.message


def test_the_size_limit_counts_every_message() -> None:
    big = "x" * 20_000
    with pytest.raises(OutOfRange) as exc:
        ask_request(req(("user", big), ("assistant", big), ("user", "and?")), LimitsConfig())
    assert exc.value.field == "messages"
