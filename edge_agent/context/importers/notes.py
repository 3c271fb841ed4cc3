"""A folder of Markdown or plain-text notes (searched recursively), or a single note file.

Each ``.md``/``.markdown``/``.txt`` file is one ``note``: its title is the front matter's
``title``, else its first Markdown heading, else the file name; ``tags`` come from front
matter (``tags: [a, b]`` or ``tags: a, b``); its time is the file's modification time.
Hidden files and folders (``.git``, ``.obsidian``) are skipped. The source is the folder,
the source id the path inside it, so re-importing a folder updates notes in place.
Files are read one at a time and at most ``MAX_BODY_BYTES`` of each is kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.context.api import NewItem
from edge_agent.context.importers.base import ErrorFn, Meter, clip_body, clip_tags, clip_title
from edge_agent.context.limits import MAX_BODY_BYTES

NOTE_SUFFIXES = (".md", ".markdown", ".txt")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def note_files(root: Path) -> Iterator[Path]:
    """Note files under ``root`` in a stable order, hidden entries skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(NOTE_SUFFIXES):
                yield Path(folder) / name


def read_notes(root: Path, meter: Meter, on_error: ErrorFn) -> Iterator[NewItem]:
    """Notes of the folder (or single file) ``root``."""
    if root.is_file():
        files: Iterator[Path] = iter([root])
        base = root.parent
    else:
        files, base = note_files(root), root
    source = f"notes:{base.resolve()}"
    for file in files:
        try:
            with file.open("rb") as stream:
                data = stream.read(MAX_BODY_BYTES + 1)
            mtime = file.stat().st_mtime
        except OSError as exc:
            on_error(str(file), exc.strerror or str(exc))
            continue
        meter.add_bytes(len(data))
        text = data.decode("utf-8", errors="replace")
        item = parse_note(text, file.stem)
        if item is None:
            on_error(str(file), "empty note")
            continue
        title, body, tags = item
        yield NewItem(
            kind="note",
            title=title,
            body=clip_body(body),
            source=source,
            source_id=file.resolve().relative_to(base.resolve()).as_posix(),
            tags=tags,
            created_at=datetime.fromtimestamp(mtime, tz=UTC),
        )


def parse_note(text: str, fallback_title: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(title, body, tags)`` of a note's text, or None when it has no text."""
    text = text.lstrip("\ufeff")
    meta: dict[str, str] = {}
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            for line in text[3:end].splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    meta[key.strip().lower()] = value.strip()
            text = text[end + 4 :].lstrip("-").lstrip("\n")
    body = text.strip()
    if not body:
        return None
    title = meta.get("title", "").strip("\"'")
    if not title:
        heading = _HEADING.search(body)
        title = heading.group(1) if heading else fallback_title
    raw_tags = meta.get("tags", "").strip("[]")
    tags = [tag.strip().strip("\"'").lstrip("#") for tag in raw_tags.split(",")]
    return clip_title(title), body, clip_tags(tags)
