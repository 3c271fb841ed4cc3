"""Backends of the cloud service: the shared types and the GGUF model run in-process.

A backend streams ``str`` deltas and ends with one ``Done``; it fails with a
``BackendError`` (whose subclass decides the gRPC status). The OpenAI-compatible
backend lives in ``openai_compat.py``, fault injection in ``faults.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

from edgecloud.validate import CheckedParams

# Decoding parameters, already validated: the shared wire-level check's result.
Params: TypeAlias = CheckedParams


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
    """The backend cannot serve now (UNAVAILABLE); the message is safe to show."""


class BackendBusy(BackendError):
    """The backend is overloaded or rate-limited (RESOURCE_EXHAUSTED)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackendRejected(BackendError):
    """The backend refused this request as invalid (INVALID_ARGUMENT)."""


Event = str | Done


class Backend(Protocol):
    def info(self) -> BackendInfo: ...

    def generate(self, prompt: str, params: Params) -> AsyncGenerator[Event, None]: ...

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

    async def generate(self, prompt: str, params: Params) -> AsyncGenerator[Event, None]:
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
        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            t0 = time.perf_counter()
            ttft = 0.0
            n = 0
            finish = "stop"
            prompt_tokens = len(self._llm.tokenize(prompt.encode(), add_bos=True))
            stream = cast(Any, self._llm.create_completion(
                prompt,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p or 1.0,
                top_k=params.top_k,
                seed=params.seed,
                stop=list(params.stop) or None,
                stream=True,
            ))
            for chunk in stream:
                if stop_flag.is_set():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
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
        except BaseException as exc:  # noqa: BLE001 - reported to the event loop, re-raised there
            put(exc)
        finally:
            put(_END)

    async def aclose(self) -> None:
        async with self._lock:
            self._llm.close()
