"""An Ollama-compatible subset on the HTTP door: ``/api/chat``, ``/api/generate``,
``/api/embed``, ``/api/tags``, ``/api/ps`` and ``/api/version``, so apps written for
Ollama work unchanged (behind the same guard: Host, Origin, token, content type).

A shape-mapper only: each body becomes the request builder's ``RequestFields``
(``pipeline/request.py``, which owns every rule), runs through the same service calls
as the OpenAI routes (plan, execute, the same router, ledger and limits) and comes back
in Ollama's shapes: NDJSON lines when ``stream`` is true (Ollama's default), one object
otherwise, the last with ``done: true``, ``done_reason`` and the counts and durations
(nanoseconds). ``options`` maps ``temperature``, ``top_p``, ``top_k``, ``seed``,
``num_predict`` and ``stop``; resource hints (``num_ctx``, ``num_thread``, ``num_gpu``,
...) are accepted and do not change the answer; an option that would change it and is
not implemented (``repeat_penalty``, ``mirostat``, ...) is refused with 400 naming it,
as is an unknown field. ``format`` is ``"json"`` or a JSON schema; ``tools`` are the
OpenAI shape (``common/tools.py``), the calls come back in ``message.tool_calls`` with
arguments as objects. A request without a prompt or messages only applies its
``keep_alive`` (``0`` frees the model now), as Ollama apps use it to unload.
Errors are ``{"error": "<field>: <rule>"}`` with the status the error table gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from common import tools as toolfmt
from common.errors import InvalidArgument
from common.params import ParamNames
from edge_agent.config import LimitsConfig
from edge_agent.pipeline import request
from edge_agent.pipeline.types import AskRequest, Event, Outcome
from edge_agent.transport import openai_convert as oc

if TYPE_CHECKING:
    from edge_agent.transport.openai_http import OpenAIFrontDoor

VERSION = "0.5.0"  # the Ollama API version whose shapes this subset follows
_OPTIONS = {"temperature", "top_p", "top_k", "seed", "num_predict", "stop"}
# hints about resources that do not change what is generated
_HINTS = {"num_ctx", "num_thread", "num_gpu", "main_gpu", "num_batch", "num_keep", "use_mmap", "use_mlock",
          "numa", "low_vram", "f16_kv", "vocab_only"}
_CHAT_KEYS = {"model", "messages", "stream", "format", "options", "keep_alive", "tools"}
_GENERATE_KEYS = {"model", "prompt", "system", "stream", "format", "options", "keep_alive", "raw"}
_EMBED_KEYS = {"model", "input", "truncate", "options", "keep_alive"}
NAMES = request.Names(params=ParamNames(max_tokens="options.num_predict", temperature="options.temperature",
                                           top_p="options.top_p", top_k="options.top_k", seed="options.seed",
                                           stop="options.stop", json_schema="format"))


@dataclass(frozen=True)
class OllamaRequest:
    ask: AskRequest | None  # None: no prompt, only keep_alive to apply
    model: str
    stream: bool
    chat: bool
    keep_alive_s: float | None
    keep_alive_set: bool


def _options(body: Mapping[str, Any]) -> dict[str, Any]:
    opts = body.get("options")
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise InvalidArgument("options", "must be an object")
    for key in sorted(opts):
        if key not in _OPTIONS and key not in _HINTS:
            raise InvalidArgument(f"options.{str(key)[:32]}", "is not supported by this server (supported: "
                                  f"{', '.join(sorted(_OPTIONS))}; accepted as hints: {', '.join(sorted(_HINTS))})")
    return opts


def _format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    fmt = body.get("format")
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "object"}
    if isinstance(fmt, dict):
        return fmt
    raise InvalidArgument("format", '"json" or a JSON Schema object')


def _messages(raw: Any) -> list[tuple[str, str]]:
    """Ollama's messages (tool calls with arguments as objects) as (role, content)."""
    if not isinstance(raw, list):
        raise InvalidArgument("messages", "must be a list of {role, content} objects")
    turns = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidArgument(f"messages[{i}]", "must be an object with role and content")
        if m.get("images"):
            raise InvalidArgument(f"messages[{i}].images", "images are not supported by this server")
        calls = m.get("tool_calls") or []
        if not isinstance(calls, list):
            raise InvalidArgument(f"messages[{i}].tool_calls", "must be a list of calls")
        made = []
        for j, c in enumerate(calls):
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidArgument(f"messages[{i}].tool_calls[{j}].function", "must be {name, arguments}")
            made.append(("", fn["name"], json.dumps(fn.get("arguments", {}))))
        content = m.get("content", "")
        if not isinstance(content, str):
            raise InvalidArgument(f"messages[{i}].content", "must be a string")
        role = m["role"]
        if role not in ("system", "user", "assistant", "tool"):
            raise InvalidArgument(f"messages[{i}].role", f"one of system, user, assistant, tool (got {role[:32]!r})")
        # Ollama names a result's function (tool_name), not a call id
        call_id = m.get("tool_name") or m.get("tool_call_id") or ("result" if role == "tool" else None)
        turns.append(toolfmt.Turn(role, content, calls=tuple(made), tool_call_id=str(call_id)[:64] if call_id else None))
    return toolfmt.as_pairs(turns)


def ollama_request(body: Mapping[str, Any], limits: LimitsConfig, *, chat: bool) -> OllamaRequest:
    """An /api/chat (``chat``) or /api/generate body mapped onto the request builder."""
    where = "/api/chat" if chat else "/api/generate"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("model", "must name a model from GET /api/tags")
    oc.refuse_unknown(body, _CHAT_KEYS if chat else _GENERATE_KEYS, where)
    opts = _options(body)
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise InvalidArgument("stream", "must be true or false")
    keep_alive_s, keep_alive_set = oc.keep_alive(body)
    if chat:
        pairs = _messages(body.get("messages") or [])
        empty = not pairs
    else:
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise InvalidArgument("prompt", "must be a string")
        system = body.get("system") or ""
        if not isinstance(system, str):
            raise InvalidArgument("system", "must be a string")
        empty = not prompt
    if empty:
        return OllamaRequest(None, model, stream, chat, keep_alive_s, keep_alive_set)
    use = toolfmt.check_tools(body.get("tools"), None, None) if chat else None
    stop = opts.get("stop")
    temperature = oc.number(opts, "temperature", "options.temperature")
    fields = request.RequestFields(
        prompt=None if chat or system else prompt,
        messages=pairs if chat else ([("system", system), ("user", prompt)] if system else None),
        max_tokens=oc.integer(opts, "num_predict", "options.num_predict"),
        temperature=0.8 if temperature is None else temperature,  # Ollama's default
        top_p=oc.number(opts, "top_p", "options.top_p"),
        top_k=oc.integer(opts, "top_k", "options.top_k"),
        seed=oc.integer(opts, "seed", "options.seed"),
        stop=oc.stop_sequences(stop, "options.stop"),
        json_schema=_format(body),
        tools=use,
        names=NAMES,
    )
    return OllamaRequest(request.ask_request(fields, limits), model, stream, chat, keep_alive_s, keep_alive_set)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _figures(o: Outcome) -> dict[str, Any]:
    u = o.usage
    total_ns, ttft_ns = int(u.total_ms * 1e6), int(u.ttft_ms * 1e6)
    return {"total_duration": total_ns, "load_duration": 0, "prompt_eval_count": u.prompt_tokens,
            "prompt_eval_duration": ttft_ns, "eval_count": u.completion_tokens,
            "eval_duration": max(total_ns - ttft_ns, 0), "edgecloud": oc.route_info(o)}


class _Shapes:
    """Ollama's response objects for one request."""

    def __init__(self, model: str, chat: bool, tools: bool) -> None:
        self.model, self.chat, self.tools = model, chat, tools

    def part(self, text: str, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": _now()}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            out["message"] = message
        else:
            out["response"] = text
        return out | {"done": False}

    def answer(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """The text to show and the tool calls (arguments as objects, as Ollama has them)."""
        if not self.tools:
            return text, []
        content, calls = toolfmt.parse_answer(text)
        return content or "", [{"function": {"name": c.name, "arguments": c.arguments}} for c in calls]

    def last(self, text: str, o: Outcome | None, calls: list[dict[str, Any]] | None = None, *,
             unloaded: bool = False) -> dict[str, Any]:
        out = self.part(text, calls) | {"done": True}
        if o is None:  # a load/unload request
            return out | {"done_reason": "unload" if unloaded else "load"}
        return out | {"done_reason": "length" if o.finish_reason == "length" else "stop", **_figures(o)}


def _ndjson(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def routes(door: OpenAIFrontDoor) -> list[Route]:
    """The Ollama routes of ``door`` (its readiness, limits, model name and body reader)."""
    from edge_agent.transport import openai_http as oh

    def _error(exc: BaseException, where: str) -> JSONResponse:
        status, body, headers = oh.error_body(exc)
        door._on_error()
        return JSONResponse({"error": body["error"]["message"]}, status_code=status, headers=headers)

    def _known(model: str) -> None:
        if not door.serves(model):
            raise oh.ModelNotFound(model)

    async def generate(req: Request, *, chat: bool) -> Response:
        where = f"POST {req.url.path}"
        events: AsyncGenerator[Event, None] | None = None
        try:
            raw = await door._body(req)
            body = await oh.in_worker(lambda: oc.parse_body(raw), heavy=len(raw) > oc.PARSE_INLINE_BYTES)
            oreq = await oh.in_worker(lambda: ollama_request(body, door._limits, chat=chat), heavy=len(raw) > oc.PARSE_INLINE_BYTES
                                      or body.get("format") not in (None, "", "json") or bool(body.get("tools")))
            _known(oreq.model)
            service = door._ready.service
            shapes = _Shapes(oreq.model, chat, oreq.ask is not None and oreq.ask.tools is not None)
            if oreq.ask is None:  # Ollama's load/unload request: apply keep_alive only
                if oreq.keep_alive_set and oreq.keep_alive_s == 0:
                    await service.engine.unload_now()
                elif oreq.keep_alive_set:
                    service.engine.keep_after(oreq.keep_alive_s)
                return JSONResponse(shapes.last("", None, unloaded=oreq.keep_alive_set and oreq.keep_alive_s == 0))
            plan = await service.plan(oreq.ask)
            events = service.execute(plan)
            first = await anext(events)
        except Exception as exc:  # noqa: BLE001 - every error becomes {"error": ...}
            if events is not None:
                await events.aclose()
            return _error(exc, where)
        headers = {oh.ROUTE_HEADER: plan.decision.target.value, "X-Request-Id": plan.request_id}

        def finished() -> None:
            if oreq.keep_alive_set:
                service.engine.keep_after(oreq.keep_alive_s)

        if oreq.stream:
            return StreamingResponse(_stream(shapes, first, events, where, finished), media_type="application/x-ndjson",
                                     headers=headers)
        got = await oh.collect_answer(req, first, events, where)
        if isinstance(got, Response):
            return got
        if isinstance(got, BaseException):
            return _error(got, where)
        text, done = got
        finished()
        shown, calls = shapes.answer(text)
        return JSONResponse(shapes.last(shown, done, calls), headers=headers)

    async def _stream(shapes: _Shapes, first: Event, events: AsyncGenerator[Event, None], where: str,
                      finished: Any) -> AsyncIterator[bytes]:
        held: list[str] = []
        try:
            ev: Event | None = first
            while ev is not None:
                if isinstance(ev, Outcome):
                    finished()
                    shown, calls = shapes.answer("".join(held)) if shapes.tools else ("", [])
                    if shown or calls:
                        yield _ndjson(shapes.part(shown, calls))
                    yield _ndjson(shapes.last("", ev))
                    break
                if shapes.tools:
                    held.append(ev)
                else:
                    yield _ndjson(shapes.part(ev))
                ev = await anext(events, None)
        except Exception as exc:  # noqa: BLE001 - the status is sent: an error line
            door._on_error()
            _, body, _ = oh.error_body(exc)
            yield _ndjson({"error": body["error"]["message"]})
        finally:
            await events.aclose()

    async def chat(req: Request) -> Response:
        return await generate(req, chat=True)

    async def generate_text(req: Request) -> Response:
        return await generate(req, chat=False)

    async def embed(req: Request) -> Response:
        where = f"POST {req.url.path}"
        try:
            raw = await door._body(req)
            body = await oh.in_worker(lambda: oc.parse_body(raw), heavy=len(raw) > oc.PARSE_INLINE_BYTES)
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise InvalidArgument("model", "must name a model from GET /api/tags")
            oc.refuse_unknown(body, _EMBED_KEYS, "/api/embed")
            _options(body)
            embedding = door.embedding_model(model)
            if embedding is None:
                _known(model)
            inp = body.get("input")
            texts = [inp] if isinstance(inp, str) else inp
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise InvalidArgument("input", "must be a string or a list of strings")
            checked = request.embed_inputs(texts, door._limits, listed=isinstance(inp, list))
            t0 = time.perf_counter()
            emb = await door._ready.service.embed(checked, "", embedding or "")
            took = int((time.perf_counter() - t0) * 1e9)
        except Exception as exc:  # noqa: BLE001
            return _error(exc, where)
        return JSONResponse({"model": model, "embeddings": [[float(x) for x in v] for v in emb.vectors],
                             "total_duration": took, "load_duration": 0, "prompt_eval_count": emb.prompt_tokens},
                            headers={oh.ROUTE_HEADER: "local"})

    def _entry(state: Mapping[str, Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
        size = int(sum(float(v) for v in dict(runtime.get("buffer_types_mib") or {}).values()) * 2**20)
        return {"name": f"{door.model_name}:latest", "model": f"{door.model_name}:latest", "size": size,
                "digest": "", "details": {"format": "gguf", "family": "", "families": None,
                                          "parameter_size": "", "quantization_level": ""}}

    async def tags(req: Request) -> Response:
        try:
            service = door._ready.service
            entry = _entry(service.model_state(), service.runtime())
        except Exception as exc:  # noqa: BLE001
            return _error(exc, "GET /api/tags")
        return JSONResponse({"models": [entry | {"modified_at": "1970-01-01T00:00:00Z"}]})

    async def ps(req: Request) -> Response:
        try:
            service = door._ready.service
            state, runtime = service.model_state(), service.runtime()
        except Exception as exc:  # noqa: BLE001
            return _error(exc, "GET /api/ps")
        if state.get("state") not in ("ready", "loading"):
            return JSONResponse({"models": []})
        left = state.get("expires_in_s", -1.0)
        expires = float(left) if isinstance(left, (int, float)) else -1.0
        until = time.gmtime(time.time() + expires) if expires >= 0 else time.gmtime(253402300799)
        return JSONResponse({"models": [_entry(state, runtime) | {
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", until), "size_vram": 0}]})

    async def version(req: Request) -> Response:
        return JSONResponse({"version": VERSION})

    return [
        Route("/api/chat", chat, methods=["POST"]),
        Route("/api/generate", generate_text, methods=["POST"]),
        Route("/api/embed", embed, methods=["POST"]),
        Route("/api/tags", tags, methods=["GET"]),
        Route("/api/ps", ps, methods=["GET"]),
        Route("/api/version", version, methods=["GET"]),
    ]
