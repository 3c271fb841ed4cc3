"""Backends of the cloud service: a GGUF model run in-process, or any
OpenAI-compatible server (vLLM, TGI, llama.cpp's server) reached over HTTP with httpx.

A backend streams ``str`` deltas and ends with one ``Done``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Protocol, Union

import httpx


@dataclass(frozen=True)
class Params:
    """Decoding parameters, already validated."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    stop: tuple[str, ...]


@dataclass(frozen=True)
class Done:
    """End of a backend stream."""

    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float
    total_ms: float
    finish_reason: str


@dataclass(frozen=True)
class BackendInfo:
    model: str
    context_length: int
    backend: str


class BackendError(Exception):
    """The backend failed; the message is safe to show to the caller."""


Event = Union[str, Done]


class Backend(Protocol):
    def info(self) -> BackendInfo: ...

    def generate(self, prompt: str, params: Params) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...


_END = object()


class LlamaBackend:
    """A GGUF model through llama-cpp-python, one request at a time."""

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        from llama_cpp import Llama

        self._path = model_path
        self._llm = Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False
        )
        self._lock = asyncio.Lock()

    def info(self) -> BackendInfo:
        return BackendInfo(model=self._path.name, context_length=self._llm.n_ctx(), backend="llama")

    async def generate(self, prompt: str, params: Params) -> AsyncIterator[Event]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[object] = asyncio.Queue()
            stop_flag = threading.Event()
            worker = loop.run_in_executor(None, self._run, prompt, params, queue, loop, stop_flag)
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        break
                    if isinstance(item, BaseException):
                        raise BackendError(f"model failed: {type(item).__name__}")
                    yield item  # type: ignore[misc]
            finally:
                stop_flag.set()
                await worker

    def _run(
        self,
        prompt: str,
        params: Params,
        queue: asyncio.Queue[object],
        loop: asyncio.AbstractEventLoop,
        stop_flag: threading.Event,
    ) -> None:
        put = lambda item: loop.call_soon_threadsafe(queue.put_nowait, item)  # noqa: E731
        try:
            t0 = time.perf_counter()
            ttft = 0.0
            n = 0
            finish = "stop"
            prompt_tokens = len(self._llm.tokenize(prompt.encode(), add_bos=True))
            stream = self._llm.create_completion(
                prompt,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p or 1.0,
                top_k=params.top_k,
                seed=params.seed,
                stop=list(params.stop) or None,
                stream=True,
            )
            for chunk in stream:
                if stop_flag.is_set():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]  # type: ignore[index]
                text = choice["text"]
                if text or not choice.get("finish_reason"):  # the closing chunk is no token
                    n += 1
                if n == 1 and not ttft:
                    ttft = (time.perf_counter() - t0) * 1000
                if text:
                    put(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            put(Done(prompt_tokens, n, ttft, (time.perf_counter() - t0) * 1000, finish))
        except BaseException as exc:  # reported to the event loop, re-raised there
            put(exc)
        finally:
            put(_END)

    async def aclose(self) -> None:
        async with self._lock:
            self._llm.close()


class OpenAIBackend:
    """Forwards to an OpenAI-compatible ``/v1/completions`` endpoint, streaming (SSE)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str = "",
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        context_length: int = 0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            transport=transport,
        )
        self._model = model
        self._context_length = context_length

    def info(self) -> BackendInfo:
        return BackendInfo(model=self._model or "openai-compatible", context_length=self._context_length, backend="openai")

    async def discover_model(self) -> None:
        """Fill the model name from ``/v1/models`` when none was configured."""
        if self._model:
            return
        try:
            resp = await self._client.get("/v1/models")
            resp.raise_for_status()
            data = resp.json().get("data") or []
            if data:
                self._model = str(data[0].get("id", ""))
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendError(f"cannot list models at the upstream server: {type(exc).__name__}") from exc

    async def generate(self, prompt: str, params: Params) -> AsyncIterator[Event]:
        body: dict[str, object] = {
            "model": self._model,
            "prompt": prompt,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p or 1.0,
            "stream": True,
        }
        if params.top_k:
            body["top_k"] = params.top_k
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        t0 = time.perf_counter()
        ttft = 0.0
        pieces = 0
        finish = "stop"
        usage: dict[str, int] = {}
        try:
            async with self._client.stream("POST", "/v1/completions", json=body) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise BackendError(f"upstream server answered HTTP {resp.status_code}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        chunk = json.loads(payload)
                    except ValueError as exc:
                        raise BackendError("upstream server sent malformed JSON") from exc
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    choices = chunk.get("choices") or []
                    if not choices:
                        continue
                    text = choices[0].get("text") or ""
                    if choices[0].get("finish_reason"):
                        finish = choices[0]["finish_reason"]
                    if text:
                        pieces += 1
                        if pieces == 1:
                            ttft = (time.perf_counter() - t0) * 1000
                        yield text
        except httpx.HTTPError as exc:
            raise BackendError(f"upstream server unreachable: {type(exc).__name__}") from exc
        yield Done(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", pieces)),
            ttft_ms=ttft,
            total_ms=(time.perf_counter() - t0) * 1000,
            finish_reason=finish,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
