"""The model slots: ``capacity`` generations at once (the engine's ``parallel``), a
bounded queue of waiters behind them, served in a fair order.

Beyond ``depth`` waiters a request is refused at once with RESOURCE_EXHAUSTED and a
retry hint, so an overloaded daemon answers instead of hanging. A freed slot goes to
the first waiting interactive request, then to background ones (labelled
``BACKGROUND_LABEL``), first come first served within each, skipping an app that
already holds ``per_app`` slots; so no app takes every slot and, as every waiter is
eventually the oldest of its kind, none starves while slots free up.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from common.errors import ResourceExhausted

BACKGROUND_LABEL = "background"


@dataclass(order=True)
class _Waiter:
    priority: int
    order: int
    app: str = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class ModelSlot:
    """An async semaphore of ``capacity`` with a bounded, fair wait queue and
    wait-time accounting."""

    def __init__(self, depth: int, capacity: int = 1, per_app: int = 0) -> None:
        self.depth = depth
        self.capacity = max(1, capacity)
        self.per_app = per_app if per_app > 0 else self.capacity
        self._held = 0
        self._by_app: dict[str, int] = {}
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self._busy_s_ewma = 1.0  # seconds a request holds the model, for retry hints
        self._observed = False

    def seed(self, seconds: float) -> None:
        """Start the estimate from a measurement (warm-up) until requests replace it."""
        if not self._observed and seconds > 0:
            self._busy_s_ewma = seconds

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def active(self) -> int:
        """Requests holding a slot now (0 .. capacity)."""
        return self._held

    def _may_run(self, app: str) -> bool:
        return self._held < self.capacity and self._by_app.get(app, 0) < self.per_app

    def _take(self, app: str) -> None:
        self._held += 1
        self._by_app[app] = self._by_app.get(app, 0) + 1

    def _release(self, app: str) -> None:
        self._held -= 1
        left = self._by_app.get(app, 0) - 1
        if left > 0:
            self._by_app[app] = left
        else:
            self._by_app.pop(app, None)
        self._wake()

    def _wake(self) -> None:
        for w in sorted(self._waiters):
            if self._held >= self.capacity:
                return
            if not w.granted.done() and self._may_run(w.app):
                self._waiters.remove(w)
                self._take(w.app)
                w.granted.set_result(None)

    @asynccontextmanager
    async def hold(self, app: str = "", background: bool = False) -> AsyncIterator[float]:
        """Hold a slot; yields the seconds spent waiting for it."""
        t0 = time.monotonic()
        if len(self._waiters) >= self.depth and not self._may_run(app):
            raise ResourceExhausted(
                f"the local model queue is full ({self.depth} waiting)",
                retry_after_s=self._busy_s_ewma * (len(self._waiters) + 1) / self.capacity,
            )
        w = _Waiter(1 if background else 0, next(self._order), app, asyncio.get_running_loop().create_future())
        self._waiters.append(w)
        self._wake()  # a free slot goes to the first eligible waiter, which may be this one
        if not w.granted.done():
            try:
                await w.granted
            except asyncio.CancelledError:
                if w.granted.done() and not w.granted.cancelled():
                    self._release(app)  # granted just as the caller went away
                elif w in self._waiters:
                    self._waiters.remove(w)
                raise
        waited = time.monotonic() - t0
        held_from = time.monotonic()
        try:
            yield waited
        finally:
            held = time.monotonic() - held_from
            self._busy_s_ewma = held if not self._observed else 0.8 * self._busy_s_ewma + 0.2 * held
            self._observed = True
            self._release(app)
