"""Forwarding to any OpenAI-compatible server (vLLM, TGI, llama.cpp's server, a hosted
API) over HTTP with httpx: streaming SSE, timeouts, a pooled client, and upstream
failures mapped onto ``BackendError``, ``ResourceExhausted`` and ``Rejected`` (and so onto
gRPC status codes by the one table in ``common.grpc_status``).

Both ``/v1/completions`` (``api="completions"``, the prompt is sent as is) and
``/v1/chat/completions`` (``api="chat"``, the prompt becomes one user message) work.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any, Literal

import httpx

from cloud_stub.backends import (
    BackendError,
    BackendInfo,
    Done,
    Event,
    Params,
)
from cloud_stub.sse import SSEError, iter_sse_data
from common.chat import Prompt
from common.errors import Rejected, ResourceExhausted

log = logging.getLogger(__name__)

Api = Literal["completions", "chat"]
_PATHS: dict[str, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
# Upstream answers that mean "this request is wrong", not "the server is broken".
_REJECTED = frozenset({400, 413, 422})


class OpenAIBackend:
    """Streams completions from an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str = "",
        api: Api = "completions",
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
        context_length: int = 0,
        stream_usage: bool = True,
    ) -> None:
        if api not in _PATHS:
            raise ValueError(f"api must be one of {sorted(_PATHS)}, not {api!r}")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self._model = model
        self._api: Api = api
        self._context_length = context_length
        self._stream_usage = stream_usage

    def info(self) -> BackendInfo:
        return BackendInfo(
            model=self._model or "openai-compatible", context_length=self._context_length, backend="openai"
        )

    async def discover_model(self) -> None:
        """Fill the model name (and context length, where the server says) from ``/v1/models``.

        Fails only when no model name was configured: the context length is optional,
        and an upstream that is down at start may well be up by the first request.
        """
        if self._model and self._context_length:
            return
        try:
            resp = await self._client.get("/v1/models")
            resp.raise_for_status()
            data = resp.json().get("data") or []
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            if self._model:
                log.warning("cannot list models at the upstream server (%s); context length unknown", type(exc).__name__)
                return
            raise BackendError(f"cannot list models at the upstream server: {type(exc).__name__}") from exc
        if not data or not isinstance(data[0], dict):
            return
        entry = data[0]
        if not self._model:
            self._model = str(entry.get("id", ""))
        max_len = entry.get("max_model_len")  # vLLM reports the context window here
        if not self._context_length and isinstance(max_len, int):
            self._context_length = max_len

    def _body(self, prompt: Prompt, params: Params, api: str) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self._model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p or 1.0,
            "stream": True,
        }
        if isinstance(prompt, tuple):
            body["messages"] = [{"role": m.role, "content": m.content} for m in prompt]
        elif api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        if params.top_k:
            body["top_k"] = params.top_k
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.json_schema:  # structured outputs (OpenAI, vLLM, llama.cpp's server)
            schema = json.loads(params.json_schema)
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        return body

    async def generate(self, prompt: Prompt, params: Params) -> AsyncGenerator[Event, None]:
        """A prompt through the configured API; a conversation always through the chat API."""
        api = "chat" if isinstance(prompt, tuple) else self._api
        t0 = time.perf_counter()
        ttft = 0.0
        pieces = 0
        finish = ""
        usage: dict[str, Any] = {}
        try:
            async with self._client.stream("POST", _PATHS[api], json=self._body(prompt, params, api)) as resp:
                if resp.status_code != 200:
                    await _raise_for_status(resp)
                ended = False
                async for data in iter_sse_data(resp.aiter_lines()):
                    if data == "[DONE]":
                        ended = True
                        break
                    chunk = _parse_chunk(data)
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    text, reason = _choice(chunk, api)
                    if reason:
                        finish = reason
                    if text:
                        pieces += 1
                        if pieces == 1:
                            ttft = (time.perf_counter() - t0) * 1000
                        yield text
                if not ended and not finish:
                    raise BackendError("upstream stream ended before the answer was complete")
        except SSEError as exc:
            raise BackendError(f"upstream server sent malformed SSE: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise BackendError(f"upstream server timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"upstream server unreachable: {type(exc).__name__}") from exc
        yield Done(
            prompt_tokens=_int(usage.get("prompt_tokens"), 0),
            completion_tokens=_int(usage.get("completion_tokens"), pieces),
            ttft_ms=ttft,
            total_ms=(time.perf_counter() - t0) * 1000,
            finish_reason=finish or "stop",
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _choice(chunk: dict[str, Any], api: str) -> tuple[str, str]:
    """(text, finish_reason) of the first choice; ("", "") when there is none."""
    choices = chunk.get("choices")
    if choices is None or choices == []:
        return "", ""  # e.g. the usage-only chunk at the end
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise BackendError("upstream server sent malformed SSE: 'choices' is not a list of objects")
    choice = choices[0]
    if api == "chat":
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = choice.get("text")
    if text is not None and not isinstance(text, str):
        raise BackendError("upstream server sent malformed SSE: the text is not a string")
    reason = choice.get("finish_reason")
    return text or "", reason if isinstance(reason, str) else ""


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise BackendError("upstream server sent malformed SSE: data is not JSON") from exc
    if not isinstance(chunk, dict):
        raise BackendError("upstream server sent malformed SSE: data is not a JSON object")
    if "error" in chunk:  # vLLM and others report failures mid-stream this way
        log.warning("upstream error event: %.500s", data)
        raise BackendError("upstream server reported an error during the answer")
    return chunk


async def _raise_for_status(resp: httpx.Response) -> None:
    body = (await resp.aread())[:500]
    code = resp.status_code
    log.warning("upstream answered HTTP %d: %r", code, body)
    if code == 429:
        raise ResourceExhausted("upstream server is rate-limiting (HTTP 429)", _retry_after(resp))
    if code in _REJECTED:
        raise Rejected(f"upstream server rejected the request (HTTP {code})")
    raise BackendError(f"upstream server answered HTTP {code}")


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(float(resp.headers.get("retry-after", "")), 0.0)
    except ValueError:
        return None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and value >= 0 else default
