"""The model slots: ``capacity`` generations at once (the engine's ``parallel``), a
bounded queue of waiters behind them, served in a fair order.

Beyond ``depth`` waiters a request is refused at once with RESOURCE_EXHAUSTED and a
retry hint, so an overloaded daemon answers instead of hanging. A freed slot goes to
the first waiting interactive request, then to background ones (labelled
``BACKGROUND_LABEL``), first come first served within each, skipping an app that
already holds ``per_app`` slots; so no app takes every slot and, as every waiter is
eventually the oldest of its kind, none starves while slots free up.

The retry hint is an estimate of when a request refused now would get a slot: every
request carries its token budget (``max_tokens``), a running one is expected to hold its
slot ``fixed + per_token x budget`` seconds minus what it has already run, a waiter the
whole of it, and the slots are handed out in order (``capacity`` at once) until the
refused request's turn. ``fixed`` and ``per_token`` start from the warm-up (a step's
cost) and then follow what requests really took (an EWMA of held seconds per budgeted
token: answers that stop early make later hints shorter). The hint once used one
request's worst case for every request ahead (38.8 s for a queue that drained in 7.3 s).
"""

from __future__ import annotations

import asyncio
import heapq
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
    budget: int = field(default=0, compare=False)  # max_tokens: the most work it may ask for


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
        self._running: dict[int, tuple[float, int]] = {}  # holder -> (since, budget)
        self._fixed_s = 0.1  # per request (prompt, set-up), for retry hints
        self._per_token_s = 0.05  # per budgeted token, for retry hints
        self._observed = False
        self._paused = False  # exclusive(): no slot is granted
        self._drained: asyncio.Event | None = None  # set when the last holder leaves

    def seed(self, fixed_s: float, per_token_s: float) -> None:
        """Start the estimate from a measurement (warm-up: its duration, one step's
        cost) until requests replace it."""
        if not self._observed and fixed_s > 0 and per_token_s > 0:
            self._fixed_s, self._per_token_s = fixed_s, per_token_s

    def _expected_s(self, budget: int) -> float:
        return self._fixed_s + self._per_token_s * max(1, budget)

    def retry_after_s(self, budget: int = 0) -> float:
        """When a request of ``budget`` tokens refused now would get a slot: the running
        requests' expected remaining time, then each waiter's in queue order on the slot
        that frees first."""
        now = time.monotonic()
        frees = [max(0.0, self._expected_s(b) - (now - since)) for since, b in self._running.values()]
        frees += [0.0] * (self.capacity - len(frees))
        heapq.heapify(frees)
        for w in sorted(self._waiters):
            heapq.heappush(frees, heapq.heappop(frees) + self._expected_s(w.budget))
        return max(0.1, frees[0])

    def _observe(self, held_s: float, budget: int) -> None:
        per_token = max(0.0, held_s - self._fixed_s) / max(1, budget)
        self._per_token_s = per_token if not self._observed else 0.8 * self._per_token_s + 0.2 * per_token
        self._observed = True

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def active(self) -> int:
        """Requests holding a slot now (0 .. capacity)."""
        return self._held

    def _may_run(self, app: str) -> bool:
        return not self._paused and self._held < self.capacity and self._by_app.get(app, 0) < self.per_app

    def _take(self, app: str) -> None:
        self._held += 1
        self._by_app[app] = self._by_app.get(app, 0) + 1

    def _release(self, app: str) -> None:
        self._held -= 1
        if self._held == 0 and self._drained is not None:
            self._drained.set()
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
    async def exclusive(self) -> AsyncIterator[None]:
        """The model to itself (a live model switch): no new request gets a slot, the
        running ones finish, then the body runs; waiting requests keep their places
        and are served after it (beyond ``depth`` they are refused as always)."""
        self._paused = True
        try:
            if self._held:
                self._drained = asyncio.Event()
                await self._drained.wait()
            yield
        finally:
            self._paused = False
            self._drained = None
            self._wake()

    @asynccontextmanager
    async def hold(self, app: str = "", background: bool = False, budget: int = 0) -> AsyncIterator[float]:
        """Hold a slot for a request of at most ``budget`` tokens; yields the seconds
        spent waiting for it."""
        t0 = time.monotonic()
        if len(self._waiters) >= self.depth and not self._may_run(app):
            raise ResourceExhausted(
                f"the local model queue is full ({self.depth} waiting)", retry_after_s=self.retry_after_s(budget),
            )
        w = _Waiter(1 if background else 0, next(self._order), app, asyncio.get_running_loop().create_future(), budget)
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
        key = w.order
        self._running[key] = (held_from, budget)
        try:
            yield waited
        finally:
            del self._running[key]
            self._observe(time.monotonic() - held_from, budget)
            self._release(app)
