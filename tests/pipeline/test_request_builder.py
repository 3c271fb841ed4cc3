"""One request builder behind both doors: the same broken rule gets the same error
class and the same rule text over gRPC and over HTTP, only the field's name differs."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from edgecloud.v1 import edge_agent_pb2 as pb

from common.errors import InvalidArgument, OutOfRange
from edge_agent.config import LimitsConfig
from edge_agent.pipeline import request
from edge_agent.transport import convert
from edge_agent.transport import openai_convert as oc

LIMITS = LimitsConfig(max_prompt_bytes=1000, max_tokens=256)
ROOT = Path(__file__).resolve().parents[2]

# (what is broken, gRPC request fields, HTTP body fields, gRPC field, HTTP field)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("blank prompt", {"prompt": "  "}, {"prompt": "  "}, "prompt", "prompt"),
    ("NUL in prompt", {"prompt": "a\x00b"}, {"prompt": "a\x00b"}, "prompt", "prompt"),
    ("prompt too long", {"prompt": "x" * 1001}, {"prompt": "x" * 1001}, "prompt", "prompt"),
    ("too many tokens", {"params": {"max_tokens": 257}}, {"max_tokens": 257}, "params.max_tokens", "max_tokens"),
    ("hot temperature", {"params": {"temperature": 2.5}}, {"temperature": 2.5}, "params.temperature", "temperature"),
    ("top_p above 1", {"params": {"top_p": 1.5}}, {"top_p": 1.5}, "params.top_p", "top_p"),
    ("nine stops", {"params": {"stop": ["a"] * 9}}, {"stop": ["a"] * 9}, "params.stop", "stop"),
    ("long stop", {"params": {"stop": ["x" * 65]}}, {"stop": ["x" * 65]}, "params.stop[0]", "stop[0]"),
    ("bad schema", {"params": {"json_schema": '{"type": 5}'}},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": 5}}}},
     "params.json_schema", "response_format.json_schema.schema"),
    ("negative cost cap", {"routing": {"max_cost": -1.0}}, {"edgecloud": {"max_cost": -1.0}},
     "routing.max_cost", "edgecloud.max_cost"),
    ("seventeen labels", {"routing": {"labels": ["l"] * 17}}, {"edgecloud": {"labels": ["l"] * 17}},
     "routing.labels", "edgecloud.labels"),
    ("label with a newline", {"routing": {"labels": ["a\nb"]}}, {"edgecloud": {"labels": ["a\nb"]}},
     "routing.labels[0]", "edgecloud.labels[0]"),
    ("long app id", {"routing": {"app_id": "a" * 129}}, {"edgecloud": {"app_id": "a" * 129}},
     "routing.app_id", "edgecloud.app_id"),
]


def _grpc(fields: dict[str, Any]) -> pb.GenerateRequest:
    msg = pb.GenerateRequest(prompt=fields.get("prompt", "hi"))
    for k, v in fields.get("params", {}).items():
        if k == "stop":
            msg.params.stop.extend(v)
        else:
            setattr(msg.params, k, v)
    for k, v in fields.get("routing", {}).items():
        if k == "labels":
            msg.routing.labels.extend(v)
        else:
            setattr(msg.routing, k, v)
    return msg


def _http(fields: dict[str, Any]) -> dict[str, Any]:
    return {"model": "m", "prompt": "hi", **fields}


@pytest.mark.parametrize(("what", "g", "h", "gfield", "hfield"), CASES, ids=[c[0] for c in CASES])
def test_both_doors_refuse_alike(what: str, g: dict[str, Any], h: dict[str, Any], gfield: str, hfield: str) -> None:
    with pytest.raises((InvalidArgument, OutOfRange)) as over_grpc:
        convert.ask_request(_grpc(g), LIMITS)
    with pytest.raises((InvalidArgument, OutOfRange)) as over_http:
        oc.http_request(_http(h), LIMITS, chat=False)
    assert type(over_grpc.value) is type(over_http.value), what
    assert (over_grpc.value.field, over_http.value.field) == (gfield, hfield)
    assert over_grpc.value.rule == over_http.value.rule


def test_both_doors_build_the_same_request() -> None:
    msg = _grpc({"prompt": "Summarise my week", "params": {"max_tokens": 32, "temperature": 0.5, "top_p": 0.75,
                                                           "stop": ["\n\n"], "seed": 7},
                 "routing": {"labels": ["work"], "app_id": "mail", "deadline_ms": 900, "max_cost": 0.25}})
    body = _http({"prompt": "Summarise my week", "max_tokens": 32, "temperature": 0.5, "top_p": 0.75, "stop": ["\n\n"],
                  "seed": 7, "edgecloud": {"labels": ["work"], "app_id": "mail", "deadline_ms": 900, "max_cost": 0.25}})
    assert convert.ask_request(msg, LIMITS) == oc.http_request(body, LIMITS, chat=False).ask


def test_a_conversation_is_checked_by_the_builder() -> None:
    with pytest.raises(InvalidArgument) as err:
        request.ask_request(request.RequestFields(messages=[("user", "hi"), ("assistant", "yes")]), LIMITS)
    assert err.value.field == "messages[1].role"
    with pytest.raises(InvalidArgument) as err:
        request.ask_request(request.RequestFields(prompt="hi", messages=[("user", "hi")]), LIMITS)
    assert err.value.field == "messages"


def test_the_http_converter_does_not_import_the_grpc_one() -> None:
    tree = ast.parse((ROOT / "edge_agent/transport/openai_convert.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and (m.endswith("transport.convert") or m.startswith("edgecloud")) for m in imported), imported
