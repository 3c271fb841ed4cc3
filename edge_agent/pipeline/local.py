"""The local model on the event loop: worker threads own the engine.

An engine that serves one request at a time gets one worker thread: every call that
touches the model (generation, warm-up, loading and freeing the weights, forgetting the
draft corpus, closing) runs on it, so they never overlap; a cancelled generation stops
the decoder within one step before the next call gets the thread. An engine with
``parallel > 1`` (its own scheduler orders the model's work) gets that many, so that
many generations stream at once.

Keep-alive (Ollama's semantics): ``keep_alive_s`` after the last generation ended the
weights and KV cache are freed; the next generation loads them again first. 0 frees
them after every generation, None keeps them. ``state`` tells ``ready``, ``loading``
or ``unloaded``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from common.bridge import iterate_in_thread
from common.chat import Message
from edge_agent.engine.api import Embeddings, Engine, Finished, SamplingParams, TextDelta

log = logging.getLogger(__name__)


def _join(a: TextDelta | Finished, b: TextDelta | Finished) -> TextDelta | None:
    """Deltas that piled up while the last was sent go out as one."""
    if isinstance(a, TextDelta) and isinstance(b, TextDelta):
        return TextDelta(a.text + b.text, a.token_probs + b.token_probs)
    return None


class AsyncEngine:
    """An ``Engine`` behind one worker thread, freed when idle for ``keep_alive_s``."""

    def __init__(self, engine: Engine, *, keep_alive_s: float | None = None) -> None:
        self.engine = engine
        self.keep_alive_s = keep_alive_s
        self.parallel = max(1, int(getattr(engine, "parallel", 1)))
        self._executor = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="model")
        self._active = 0  # generations running or waiting for the thread
        self._loading = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_s = 0.0  # the idle time the scheduled unload was set for
        self._idle_since = time.monotonic()
        self.loads = 0  # loads after an idle unload
        self.unloads = 0

    @property
    def n_ctx(self) -> int:
        return self.engine.n_ctx

    @property
    def state(self) -> str:
        """``loading`` (weights being read), ``ready`` or ``unloaded`` (idle)."""
        if self._loading:
            return "loading"
        return "ready" if self.engine.loaded else "unloaded"

    def expires_in_s(self) -> float | None:
        """Seconds until an idle model is freed (None: not scheduled)."""
        if self._timer is None:
            return None
        return max(0.0, self._idle_since + self._timer_s - time.monotonic())

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        return self.engine.chat_prompt(messages)

    def chat_stops(self) -> tuple[str, ...]:
        return self.engine.chat_stops()

    async def stream(
        self, prompt: str, params: SamplingParams, drafts: Sequence[str] = (), n_probs: int = 0,
        *, app: str = "", background: bool = False,
    ) -> AsyncIterator[TextDelta | Finished]:
        """Deltas, then one Finished (loading the weights first after an unload)."""
        self._active += 1
        self._cancel_timer()
        try:
            if not self.engine.loaded:
                await self._load()
            async for ev in iterate_in_thread(
                self._executor,
                lambda cancelled: self.engine.generate(
                    prompt, params, draft_texts=drafts, cancelled=cancelled, token_probs=n_probs,
                    app=app, background=background,
                ),
                merge=_join,
            ):
                yield ev
        finally:
            self._active -= 1
            self._schedule_unload()

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Vectors of ``texts`` from the local model (loading it first after an unload);
        like a generation, it holds the model against the idle unload while it runs."""
        self._active += 1
        self._cancel_timer()
        try:
            if not self.engine.loaded:
                await self._load()
            return await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.embed, list(texts))
        finally:
            self._active -= 1
            self._schedule_unload()

    async def _load(self) -> None:
        self._loading = True
        t0 = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.load)
        finally:
            self._loading = False
        self.loads += 1
        log.info("model loaded in %.0f ms (after an idle unload)", (time.perf_counter() - t0) * 1000)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule_unload(self, keep_alive_s: float | None = None, *, default: bool = True) -> None:
        seconds = self.keep_alive_s if default else keep_alive_s
        if self._active:
            return
        self._cancel_timer()
        if seconds is None:
            return
        self._idle_since = time.monotonic()
        self._timer_s = seconds
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(seconds, self._unload_when_idle)

    def keep_after(self, keep_alive_s: float | None) -> None:
        """A request's own ``keep_alive`` (Ollama's per-request field): the model stays
        this long after the request that just ended (0: freed now; None: kept until
        a later request ends), unless another request holds it."""
        if self.engine.loaded:
            self._schedule_unload(keep_alive_s, default=False)

    async def swap(self, engine: Engine) -> Engine:
        """Run ``engine`` from now on (a live model switch; the caller has drained the
        requests): the old one is closed on the worker thread, after anything queued
        there. Returns the old engine (closed)."""
        self._cancel_timer()
        old = self.engine

        def replace() -> None:
            old.close()
            self.engine = engine

        await asyncio.get_running_loop().run_in_executor(self._executor, replace)
        self._idle_since = time.monotonic()
        return old

    async def unload_now(self) -> None:
        """Free the model now unless a request holds it (Ollama's ``keep_alive: 0``
        request without a prompt); returns once it is freed."""
        if self.engine.loaded and not self._active:
            self._cancel_timer()
            await asyncio.get_running_loop().run_in_executor(self._executor, self._unload_if_idle)

    def _unload_when_idle(self) -> None:
        self._timer = None
        if not self._active:
            asyncio.get_running_loop().run_in_executor(self._executor, self._unload_if_idle)

    def _unload_if_idle(self) -> None:  # on the worker thread
        if self._active or not self.engine.loaded:
            return  # a generation came in since: it holds the model
        self.engine.unload()
        self.unloads += 1
        log.info("model unloaded after %s idle (keep_alive)", _seconds(self._timer_s))

    async def warm_up(self) -> float:
        """One short generation; its duration in ms."""
        total = 0.0
        async for ev in self.stream("Hello", SamplingParams(max_tokens=2)):
            if isinstance(ev, Finished):
                total = ev.usage.total_ms
        return total

    async def forget_drafts(self) -> None:
        """Drop the engine's draft corpus between two generations."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.forget_drafts)

    def runtime_state(self) -> dict[str, object]:
        live = getattr(self.engine, "runtime_state", None)
        return dict(live()) if callable(live) else {}

    def close(self) -> None:
        self._cancel_timer()
        self._executor.shutdown(wait=True)
        self.engine.close()


def _seconds(s: float | None) -> str:
    return "forever" if s is None else f"{s:g} s"
