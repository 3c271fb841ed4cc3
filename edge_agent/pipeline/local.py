"""The local model on the event loop: one worker thread owns the engine.

Every call that touches the model (generation, warm-up, forgetting the draft corpus,
closing) runs on that one thread, so they never overlap; a cancelled generation stops
the decoder within one step before the next call gets the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from common.bridge import iterate_in_thread
from common.chat import Message
from edge_agent.engine.api import Engine, Finished, SamplingParams, TextDelta


def _join(a: TextDelta | Finished, b: TextDelta | Finished) -> TextDelta | None:
    """Deltas that piled up while the last was sent go out as one."""
    if isinstance(a, TextDelta) and isinstance(b, TextDelta):
        return TextDelta(a.text + b.text, a.token_probs + b.token_probs)
    return None


class AsyncEngine:
    """An ``Engine`` behind one worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    @property
    def n_ctx(self) -> int:
        return self.engine.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        return self.engine.chat_prompt(messages)

    def stream(
        self, prompt: str, params: SamplingParams, drafts: Sequence[str] = (), n_probs: int = 0
    ) -> AsyncIterator[TextDelta | Finished]:
        """Deltas, then one Finished."""
        return iterate_in_thread(
            self._executor,
            lambda cancelled: self.engine.generate(
                prompt, params, draft_texts=drafts, cancelled=cancelled, token_probs=n_probs
            ),
            merge=_join,
        )

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
        self._executor.shutdown(wait=True)
        self.engine.close()
