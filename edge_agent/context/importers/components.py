"""Splitting iCalendar/vCard text into components without reading it all.

Both formats are "content lines" between ``BEGIN:NAME`` and ``END:NAME``. The splitter
yields the text of each wanted component as it closes, so a calendar or address book of
any size is handled one event or card at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator


def components(lines: Iterable[bytes], wanted: Collection[str]) -> Iterator[tuple[str, str]]:
    """``(NAME, text)`` of each outermost component named in ``wanted`` (upper case)."""
    capture: list[str] | None = None
    name = ""
    depth = 0
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        key = line.strip().upper()
        if capture is None:
            if key.startswith("BEGIN:") and key[6:] in wanted:
                capture, name, depth = [line], key[6:], 0
            continue
        capture.append(line)
        if key == f"BEGIN:{name}":
            depth += 1
        elif key == f"END:{name}":
            if depth == 0:
                yield name, "\r\n".join(capture) + "\r\n"
                capture = None
            else:
                depth -= 1
