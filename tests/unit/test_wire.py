"""Naming the field whose bytes are not UTF-8, from the wire format."""

from __future__ import annotations

from edgecloud.v1 import edge_agent_pb2 as pb

from common.wire import bad_utf8_field

BAD = b"\xff\xfe"


def _poison(msg: bytes, good: str) -> bytes:
    """Replace the UTF-8 bytes of ``good`` (same length) by invalid ones."""
    raw = good.encode()
    assert raw in msg
    return msg.replace(raw, BAD + raw[2:], 1)


def test_names_top_level_nested_and_repeated_fields() -> None:
    req = pb.GenerateRequest(
        prompt="hello there", request_id="rid-1",
        routing=pb.Routing(labels=["aa-first", "bb-second", "cc-third"]),
    )
    data = req.SerializeToString()
    assert bad_utf8_field(pb.GenerateRequest.DESCRIPTOR, data) is None
    assert bad_utf8_field(pb.GenerateRequest.DESCRIPTOR, _poison(data, "hello there")) == "prompt"
    assert bad_utf8_field(pb.GenerateRequest.DESCRIPTOR, _poison(data, "rid-1")) == "request_id"
    poisoned = _poison(data, "cc-third")
    assert bad_utf8_field(pb.GenerateRequest.DESCRIPTOR, poisoned) == "routing.labels[2]"


def test_names_the_item_in_a_put() -> None:
    req = pb.PutContextRequest(items=[pb.ContextItem(kind="note", body="first body"),
                                      pb.ContextItem(kind="note", body="second body")])
    data = _poison(req.SerializeToString(), "second body")
    assert bad_utf8_field(pb.PutContextRequest.DESCRIPTOR, data) == "items[1].body"


def test_garbage_names_nothing() -> None:
    assert bad_utf8_field(pb.GenerateRequest.DESCRIPTOR, b"\xff\xff\xff") is None
