"""The HTTP front door: the OpenAI-compatible ``/v1/chat/completions``, ``/v1/completions``
and ``/v1/models`` over a unix socket or loopback TCP, beside the gRPC API, and
``/v1/status`` (what is running: the model, its memory, keep-alive, the queue), and
the Ollama-compatible ``/api/...`` subset (``ollama_http``) behind the same guard.

With ``stream_options.include_usage`` a stream ends as OpenAI's does: every chunk has
``usage: null`` and one more chunk before ``[DONE]`` has ``choices: []`` and the usage.
A top-level ``keep_alive`` (as Ollama apps send it: ``"5m"``, seconds, ``0``, ``-1``)
sets how long the model stays loaded after that request.

Each route converts the JSON body (``openai_convert``), makes the same service calls as
the gRPC servicer (plan, then execute) and converts back; errors become OpenAI error
objects with the HTTP status each error class declares (``common.errors.Wire``, the
table the gRPC interceptor reads too). Streams are server-sent events, the
last chunk carrying ``usage`` and the ``edgecloud`` route field; a client that goes
away cancels its request (the decoder stops within one step). The route decision is
also sent before the first token, in the ``X-Edgecloud-Route`` header.

Starlette (routing, requests, streaming responses) on uvicorn (the ASGI server): both
small, typed, widely deployed, and already what llama-cpp-python's own server runs on.
In front of the routes, ``http_guard.DoorGuard`` checks Host, Origin (CORS), the bearer
token and the content type; ``http_conn`` bounds the connections (count, read time,
peer uid on the unix socket); ``edge_agent.daemon.http_door`` puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from common import errors as e
from common import tools as toolfmt
from edge_agent.pipeline.readiness import Readiness
from edge_agent.pipeline.types import Event, Outcome
from edge_agent.transport import ollama_http
from edge_agent.transport import openai_convert as oc
from edge_agent.transport.status import status_body

log = logging.getLogger(__name__)

ROUTE_HEADER = "X-Edgecloud-Route"


class PayloadTooLarge(e.InvalidArgument):
    """The body is over the configured size (HTTP 413)."""

    wire = e.Wire("INVALID_ARGUMENT", 413, "invalid_request_error")


class ModelNotFound(e.NotFound):
    """The request names a model this daemon does not serve."""

    wire = e.Wire("NOT_FOUND", 404, "not_found_error", code="model_not_found")

    def __init__(self, name: str) -> None:
        super().__init__(f"model: no model named {name[:64]!r} (see GET /v1/models)")


def error_body(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, OpenAI error object, extra headers) for an exception, from its
    class's ``common.errors.Wire`` (the table the gRPC interceptor reads too)."""
    wire = e.wire_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.ResourceExhausted) and exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    param = exc.field if isinstance(exc, e.InvalidArgument) else None
    error = {"message": e.public_message(exc), "type": wire.openai, "param": param, "code": wire.code}
    return wire.http, {"error": error}, headers


def _error_response(exc: BaseException, where: str, count: Callable[[], None]) -> JSONResponse:
    """The OpenAI error object for ``exc``; ``count`` counts the failed request."""
    count()
    status, body, headers = error_body(exc)
    if status == 500:
        log.error("internal error in %s", where, exc_info=exc)
    else:
        log.info("%s -> %d: %s", where, status, body["error"]["message"])
    return JSONResponse(body, status_code=status, headers=headers)


class OpenAIFrontDoor:
    """The ASGI application, reading the service through ``ready`` (``Unavailable``
    until the model is ready), which also counts every request answered with an error
    (the daemon's error counter, which the gRPC door feeds too)."""

    def __init__(self, ready: Readiness, *, model_name: str, limits: Any, max_body_bytes: int, alias: str = "") -> None:
        self._ready = ready
        self._on_error = ready.count_error
        self._started_with = model_name  # the running model's name until the service is up
        self._alias = alias  # [model] alias: the id apps see, whatever model runs
        self._limits = limits
        self._max_body = max_body_bytes
        self.app = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/v1/status", self.status, methods=["GET"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/models/{name:path}", self.model, methods=["GET"]),
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                *ollama_http.routes(self),
            ],
            exception_handlers={HTTPException: self._http_exception},
        )

    def _running(self) -> str:
        try:
            return str(self._ready.service.model_state()["name"])  # changes with a live switch
        except e.Unavailable:
            return self._started_with

    @property
    def model_name(self) -> str:
        """The id listed and answered with: the alias, else the running model's name."""
        return self._alias or self._running()

    def serves(self, name: str) -> bool:
        """Whether a request naming model ``name`` is for this door's model (the alias or
        the running model's own name, either with Ollama's ``:latest`` tag)."""
        names = {self._alias, self._running()} - {""}
        return name in names or (name.endswith(":latest") and name[:-7] in names)

    def embedding_model(self, name: str) -> str | None:
        """The embedding model (``[context] embedding_model``) a request names, if any."""
        try:
            names = self._ready.service.embedding_names()
        except e.Unavailable:
            return None
        bare = name.removesuffix(":latest")
        return bare if bare in names else None

    def embedding_names(self) -> tuple[str, ...]:
        try:
            return self._ready.service.embedding_names()
        except e.Unavailable:
            return ()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = f"{request.method} {request.url.path[:128]}: {exc.detail}"
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=exc.status_code)

    # -- readiness ------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        """``Readiness.health``, as gRPC health says it: 200 once started (``ready``,
        ``unloaded`` or ``loading`` again on demand), 503 ``starting`` before."""
        h = self._ready.health()
        body: dict[str, Any] = {"status": h.status} if h.model is None else {"status": h.status, "model": h.model}
        return JSONResponse(body, status_code=200 if h.serving else 503)

    async def status(self, request: Request) -> Response:
        """What is running: the model and its state, memory (weights, KV cache),
        keep-alive and expiry, requests generating and waiting."""
        try:
            service = self._ready.service
        except e.Unavailable:
            return JSONResponse({"status": "starting", "model": None}, status_code=503)
        return JSONResponse(status_body(service.model_state(), service.runtime()))

    # -- models ---------------------------------------------------------------------
    def _model_entry(self, name: str = "") -> dict[str, Any]:
        return {"id": name or self.model_name, "object": "model", "created": 0, "owned_by": "edge-agent"}

    async def models(self, request: Request) -> Response:
        data = [self._model_entry(), *(self._model_entry(n) for n in self.embedding_names())]
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        name = request.path_params["name"]
        embedding = self.embedding_model(name)
        if embedding is not None:
            return JSONResponse(self._model_entry(embedding))
        if not self.serves(name):
            return _error_response(ModelNotFound(name), "GET /v1/models", self._on_error)
        return JSONResponse(self._model_entry())

    # -- generation -----------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def embeddings(self, request: Request) -> Response:
        """Vectors from the local model, or from the embedding model when the request
        names it; an embedding never leaves the device."""
        where = f"POST {request.url.path}"
        try:
            raw = await self._body(request)
            body = oc.parse_body(raw) if len(raw) <= oc.PARSE_INLINE_BYTES else await asyncio.to_thread(oc.parse_body, raw)
            req = oc.embedding_request(body, self._limits)
            embedding = self.embedding_model(req.model)
            if embedding is None and not self.serves(req.model):
                raise ModelNotFound(req.model)
            emb = await self._ready.service.embed(req.texts, req.app_id, embedding or "")
            out = oc.embedding_response(req, emb, embedding or self.model_name)
        except Exception as exc:  # noqa: BLE001 - every error becomes an OpenAI error object
            return _error_response(exc, where, self._on_error)
        return JSONResponse(out, headers={ROUTE_HEADER: "local"})

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge("body", f"must be at most {self._max_body} bytes")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self._max_body:
                    raise PayloadTooLarge("body", f"must be at most {self._max_body} bytes")
                chunks.append(chunk)
        except ClientDisconnect:  # nobody reads the answer; a 400 logged at INFO, no traceback
            raise e.InvalidArgument("body", f"the client went away after sending {size} bytes of it") from None
        return b"".join(chunks)

    async def _generate(self, request: Request, *, chat: bool) -> Response:
        where = f"POST {request.url.path}"
        events: AsyncGenerator[Event, None] | None = None
        try:
            req = await oc.checked_request(await self._body(request), self._limits, chat=chat)
            if not self.serves(req.model):
                raise ModelNotFound(req.model)
            service = self._ready.service
            plan = await service.plan(req.ask)
            events = service.execute(plan)
            first = await anext(events)  # errors before the first token keep their HTTP status
        except Exception as exc:  # noqa: BLE001 - every error becomes an OpenAI error object
            if events is not None:
                await events.aclose()
            return _error_response(exc, where, self._on_error)
        headers = {ROUTE_HEADER: plan.decision.target.value, "X-Request-Id": plan.request_id}
        answer = _Answer(chat=chat, model=self.model_name, request_id=plan.request_id, include_usage=req.include_usage,
                         tools=req.ask.tools is not None)
        answer.on_error = self._on_error
        if req.keep_alive_set:
            keep = req.keep_alive_s
            answer.on_done = lambda: service.engine.keep_after(keep)
        if req.stream:
            return StreamingResponse(
                _sse(answer, first, events, where),
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache"},
            )
        return await _whole(request, answer, first, events, headers, where)


class _Answer:
    """The shape of the responses of one request (chat or text completion)."""

    def __init__(self, *, chat: bool, model: str, request_id: str, include_usage: bool = False, tools: bool = False) -> None:
        self.chat = chat
        self.tools = tools  # the answer is in the tool-call format: held back, then content or tool_calls
        self.model = model
        self.id = ("chatcmpl-" if chat else "cmpl-") + request_id
        self.created = int(time.time())
        self.include_usage = include_usage
        self.on_done: Callable[[], None] = lambda: None  # when the outcome is in (keep_alive)
        self.on_error: Callable[[], None] = lambda: None  # when it fails after the first event

    def _envelope(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def chunk(self, text: str, *, first: bool = False, done: Outcome | None = None) -> dict[str, Any]:
        finish = oc.finish_reason(done) if done else None
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": text} if first else ({"content": text} if text else {})
            out = self._envelope("chat.completion.chunk") | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        else:
            out = self._envelope("text_completion") | {"choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
        if self.include_usage:
            out["usage"] = None
        elif done is not None:
            out |= {"usage": oc.usage(done), "edgecloud": oc.route_info(done)}
        return out

    def usage_chunk(self, done: Outcome) -> dict[str, Any]:
        """The last chunk with ``stream_options.include_usage``: no choices, the usage."""
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return self._envelope(obj) | {"choices": [], "usage": oc.usage(done), "edgecloud": oc.route_info(done)}

    def _calls(self, text: str, done: Outcome) -> tuple[str | None, list[dict[str, Any]], str]:
        """A tool-format answer as (content, tool_calls, finish_reason)."""
        content, calls = toolfmt.parse_answer(text)
        wire = [{"id": f"call_{done.request_id}_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for i, c in enumerate(calls)]
        return content, wire, "tool_calls" if wire else oc.finish_reason(done)

    def tool_chunks(self, text: str, done: Outcome) -> Iterator[dict[str, Any]]:
        """A held-back tool-format answer streamed as OpenAI does: the role, then the
        content or one delta per call (its id, name and whole arguments), then the finish."""
        content, calls, finish = self._calls(text, done)
        yield self.chunk("", first=True)
        if content:
            yield self.chunk(content)
        for i, call in enumerate(calls):
            delta = {"tool_calls": [{"index": i, **call}]}
            yield self._envelope("chat.completion.chunk") | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        last = self.chunk("", done=done)
        last["choices"][0]["finish_reason"] = finish
        yield last

    def whole(self, text: str, done: Outcome) -> dict[str, Any]:
        finish = oc.finish_reason(done)
        if self.chat and self.tools:
            content, calls, finish = self._calls(text, done)
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "finish_reason": finish}
            out = self._envelope("chat.completion")
        elif self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            out = self._envelope("chat.completion")
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            out = self._envelope("text_completion")
        return out | {"choices": [choice], "usage": oc.usage(done), "edgecloud": oc.route_info(done)}


def _sse_line(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


@contextlib.contextmanager
def _closing_log(where: str) -> Iterator[None]:
    try:
        yield
    except (asyncio.CancelledError, GeneratorExit):
        log.info("%s: client went away; request cancelled", where)
        raise


async def _sse(answer: _Answer, first: Event, events: AsyncGenerator[Event, None], where: str) -> AsyncIterator[bytes]:
    """Server-sent events: a chunk per delta, the last with usage and the route; an
    error after the first token is an ``error`` event (the status is already sent)."""
    try:
        with _closing_log(where):
            ev: Event | None = first
            is_first = True
            held: list[str] = []  # a tool-format answer, shown once it is whole
            while ev is not None:
                if isinstance(ev, Outcome) and answer.tools:
                    answer.on_done()
                    for chunk in answer.tool_chunks("".join(held), ev):
                        yield _sse_line(chunk)
                    if answer.include_usage:
                        yield _sse_line(answer.usage_chunk(ev))
                    break
                if isinstance(ev, Outcome):
                    if is_first and answer.chat:
                        yield _sse_line(answer.chunk("", first=True))
                    answer.on_done()
                    yield _sse_line(answer.chunk("", done=ev))
                    if answer.include_usage:
                        yield _sse_line(answer.usage_chunk(ev))
                    break
                if answer.tools:
                    held.append(ev)
                else:
                    yield _sse_line(answer.chunk(ev, first=is_first))
                    is_first = False
                ev = await anext(events, None)
            yield b"data: [DONE]\n\n"
    except Exception as exc:
        answer.on_error()
        _, body, _ = error_body(exc)
        log.warning("%s: failed mid-stream: %s", where, body["error"]["message"], exc_info=not isinstance(exc, e.DomainError))
        yield _sse_line(body)
    finally:
        await events.aclose()


async def in_worker(fn: Callable[[], Any], *, heavy: bool) -> Any:
    """``fn()`` on the event loop, or in a worker thread when it is ``heavy`` (a large
    body, a schema to turn into a grammar)."""
    return await asyncio.to_thread(fn) if heavy else fn()


async def collect_answer(request: Request, first: Event, events: AsyncGenerator[Event, None],
                         where: str) -> tuple[str, Outcome] | Response | BaseException:
    """A whole answer: (text, outcome); a 499 response when the client went away (the
    request is cancelled); the exception when generation failed. Closes ``events``."""

    async def collect() -> tuple[str, Outcome]:
        parts: list[str] = []
        ev: Event | None = first
        while ev is not None:
            if isinstance(ev, Outcome):
                return "".join(parts), ev
            parts.append(ev)
            ev = await anext(events, None)
        raise e.DomainError("generation ended without an outcome")  # pragma: no cover

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    work, watch = asyncio.ensure_future(collect()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            log.info("%s: client went away; request cancelled", where)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return Response(status_code=499)
        try:
            return work.result()
        except Exception as exc:  # noqa: BLE001
            return exc
    finally:
        watch.cancel()
        await events.aclose()


async def _whole(request: Request, answer: _Answer, first: Event, events: AsyncGenerator[Event, None], headers: dict[str, str], where: str) -> Response:
    """A non-streamed answer; the client going away cancels it all the same."""
    got = await collect_answer(request, first, events, where)
    if isinstance(got, Response):
        return got
    if isinstance(got, BaseException):
        return _error_response(got, where, answer.on_error)
    text, done = got
    answer.on_done()
    return JSONResponse(answer.whole(text, done), headers=headers)
