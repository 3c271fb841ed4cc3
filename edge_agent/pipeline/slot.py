"""The model slot: one generation at a time, a bounded queue of waiters behind it.

Beyond ``depth`` waiters a request is refused at once with RESOURCE_EXHAUSTED and a
retry hint, so an overloaded daemon answers instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.errors import ResourceExhausted


class ModelSlot:
    """Async mutex with a bounded wait queue and wait-time accounting."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._busy_s_ewma = 1.0  # seconds a request holds the model, for retry hints
        self._observed = False

    def seed(self, seconds: float) -> None:
        """Start the estimate from a measurement (warm-up) until requests replace it."""
        if not self._observed and seconds > 0:
            self._busy_s_ewma = seconds

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def active(self) -> int:
        """Requests holding the model now (0 or 1)."""
        return 1 if self._lock.locked() else 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[float]:
        """Hold the model; yields the seconds spent waiting for it."""
        if self._lock.locked() and self._waiting >= self.depth:
            raise ResourceExhausted(
                f"the local model queue is full ({self.depth} waiting)",
                retry_after_s=self._busy_s_ewma * (self._waiting + 1),
            )
        t0 = time.monotonic()
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        waited = time.monotonic() - t0
        held_from = time.monotonic()
        try:
            yield waited
        finally:
            held = time.monotonic() - held_from
            self._busy_s_ewma = held if not self._observed else 0.8 * self._busy_s_ewma + 0.2 * held
            self._observed = True
            self._lock.release()
