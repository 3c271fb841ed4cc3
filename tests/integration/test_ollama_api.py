"""The Ollama-compatible subset (``/api/...``), called with the official ``ollama``
Python client against the real daemon and the real model: chat and generate, streamed
or not, embeddings, tags and ps, tool calls, keep_alive 0 unloading; what the subset
does not implement refused by name."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import ollama
import pytest
from conftest import Service, http_agent

pytestmark = pytest.mark.model

TOKEN = "ollama-token"
MODEL = "gemma-3-270m-q4_k_m"
ASK = [{"role": "user", "content": "Name a colour."}]
OPTS = {"temperature": 0, "num_predict": 12}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from http_agent(tmp_path_factory, "agent-ollama", TOKEN)


@pytest.fixture(scope="module")
def client(agent: Service) -> ollama.Client:
    return ollama.Client(host=agent.http_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)


def test_chat_whole_and_streamed_are_the_same_answer(client: ollama.Client) -> None:
    whole = client.chat(model=MODEL, messages=ASK, options=OPTS)
    assert whole.done and whole.done_reason in ("stop", "length") and whole.message.role == "assistant"
    assert whole.message.content and whole.eval_count and whole.prompt_eval_count
    parts = list(client.chat(model=MODEL, messages=ASK, options=OPTS, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content or "" for p in parts) == whole.message.content


def test_generate_with_a_system_prompt_and_stop(client: ollama.Client) -> None:
    r = client.generate(model=f"{MODEL}:latest", prompt="Count: one, two,", system="Be brief.",
                        options={"temperature": 0, "num_predict": 16, "stop": ["five"]})
    assert r.done and "five" not in r.response
    streamed = "".join(p.response for p in client.generate(model=MODEL, prompt="Count: one, two,", system="Be brief.",
                                                             options={"temperature": 0, "num_predict": 16, "stop": ["five"]},
                                                             stream=True))
    assert streamed == r.response


def test_format_json_and_a_schema(client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"colour": {"type": "string", "maxLength": 20}}, "required": ["colour"]}
    r = client.chat(model=MODEL, messages=ASK, format=schema, options={"temperature": 0, "num_predict": 32})
    jsonschema.validate(json.loads(r.message.content), schema)
    # "json": any object, under the grammar from the first token (cut short here by num_predict)
    j = client.generate(model=MODEL, prompt="A JSON object about a cat:", format="json", options={"temperature": 0, "num_predict": 32})
    assert j.response.startswith("{")
    if j.done_reason == "stop":
        assert isinstance(json.loads(j.response), dict)


def test_tool_calls_come_back_with_arguments_as_objects(client: ollama.Client) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                                                            "required": ["city"]}}}
    r = client.chat(model=MODEL, messages=[{"role": "user", "content": "What is the weather in Oslo?"}], tools=[tool],
                    options={"temperature": 0, "num_predict": 64})
    if r.message.tool_calls:  # tools in Ollama are "auto": a call or an answer
        call = r.message.tool_calls[0]
        assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
        jsonschema.validate(call.function.arguments, tool["function"]["parameters"])
    else:
        assert isinstance(r.message.content, str)


def test_embed_tags_and_ps(client: ollama.Client) -> None:
    e = client.embed(model=MODEL, input=["a cat", "a dog"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 640 and e.prompt_eval_count
    names = [m.model for m in client.list().models]
    assert names == [f"{MODEL}:latest"]
    running = client.ps().models
    assert [m.model for m in running] == [f"{MODEL}:latest"] and running[0].size > 0


def test_keep_alive_zero_unloads_and_a_request_loads_again(client: ollama.Client) -> None:
    r = client.generate(model=MODEL, prompt="", keep_alive=0)  # Ollama apps unload this way
    assert r.done and r.done_reason == "unload"
    assert client.ps().models == []
    again = client.generate(model=MODEL, prompt="Hi", options={"num_predict": 2})
    assert again.done and client.ps().models


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"options": {"repeat_penalty": 1.3}}, "options.repeat_penalty"),
    ({"options": {"temperature": "hot"}}, "options.temperature"),
    ({"options": {"num_predict": -5}}, "options.num_predict"),
])
def test_what_the_subset_does_not_do_is_refused_by_name(client: ollama.Client, kwargs: dict, field: str) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=MODEL, messages=ASK, **kwargs)
    assert err.value.status_code == 400 and err.value.error.startswith(field + ":"), err.value.error


def test_raw_bodies_get_ollama_errors(agent: Service) -> None:
    """What the client itself would refuse, sent as it is: the answer is Ollama's error object."""
    import httpx

    base = agent.http_url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for body, field in (({"model": MODEL, "messages": ASK, "format": "yaml"}, "format"),
                        ({"model": MODEL, "messages": ASK, "think": True}, "think"),
                        ({"model": MODEL, "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, "messages[0].images")):
        r = httpx.post(base + "/api/chat", json=body, headers=auth, timeout=60)
        assert r.status_code == 400 and r.json()["error"].startswith(field + ":"), r.text
    assert httpx.post(base + "/api/chat", json={"model": MODEL, "messages": ASK}, timeout=60).status_code == 401


def test_an_unknown_model_is_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3", messages=ASK)
    assert err.value.status_code == 404


def test_hints_about_resources_are_accepted(client: ollama.Client) -> None:
    r = client.chat(model=MODEL, messages=ASK, options={**OPTS, "num_ctx": 4096, "num_thread": 2})
    assert r.done
