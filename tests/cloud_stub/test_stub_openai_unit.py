"""Unit tests of the OpenAI-compatible HTTP client with httpx.MockTransport: the request
it sends, SSE parsing, usage, and upstream failures mapped to BackendError, ResourceExhausted and Rejected
(and over real gRPC to UNAVAILABLE / RESOURCE_EXHAUSTED / INVALID_ARGUMENT)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import grpc
import httpx
import pytest
from stub_helpers import Result, generate, serving

from cloud_stub.backends import BackendError, Done, Event, Params
from cloud_stub.openai_compat import OpenAIBackend
from cloud_stub.sse import SSEError, iter_sse_data
from common.errors import DomainError, Rejected, ResourceExhausted

PARAMS = Params(max_tokens=8, temperature=0.0, top_p=1.0, top_k=0, seed=None, stop=())


def _sse(*events: object, done: bool = True) -> bytes:
    body = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def _chunk(text: str, finish: str | None = None) -> dict[str, object]:
    return {"object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": finish}]}


def _chat(text: str | None, finish: str | None = None) -> dict[str, object]:
    delta = {} if text is None else {"content": text}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


Handler = Callable[[httpx.Request], httpx.Response]


def _backend(handler: Handler, **kw: object) -> OpenAIBackend:
    return OpenAIBackend("http://upstream.test/", model="m", transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


def _stream(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream", **(headers or {})})

    return handler


def _collect(backend: OpenAIBackend, params: Params = PARAMS) -> list[Event]:
    async def main() -> list[Event]:
        try:
            return [e async for e in backend.generate("Hello", params)]
        finally:
            await backend.aclose()

    return asyncio.run(main())


def test_request_body_and_streamed_answer() -> None:
    seen: list[httpx.Request] = []
    body = _sse(
        _chunk(" Paris"), _chunk(" is"), _chunk("", "length"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _stream(body)(request)

    params = Params(max_tokens=2, temperature=0.5, top_p=0.9, top_k=4, seed=11, stop=("\n",))
    events = _collect(_backend(handler, api_key="k"), params)
    assert events[:2] == [" Paris", " is"]
    done = events[2]
    assert isinstance(done, Done) and len(events) == 3
    assert (done.prompt_tokens, done.completion_tokens, done.finish_reason) == (5, 2, "length")
    req = seen[0]
    assert req.url.path == "/v1/completions" and req.headers["authorization"] == "Bearer k"
    sent = json.loads(req.content)
    assert sent == {
        "model": "m", "prompt": "Hello", "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "stream": True,
        "stream_options": {"include_usage": True}, "top_k": 4, "seed": 11, "stop": ["\n"],
    }


def test_without_usage_counts_pieces_and_prompt_is_unknown() -> None:
    events = _collect(_backend(_stream(_sse(_chunk("a"), _chunk(""), _chunk("b"), _chunk("", "stop")))))
    done = events[-1]
    assert events[:-1] == ["a", "b"]
    assert isinstance(done, Done) and (done.prompt_tokens, done.completion_tokens, done.finish_reason) == (0, 2, "stop")


def test_chat_api() -> None:
    seen: list[httpx.Request] = []
    body = _sse(_chat(None), _chat("Hi"), _chat(" there"), _chat(None, "stop"))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _stream(body)(request)

    events = _collect(_backend(handler, api="chat", stream_usage=False))
    assert events[:2] == ["Hi", " there"] and isinstance(events[2], Done)
    assert seen[0].url.path == "/v1/chat/completions"
    sent = json.loads(seen[0].content)
    assert sent["messages"] == [{"role": "user", "content": "Hello"}] and "prompt" not in sent
    assert "stream_options" not in sent


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_sse("{not json"), "data is not JSON"),
        (_sse("[1, 2]"), "not a JSON object"),
        (_sse({"choices": "nope"}), "'choices' is not a list"),
        (_sse({"choices": [{"text": 42}]}), "not a string"),
        (_sse({"error": {"message": "CUDA out of memory"}}), "reported an error"),
        (_sse(_chunk("a"), done=False), "ended before the answer was complete"),
        (b"", "ended before the answer was complete"),
        (b'{"id": "x", "choices": [{"text": "not streamed"}]}', "ended before the answer was complete"),
    ],
)
def test_malformed_streams_raise_backend_error(body: bytes, fragment: str) -> None:
    with pytest.raises(BackendError) as exc:
        _collect(_backend(_stream(body)))
    assert type(exc.value) is BackendError
    assert fragment in str(exc.value)
    assert "CUDA" not in str(exc.value)  # upstream detail goes to the log only


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, BackendError), (502, BackendError), (401, BackendError), (429, ResourceExhausted), (400, Rejected), (422, Rejected)],
)
def test_http_errors_map_to_backend_errors(status: int, cls: type[DomainError]) -> None:
    with pytest.raises(DomainError) as exc:
        _collect(_backend(_stream(b'{"error": "x"}', status=status, headers={"retry-after": "3"})))
    assert type(exc.value) is cls
    assert f"HTTP {status}" in str(exc.value)
    if isinstance(exc.value, ResourceExhausted):
        assert exc.value.retry_after_s == 3.0


def test_connection_failure_and_timeout() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(BackendError, match="unreachable: ConnectError"):
        _collect(_backend(refuse))
    with pytest.raises(BackendError, match="timed out: ReadTimeout"):
        _collect(_backend(slow))


def test_discover_model_and_context_length() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        return httpx.Response(200, json={"data": [{"id": "big-model", "max_model_len": 8192}]})

    b = OpenAIBackend("http://u.test", transport=httpx.MockTransport(handler))
    asyncio.run(b.discover_model())
    info = b.info()
    assert (info.model, info.context_length, info.backend) == ("big-model", 8192, "openai")


def test_discover_fails_only_without_a_model_name() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    named = OpenAIBackend("http://u.test", model="m", transport=httpx.MockTransport(down))
    asyncio.run(named.discover_model())
    assert named.info().model == "m"
    anonymous = OpenAIBackend("http://u.test", transport=httpx.MockTransport(down))
    with pytest.raises(BackendError, match="cannot list models"):
        asyncio.run(anonymous.discover_model())


def _over_grpc(handler: Handler) -> Result:
    async def main() -> Result:
        async with serving(_backend(handler)) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("handler", "code", "details"),
    [
        (_stream(b"oops", status=500), grpc.StatusCode.UNAVAILABLE, "upstream server answered HTTP 500"),
        (_stream(_sse("{bad")), grpc.StatusCode.UNAVAILABLE, "upstream server sent malformed SSE: data is not JSON"),
        (_stream(b"", status=429, headers={"retry-after": "2"}), grpc.StatusCode.RESOURCE_EXHAUSTED,
         "upstream server is rate-limiting (HTTP 429) (retry after 2.0s)"),
        (_stream(b"", status=400), grpc.StatusCode.INVALID_ARGUMENT, "upstream server rejected the request (HTTP 400)"),
    ],
)
def test_upstream_failures_over_grpc(handler: Handler, code: grpc.StatusCode, details: str) -> None:
    r = _over_grpc(handler)
    assert (r.code, r.details) == (code, details)


def test_stream_broken_mid_answer_over_grpc() -> None:
    r = _over_grpc(_stream(_sse(_chunk("one"), _chunk(" two"), done=False)))
    assert r.deltas == ["one", " two"]
    assert r.code == grpc.StatusCode.UNAVAILABLE and r.done is None


async def _lines(*items: str):  # type: ignore[no-untyped-def]
    for i in items:
        yield i


def _events(*lines: str, max_event_bytes: int = 1 << 20) -> list[str]:
    async def main() -> list[str]:
        return [d async for d in iter_sse_data(_lines(*lines), max_event_bytes=max_event_bytes)]

    return asyncio.run(main())


def test_sse_reader_rules() -> None:
    assert _events("data: a", "", "data:b", "data: c", "", ": comment", "event: x", "id: 3", "", "data: last") == [
        "a", "b\nc", "last",
    ]
    assert _events("data:  two spaces", "") == [" two spaces"]
    assert _events("", "", "retry: 10", "") == []
    with pytest.raises(SSEError):
        _events("data: " + "x" * 100, "", max_event_bytes=50)
