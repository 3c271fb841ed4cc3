"""llama.cpp's log, routed into Python: kept in a ring, forwarded to ``logging``.

llama.cpp reports what it decided while loading a model (which buffer type holds the
weights: ``AMX``, ``CPU_REPACK`` or plain ``CPU``) only in its log. ``install`` replaces
llama-cpp-python's printing callback with one that keeps the recent lines (for
``buffer_types``) and forwards warnings and errors to the ``llama.cpp`` logger, so the
daemon's stderr carries no unformatted native chatter.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("llama.cpp")

# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
_LEVELS = {3: logging.WARNING, 4: logging.ERROR}
_lines: deque[str] = deque(maxlen=2000)
_partial: list[str] = []
_lock = threading.Lock()
_total = [0]  # lines seen since start
_callback: Any = None
_quiet: set[int] = set()  # threads whose llama.cpp lines are kept but not forwarded
_BUF_RE = re.compile(r"load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB")


def install() -> None:
    """Route llama.cpp's log here (idempotent)."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp as lc

    @lc.llama_log_callback  # type: ignore[untyped-decorator]
    def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        s = text.decode("utf-8", "replace")
        with _lock:
            _partial.append(s)
            if not s.endswith("\n"):
                return
            line = "".join(_partial).rstrip("\n")
            _partial.clear()
            _lines.append(line)
            _total[0] += 1
        if level in _LEVELS and threading.get_ident() not in _quiet:
            log.log(_LEVELS[level], "%s", line)

    _callback = _on_log  # keep a reference: llama.cpp holds only the pointer
    lc.llama_log_set(_on_log, ctypes.c_void_p(0))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep this thread's llama.cpp lines in the ring without forwarding them to
    ``logging`` (the caller reports a failure itself, in one line: ``failure``)."""
    me = threading.get_ident()
    _quiet.add(me)
    try:
        yield
    finally:
        _quiet.discard(me)


def failure(lines: list[str]) -> str:
    """The first line of ``lines`` that says what failed ("" when none does)."""
    for line in lines:
        if re.search(r"fail|error|invalid|corrupt", line, re.IGNORECASE):
            return line.strip()[:200]
    return ""


def mark() -> int:
    """A position in the log; the lines written after it are ``since(mark())``."""
    with _lock:
        return _total[0]


def since(position: int) -> list[str]:
    """Log lines written after ``position`` (as many as the ring still holds)."""
    with _lock:
        n = min(_total[0] - position, len(_lines))
        return list(_lines)[len(_lines) - n :] if n > 0 else []


_KV_RE = re.compile(r"KV buffer size =\s+([\d.]+) MiB")


def kv_cache_mib(lines: list[str]) -> float:
    """MiB of the KV cache(s) a context allocated (both caches of a sliding-window
    model), from context-creation log lines."""
    return sum(float(m.group(1)) for line in lines if (m := _KV_RE.search(line)))


def buffer_types(lines: list[str]) -> dict[str, float]:
    """``{buffer type: MiB}`` of the model weights, from model-load log lines."""
    out: dict[str, float] = {}
    for line in lines:
        m = _BUF_RE.search(line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out
