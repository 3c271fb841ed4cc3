"""Repeated log lines collapsed: a flood of one message cannot fill the disk.

``RepeatFilter`` lets the first ``burst`` records of one kind through in each
``window_s`` and drops the rest; a kind is the logger, the level and the message
*template* (``"accept failed: %s"`` whatever its arguments), so a flood that differs
only in a peer address or a count is still one kind. Records below WARNING get a much
larger budget (``info_burst``): the daemon writes one INFO line per request, and those
must keep coming under any normal load (100 a second by default). When a kind's window has passed,
a line says how many of its records were dropped (``... suppressed N repeats of
"<template>" in the last Ts``), so nothing is hidden without a trace. The summary goes
out with the next record that reaches the filter (or at the latest when
``flush`` is called, e.g. at shutdown).

Install it on a handler (``RepeatFilter.install(handler)``), not a logger, so that it
sees every record the handler writes, whichever logger it came from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

Key = tuple[str, int, str]


class RepeatFilter(logging.Filter):
    """Drops repeats of one kind beyond ``burst`` per ``window_s`` (see the module doc)."""

    def __init__(self, burst: int = 10, info_burst: int = 1000, window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.info_burst = info_burst
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Key, tuple[float, int, int]] = {}  # kind -> (start, seen, dropped)
        self._handler: logging.Handler | None = None
        self._next_sweep = 0.0

    @classmethod
    def install(cls, handler: logging.Handler, **kwargs: float) -> RepeatFilter:
        f = cls(**kwargs)  # type: ignore[arg-type]
        f._handler = handler
        handler.addFilter(f)
        return f

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeat_summary", False):
            return True
        now = self._clock()
        key: Key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            expired = self._expired(now)
            start, seen, dropped = self._windows.get(key, (now, 0, 0))
            if now - start >= self.window_s:
                if dropped:
                    expired.append((key, dropped, now - start))
                start, seen, dropped = now, 0, 0
            seen += 1
            keep = seen <= (self.burst if record.levelno >= logging.WARNING else self.info_burst)
            self._windows[key] = (start, seen, dropped + (not keep))
        self._emit(expired)
        return keep

    def _expired(self, now: float) -> list[tuple[Key, int, float]]:
        """Kinds whose window has passed with drops (summaries to write); called locked."""
        if now < self._next_sweep:
            return []
        self._next_sweep = now + min(1.0, self.window_s)
        out = []
        for key, (start, _seen, dropped) in list(self._windows.items()):
            if now - start >= self.window_s:
                if dropped:
                    out.append((key, dropped, now - start))
                del self._windows[key]
        return out

    def flush(self) -> None:
        """Write the summaries of every kind with drops, whatever its window."""
        with self._lock:
            pending = [(k, d, self._clock() - s) for k, (s, _n, d) in self._windows.items() if d]
            self._windows.clear()
        self._emit(pending)

    def _emit(self, summaries: list[tuple[Key, int, float]]) -> None:
        if self._handler is None:
            return
        for (name, level, template), dropped, span in summaries:
            rec = logging.LogRecord(name, level, __file__, 0, "suppressed %d repeats of %r in the last %.0f s",
                                    (dropped, template[:200], span), None)
            rec.repeat_summary = True
            self._handler.handle(rec)
