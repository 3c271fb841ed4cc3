"""Originals back in place of placeholders, in a stream whose deltas may split them."""

from __future__ import annotations

from edge_agent.engine.text import partial_suffix


def restore_text(text: str, mapping: dict[str, str]) -> str:
    for placeholder, original in mapping.items():
        text = text.replace(placeholder, original)
    return text


class Restorer:
    """Feed deltas, get text with the originals back; ``flush`` at the end."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._mapping = mapping
        self._buf = ""

    def feed(self, delta: str) -> str:
        if not self._mapping:
            return delta
        self._buf = restore_text(self._buf + delta, self._mapping)
        hold = partial_suffix(self._buf, self._mapping)
        ready, self._buf = self._buf[: len(self._buf) - hold], self._buf[len(self._buf) - hold :]
        return ready

    def flush(self) -> str:
        out, self._buf = restore_text(self._buf, self._mapping), ""
        return out
