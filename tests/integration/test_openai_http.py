"""The OpenAI-compatible front door, called with the official ``openai`` package
(unmodified) against the real daemon and the real model, over loopback TCP and over
the unix socket."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from conftest import Cloud, Service, start_agent
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

pytestmark = pytest.mark.model

TOKEN = "s3cret-token"
MODEL = "gemma-3-270m-q4_k_m"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("agent-http")
    svc = start_agent(
        data, EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_TOKEN=TOKEN,
        EDGE_AGENT_CLOUD=cloud.address, EDGE_AGENT_CLOUD_TOKEN=cloud.token,
    )
    yield svc
    assert svc.stop() == 0, svc.log()


def _base_url(agent: Service) -> str:
    m = re.search(r"openai on (http://\S+)", agent.ready_line)
    assert m, agent.ready_line
    return m.group(1) + "/v1"


@pytest.fixture(scope="module")
def client(agent: Service) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=_base_url(agent), api_key=TOKEN, max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def stub(agent: Service) -> Iterator[pb_grpc.EdgeAgentStub]:
    sock = agent.ready_line.split(" on ", 1)[1].split()[0].rstrip(";")
    with grpc.insecure_channel(sock) as ch:
        yield pb_grpc.EdgeAgentStub(ch)


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_lists_the_local_model(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_non_streaming_carries_route_and_usage(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=_chat("Name three colours."), max_tokens=12, temperature=0,
        extra_body={"edgecloud": {"preference": "local_only"}},
    )
    assert raw.headers["x-edgecloud-route"] == "local"
    resp = raw.parse()
    assert resp.object == "chat.completion"
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert resp.usage is not None and 0 < resp.usage.completion_tokens <= 12
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    ext = (resp.model_extra or {})["edgecloud"]
    assert ext["route"] == "local" and "preference.local_only" in ext["rules_fired"]
    assert ext["explanation"]
    assert ext["energy_j"] > 0 and ext["energy_source"] in ("rapl", "estimate")


def test_chat_stream_equals_the_whole_answer_and_ends_with_usage(client: openai.OpenAI) -> None:
    args = {"model": MODEL, "messages": _chat("Write a short sentence about the sea."), "max_tokens": 24,
            "temperature": 0, "extra_body": {"edgecloud": {"preference": "local_only"}}}
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(stream=True, **args))  # type: ignore[call-overload]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == whole.choices[0].finish_reason
    assert last.usage is not None and last.usage.completion_tokens == whole.usage.completion_tokens
    assert (last.model_extra or {})["edgecloud"]["route"] == "local"
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_stream_and_whole(client: openai.OpenAI) -> None:
    whole = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    parts = list(client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text
    assert parts[-1].usage is not None and parts[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_same_answer_as_grpc(client: openai.OpenAI, stub: pb_grpc.EdgeAgentStub) -> None:
    prompt = "List the days of the week:"
    http = client.completions.create(model=MODEL, prompt=prompt, max_tokens=16, temperature=0,
                                     extra_body={"edgecloud": {"preference": "local_only"}})
    rpc = stub.Complete(pb.GenerateRequest(
        prompt=prompt, params=common_pb2.GenerationParams(max_tokens=16),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
    ), timeout=120)
    assert http.choices[0].text == rpc.text


def test_errors_are_openai_error_objects(client: openai.OpenAI, agent: Service) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=_chat("hi"), temperature=3)
    assert bad.value.status_code == 400
    assert bad.value.body["param"] == "temperature" and "[0, 2]" in bad.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad_role:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    assert bad_role.value.body["param"] == "messages[1].role"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model=MODEL, messages=_chat("hi"), n=2)
    assert unsupported.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=_chat("hi"))
    with openai.OpenAI(base_url=_base_url(agent), api_key="wrong", max_retries=0) as intruder, pytest.raises(openai.AuthenticationError):
        intruder.models.list()


def test_policy_and_context_through_the_extension(client: openai.OpenAI, stub: pb_grpc.EdgeAgentStub) -> None:
    stub.PutContext(pb.PutContextRequest(items=[pb.ContextItem(
        kind="note", title="Locker", body="My gym locker code is 4417.", source="t-http", source_id="1",
    )]))
    resp = client.chat.completions.create(
        model=MODEL, messages=_chat("What is my gym locker code?"), max_tokens=8, temperature=0,
        extra_body={"edgecloud": {"use_context": True, "preference": "cloud_preferred"}},
    )
    ext = (resp.model_extra or {})["edgecloud"]
    assert ext["route"] == "local", ext  # personal context keeps it on the device
    assert ext["context_item_ids"], ext
    general = client.chat.completions.create(
        model=MODEL, messages=_chat("Say hello."), max_tokens=4, temperature=0,
        extra_body={"edgecloud": {"preference": "cloud_preferred"}},
    )
    assert (general.model_extra or {})["edgecloud"]["route"].startswith("cloud")


def test_a_closed_stream_cancels_decoding(client: openai.OpenAI, agent: Service, stub: pb_grpc.EdgeAgentStub) -> None:
    # A text completion that goes on counting: a chat answer to "count to a thousand"
    # was 12 tokens and a chat stop, often decoded whole (shared steps and drafts make it
    # fast) before the client closed, so there was nothing left to cancel.
    stream = client.completions.create(
        model=MODEL, prompt=", ".join(str(i) for i in range(1, 41)) + ",", max_tokens=1500, temperature=0,
        stream=True, extra_body={"edgecloud": {"preference": "local_only"}},
    )
    for got, _chunk in enumerate(stream, 1):
        if got == 3:
            break
    stream.close()
    deadline = time.monotonic() + 60
    while "finish=cancelled" not in agent.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "finish=cancelled" in agent.log(), agent.log()[-2000:]
    assert "completion_tokens=1500" not in agent.log()
    # the model is free again at once: the next request is answered
    again = client.completions.create(model=MODEL, prompt="One, two,", max_tokens=3, temperature=0,
                                      extra_body={"edgecloud": {"preference": "local_only"}})
    assert again.choices[0].text


def test_unix_socket_front_door(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    svc = start_agent(data, EDGE_AGENT_HTTP="unix")
    try:
        sock = data / "openai.sock"
        assert f"openai on unix:{sock}" in svc.ready_line
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        http = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)))
        with openai.OpenAI(base_url="http://localhost/v1", api_key="unused", http_client=http, max_retries=0) as c:
            resp = c.chat.completions.create(model=MODEL, messages=_chat("Hi!"), max_tokens=4, temperature=0)
            assert resp.choices[0].message.content is not None
    finally:
        assert svc.stop() == 0, svc.log()
    assert not sock.exists()


def test_a_tool_call_routed_to_the_cloud_comes_back_valid(client: openai.OpenAI) -> None:
    """Through the cloud route the functions' text and the answer schema are sent, and the
    call is validated on the device before it is shown."""
    import json

    import jsonschema

    params = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
              "required": ["city"], "additionalProperties": False}
    tool = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                             "parameters": params}}
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=_chat("What is the weather in Lisbon?"), tools=[tool], tool_choice="required",  # type: ignore[list-item]
        max_tokens=64, temperature=0, extra_body={"edgecloud": {"preference": "cloud_preferred"}},
    )
    resp = raw.parse()
    ext = (resp.model_extra or {})["edgecloud"]
    assert ext["route"] == "cloud" and not ext["fallback"], ext
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), params)
