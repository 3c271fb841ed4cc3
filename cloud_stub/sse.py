"""A small server-sent-events reader: turns response lines into the ``data`` of each event.

Follows the WHATWG rules that matter for OpenAI-compatible streams: ``data:`` lines
(one optional space after the colon) accumulate until a blank line ends the event;
comments (``:``) and other fields (``event``, ``id``, ``retry``) are skipped; an event
left open when the stream ends is still delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

MAX_EVENT_BYTES = 1 << 20


class SSEError(Exception):
    """The stream breaks the SSE rules this reader enforces."""


async def iter_sse_data(lines: AsyncIterator[str], *, max_event_bytes: int = MAX_EVENT_BYTES) -> AsyncIterator[str]:
    """Yield the data of each event (its ``data`` lines joined by newlines)."""
    buf: list[str] = []
    size = 0
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if buf:
                yield "\n".join(buf)
                buf, size = [], 0
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field != "data":
            continue
        value = value.removeprefix(" ")
        size += len(value) + 1
        if size > max_event_bytes:
            raise SSEError(f"an event is larger than {max_event_bytes} bytes")
        buf.append(value)
    if buf:
        yield "\n".join(buf)
