"""Thread count chosen from step timings, so a busy device slows decoding gracefully.

On a quiet machine every core helps a decode step. When another process takes a core,
llama.cpp's threads wait for each other at every barrier of the graph while one of them
is descheduled, and a step can take several times as long as the lost core explains;
fewer threads then run faster. ``ThreadTuner`` watches the decoder's step times
(divided by the step's relative cost, so long and short verification steps compare)
for the thread count in use. While they stay near the best seen, nothing changes; once
they degrade by ``degraded`` it tries each other count for ``probe_steps`` steps and
keeps the fastest, and it looks again every ``recheck_every`` steps while degraded, so
the full count comes back when the machine is quiet again.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Sequence


def thread_choices(n: int) -> list[int]:
    """Candidate thread counts for ``n`` configured threads, largest first."""
    return sorted({n, max(1, n // 2), 1}, reverse=True)


class ThreadTuner:
    """Switches between thread counts by measured speed; ``apply`` sets the count."""

    def __init__(
        self,
        apply: Callable[[int], None],
        choices: Sequence[int],
        *,
        window: int = 4,
        degraded: float = 1.3,
        probe_steps: int = 4,
        recheck_every: int = 96,
    ) -> None:
        if not choices:
            raise ValueError("no thread counts to choose from")
        self._apply = apply
        self.choices = list(choices)
        self.current = self.choices[0]
        self.window = window
        self.degraded = degraded
        self.probe_steps = probe_steps
        self.recheck_every = recheck_every
        self._recent: dict[int, deque[float]] = {c: deque(maxlen=window) for c in self.choices}
        self._best: dict[int, float] = {}
        self._queue: list[int] = []  # counts still to probe in this round
        self._probe_left = 0
        self._since_check = recheck_every  # the first slowdown is looked at at once
        self.switches = 0

    def observe(self, unit_seconds: float) -> None:
        """One step took ``unit_seconds`` per plain-step unit of work."""
        if unit_seconds <= 0:
            return
        recent = self._recent[self.current]
        recent.append(unit_seconds)
        self._since_check += 1
        if self._probe_left:
            self._probe_left -= 1
            if self._probe_left == 0:
                self._next_probe()
            return
        if len(recent) < self.window:
            return
        med = statistics.median(recent)
        best = self._best.get(self.current)
        if best is None or med < best:
            self._best[self.current] = med
            best = med
        slow = med > best * self.degraded
        off_top = self.current != self.choices[0]
        if (slow or off_top) and self._since_check >= self.recheck_every:
            self._start_round()

    def _start_round(self) -> None:
        self._since_check = 0
        self._queue = [c for c in self.choices if c != self.current]
        self._next_probe()

    def _next_probe(self) -> None:
        if self._queue:
            count = self._queue.pop(0)
            self._recent[count].clear()
            self._set(count)
            self._probe_left = self.probe_steps
            return
        # round over: keep the count whose fresh samples are fastest
        scored = {
            c: statistics.median(list(d)[-self.probe_steps :]) for c, d in self._recent.items() if d
        }
        self._set(min(scored, key=lambda c: scored[c]))
        self._recent[self.current].clear()

    def _set(self, count: int) -> None:
        if count != self.current:
            self.current = count
            self.switches += 1
            self._apply(count)

    def state(self) -> dict[str, object]:
        return {
            "threads": self.current,
            "choices": self.choices,
            "switches": self.switches,
            "best_unit_ms": {c: round(v * 1000, 2) for c, v in self._best.items()},
        }
