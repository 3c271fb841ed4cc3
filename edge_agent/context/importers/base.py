"""Shared pieces of the importers: progress reports, byte-counting line reading, limits.

Every importer is a generator of :class:`NewItem` that reads its input line by line (or
file by file), so memory stays bounded by the largest single record, never the input.
Records that cannot be used are reported through ``on_error(where, why)`` and skipped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from edge_agent.context.limits import (
    MAX_BODY_BYTES,
    MAX_NAME_CHARS,
    MAX_PARTICIPANTS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
)


@dataclass(frozen=True)
class ImportProgress:
    """How far the import of one path has got."""

    path: str
    items: int
    bytes_done: int
    bytes_total: int | None  # None when unknown up front


ProgressFn = Callable[[ImportProgress], None]
ErrorFn = Callable[[str, str], None]

#: Least time between two progress reports of one path, in seconds.
PROGRESS_EVERY_S = 0.5
TRUNCATED = "\n[truncated]"


class Meter:
    """Counts bytes and items of one path and reports progress at most twice a second."""

    def __init__(self, path: str, total: int | None, progress: ProgressFn | None) -> None:
        self.path = path
        self.total = total
        self.items = 0
        self.bytes_done = 0
        self._progress = progress
        self._last = 0.0

    def add_bytes(self, count: int) -> None:
        self.bytes_done += count

    def add_item(self) -> None:
        self.items += 1
        self.tick()

    def tick(self, *, force: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._progress(ImportProgress(self.path, self.items, self.bytes_done, self.total))


def lines(stream: BinaryIO, meter: Meter) -> Iterator[bytes]:
    """The lines of ``stream`` (with their endings), counted into ``meter``."""
    for line in stream:
        meter.add_bytes(len(line))
        yield line


def clip_body(text: str) -> str:
    """``text`` cut to fit ``MAX_BODY_BYTES`` in UTF-8, marked when cut."""
    data = text.encode("utf-8")
    if len(data) <= MAX_BODY_BYTES:
        return text
    room = MAX_BODY_BYTES - len(TRUNCATED.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + TRUNCATED


def clip_title(text: str) -> str:
    """A one-line title within ``MAX_TITLE_CHARS``."""
    return " ".join(text.split())[:MAX_TITLE_CHARS]


def clip_names(values: list[str]) -> tuple[str, ...]:
    """Non-empty one-line names within the participant limits."""
    names = [" ".join(v.split())[:MAX_NAME_CHARS] for v in values]
    return tuple(name for name in names if name)[:MAX_PARTICIPANTS]


def clip_tags(values: list[str]) -> tuple[str, ...]:
    """Non-empty one-line tags within the tag limits."""
    tags = [" ".join(v.split())[:MAX_TAG_CHARS] for v in values]
    return tuple(tag for tag in tags if tag)[:MAX_TAGS]


def digest(*parts: str) -> str:
    """A stable short id from ``parts`` (for records without an id of their own)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", errors="replace"))
        hasher.update(b"\0")
    return hasher.hexdigest()[:32]
