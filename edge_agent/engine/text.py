"""Turning token bytes into streamed text: UTF-8-safe deltas and stop sequences.

``TextStream`` is fed the bytes of each new token and returns the text that may be
sent now: bytes of an unfinished UTF-8 character stay buffered, and text that could be
the start of a stop sequence is held back until it is known not to be one. When a stop
sequence appears, the text before it is released and the stream reports it stopped.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable


def partial_suffix(text: str, keys: Iterable[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``keys``
    (text that must be held back until it is known whether a key follows)."""
    best = 0
    for key in keys:
        for n in range(min(len(key) - 1, len(text)), best, -1):
            if text.endswith(key[:n]):
                best = n
                break
    return best


class TextStream:
    """Incremental detokenized text with stop-sequence cutting."""

    def __init__(self, stop: tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._hold = max((len(s) for s in self._stop), default=0)
        self._pending = ""  # decoded but not yet released
        self.stopped = False
        self.text = ""  # everything released so far

    def _held_back(self, text: str) -> int:
        return partial_suffix(text, self._stop)

    def feed(self, data: bytes) -> str:
        """Add token bytes; return the text that can be released."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(data)
        return self._release(final=False)

    def _release(self, final: bool) -> str:
        pending = self._pending
        if self._stop:
            cut = -1
            for s in self._stop:
                i = pending.find(s)
                if i >= 0 and (cut < 0 or i < cut):
                    cut = i
            if cut >= 0:
                self.stopped = True
                self._pending = ""
                out = pending[:cut]
                self.text += out
                return out
            keep = 0 if final else self._held_back(pending)
        else:
            keep = 0
        out = pending[: len(pending) - keep]
        self._pending = pending[len(pending) - keep :]
        self.text += out
        return out

    def flush(self) -> str:
        """End of generation: release whatever is held (unfinished bytes become U+FFFD)."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(b"", final=True)
        return self._release(final=True)
