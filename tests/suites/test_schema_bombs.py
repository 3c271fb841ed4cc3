"""Schema bombs against the real daemon (gRPC on its unix socket, the HTTP door on
loopback TCP) and the real cloud-stub, on the shipped model.

A 40-byte schema (``maxLength: 100000``, ``pattern: ^a{0,100000}$``) used to become
100,000 nested grammar groups and kill the process in llama.cpp's parser; small
schemas with huge ``minLength`` filled the grammar cache with grammars of megabytes; a
schema nested 200 deep ended in INTERNAL. Each must now be refused with 400 /
INVALID_ARGUMENT naming the field and the rule, and the service must answer afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from conftest import Cloud
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc, common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from suite_support import agent_target, rss_kib, start_agent, stop_service, write_config

pytestmark = pytest.mark.model

TOKEN = "schema-bomb-token"
MODEL = "gemma-3-270m-q4_k_m"
HTTP_FIELD = "response_format.json_schema.schema"
RSS_GROWTH_LIMIT_KIB = 48 * 1024

BOMBS: dict[str, tuple[dict[str, Any], str]] = {  # name: (schema, the nested path named)
    "maxLength": ({"type": "string", "maxLength": 100000}, ".maxLength"),
    "regex": ({"type": "string", "pattern": "^a{0,100000}$"}, ".pattern"),
    "nested maxLength": ({"type": "object", "properties": {"name": {"type": "string", "maxLength": 100000}}}, ".properties.name.maxLength"),
    "minLength": ({"type": "string", "minLength": 10000000}, ".minLength"),
}


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("schema-bombs")
    cfg = write_config(tmp / "agent.toml", "[model]\nn_threads = 1\nwarmup = false\n")
    policy = write_config(tmp / "policy.toml", "version = 1\n")
    svc = start_agent(
        tmp / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_POLICY=str(policy),
        EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_TOKEN=TOKEN,
    )
    yield svc
    assert svc.proc.poll() is None, "the daemon died:\n" + svc.log()[-4000:]
    assert stop_service(svc) == 0, svc.log()[-4000:]


@pytest.fixture(scope="module")
def http(agent: Any) -> Iterator[httpx.Client]:
    m = re.search(r"openai on (http://\S+)", agent.ready_line)
    assert m, agent.ready_line
    with httpx.Client(base_url=m.group(1), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def channel(agent: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(agent_target(agent)) as ch:
        yield ch


def chat(http: httpx.Client, schema: dict[str, Any] | None, max_tokens: int = 2, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": max_tokens,
        "temperature": 0, "edgecloud": {"preference": "local_only"}, **extra,
    }
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    return http.post("/v1/chat/completions", json=body)


def grpc_generate(channel: grpc.Channel, schema: dict[str, Any] | None, max_tokens: int = 2) -> list[pb.GenerateResponse]:
    req = pb.GenerateRequest(prompt="Say hi.", params=common_pb2.GenerationParams(max_tokens=max_tokens))
    req.routing.preference = pb.ROUTE_PREFERENCE_LOCAL_ONLY
    if schema is not None:
        req.params.json_schema = json.dumps(schema)
    return list(pb_grpc.EdgeAgentStub(channel).Generate(req, timeout=120))


def assert_alive(agent: Any, http: httpx.Client, channel: grpc.Channel) -> None:
    """The process runs, both doors answer health, and a real generation completes."""
    assert agent.proc.poll() is None, "the daemon died:\n" + agent.log()[-4000:]
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert http.get("/health").status_code == 200
    r = chat(http, {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}, max_tokens=8)
    assert r.status_code == 200, r.text
    assert grpc_generate(channel, None)[-1].HasField("done")


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_schema_bomb_over_http_is_400_naming_the_field(agent: Any, http: httpx.Client, channel: grpc.Channel, name: str) -> None:
    schema, path = BOMBS[name]
    r = chat(http, schema)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == HTTP_FIELD + path
    assert err["message"].startswith(f"{HTTP_FIELD}{path}: ") and "1000" in err["message"]
    assert_alive(agent, http, channel)


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_schema_bomb_over_grpc_is_invalid_argument_naming_the_field(agent: Any, http: httpx.Client, channel: grpc.Channel, name: str) -> None:
    schema, path = BOMBS[name]
    with pytest.raises(grpc.RpcError) as err:
        grpc_generate(channel, schema)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert err.value.details().startswith(f"params.json_schema{path}: "), err.value.details()
    assert_alive(agent, http, channel)


def test_a_schema_nested_200_deep_is_refused_by_both_doors(agent: Any, http: httpx.Client, channel: grpc.Channel) -> None:
    r = chat(http, deep_schema(200))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(f"{HTTP_FIELD}: nested too deep")
    with pytest.raises(grpc.RpcError) as err:
        grpc_generate(channel, deep_schema(200))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert err.value.details().startswith("params.json_schema: nested too deep")
    assert_alive(agent, http, channel)


def test_100_distinct_hostile_schemas_do_not_grow_the_daemon(agent: Any, http: httpx.Client, channel: grpc.Channel) -> None:
    """Schemas of ~50 bytes asking for grammars of megabytes (the old cache kept 64 of
    them), each different so no cache can share them; then schemas at the limits, which
    are served."""
    assert_alive(agent, http, channel)  # the converter, the grammar sampler and jsonschema are warm
    before = rss_kib(agent.proc.pid)
    kinds = [
        lambda i: ({"type": "string", "minLength": 300000 + i}, ".minLength"),
        lambda i: ({"type": "array", "items": {"type": "integer"}, "minItems": 300000 + i}, ".minItems"),
        lambda i: ({"type": "string", "pattern": f"^a{{{300000 + i}}}$"}, ".pattern"),
    ]
    answers = []
    for i in range(100):
        schema, path = kinds[i % len(kinds)](i)
        answers.append((chat(http, schema), path))
    for i in range(5):  # accepted: a string of up to 1000 characters, distinct schemas
        answers.append((chat(http, {"type": "string", "maxLength": 1000 - i, "description": f"limit {i}"}, max_tokens=1), ""))
    after = rss_kib(agent.proc.pid)
    print(f"\ndaemon RSS {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB after 100 hostile schemas")
    assert after - before < RSS_GROWTH_LIMIT_KIB, f"RSS grew from {before} KiB to {after} KiB"
    for r, path in answers:
        if path:
            assert r.status_code == 400, r.text
            assert r.json()["error"]["param"] == HTTP_FIELD + path
        else:
            assert r.status_code == 200, r.text
    assert_alive(agent, http, channel)


# -- cloud-stub ----------------------------------------------------------------------------


def cloud_generate(cloud: Cloud, schema: dict[str, Any] | None) -> list[cloud_pb2.CloudGenerateResponse]:
    req = cloud_pb2.CloudGenerateRequest(request_id="bomb", prompt="Say hi.")
    req.params.max_tokens = 2
    if schema is not None:
        req.params.json_schema = json.dumps(schema)
    with grpc.insecure_channel(cloud.address) as ch:
        stub = cloud_pb2_grpc.CloudInferenceStub(ch)
        return list(stub.Generate(req, metadata=[("authorization", f"Bearer {cloud.token}")], timeout=120))


@pytest.mark.parametrize("name", [*BOMBS, "200 deep"])
def test_cloud_stub_refuses_schema_bombs_and_keeps_serving(cloud: Cloud, name: str) -> None:
    schema, path = BOMBS[name] if name in BOMBS else (deep_schema(200), "")
    with pytest.raises(grpc.RpcError) as err:
        cloud_generate(cloud, schema)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert err.value.details().startswith(f"params.json_schema{path}: "), err.value.details()
    assert cloud.service.proc.poll() is None, "cloud-stub died:\n" + Path(cloud.service.log_path).read_text()[-4000:]
    answer = cloud_generate(cloud, {"type": "boolean"})
    assert answer[-1].HasField("done")
