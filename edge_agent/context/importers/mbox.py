"""mbox mail: one ``email`` item per message, read message by message.

The file is split on ``From `` separator lines (``>From`` quoting of mboxrd/mboxo is
undone) and each message is parsed with the stdlib ``email`` package (``policy.default``),
so RFC 2047 encoded headers, transfer encodings, charsets and multipart bodies are decoded.
The text is the ``text/plain`` part, else the ``text/html`` part with tags stripped;
attachment names are listed after it. The source id is the ``Message-ID`` (a hash of the
headers and text when it is missing), so the same mail imported twice is stored once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

from edge_agent.context.api import NewItem
from edge_agent.context.importers.base import (
    ErrorFn,
    Meter,
    clip_body,
    clip_names,
    clip_title,
    digest,
    lines,
)

_FROM_QUOTED = re.compile(rb"^>+From ")
_PARSER = BytesParser(policy=policy.default)


def split_mbox(path: Path, meter: Meter) -> Iterator[bytes]:
    """The raw bytes of each message in the mbox file at ``path``."""
    with path.open("rb") as stream:
        current: list[bytes] | None = None
        for line in lines(stream, meter):
            if line.startswith(b"From "):
                if current:
                    yield b"".join(current)
                current = []
                continue
            if current is None:  # text before the first separator: not mbox, skip
                continue
            if _FROM_QUOTED.match(line):
                line = line[1:]
            current.append(line)
        if current:
            yield b"".join(current)


def read_mbox(path: Path, meter: Meter, on_error: ErrorFn) -> Iterator[NewItem]:
    """Emails of the mbox file at ``path``."""
    source = f"mbox:{path.resolve()}"
    for number, raw in enumerate(split_mbox(path, meter), start=1):
        try:
            message = _PARSER.parsebytes(raw)
            assert isinstance(message, EmailMessage)
            item = message_to_item(message, source)
        except Exception as exc:  # noqa: BLE001 - one broken mail must not stop the import
            on_error(f"{path}: message {number}", f"{type(exc).__name__}: {exc}")
            continue
        yield item


def message_to_item(message: EmailMessage, source: str) -> NewItem:
    """An ``email`` item from a parsed message."""
    subject = _header(message, "subject")
    senders = _addresses(message, "from")
    participants = senders + _addresses(message, "to") + _addresses(message, "cc")
    body, attachments = _text(message)
    if attachments:
        body = f"{body}\n\nAttachments: {', '.join(attachments)}".strip()
    if not body.strip():
        body = subject or "(no text)"
    sent = _date(message)
    message_id = _header(message, "message-id").strip()
    source_id = message_id or digest(_header(message, "date"), ",".join(senders), subject, body)
    return NewItem(
        kind="email",
        title=clip_title(subject),
        body=clip_body(body),
        source=source,
        source_id=source_id[:1000],
        participants=clip_names(participants),
        created_at=sent,
    )


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - malformed header: treat as absent
        return ""
    return "" if value is None else str(value)


def _addresses(message: EmailMessage, name: str) -> list[str]:
    try:
        values = message.get_all(name) or []
        pairs = getaddresses([str(value) for value in values])
    except Exception:  # noqa: BLE001
        return []
    found = []
    for display, address in pairs:
        if display and address:
            found.append(f"{display} <{address}>")
        elif display or address:
            found.append(display or address)
    return found


def _date(message: EmailMessage) -> datetime | None:
    value = _header(message, "date")
    if not value:
        return None
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)


def _text(message: EmailMessage) -> tuple[str, list[str]]:
    """The readable text of ``message`` and the names of its attachments."""
    attachments = []
    if message.is_multipart():
        for part in message.iter_attachments():
            name = part.get_filename()
            if name:
                attachments.append(str(name))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return "", attachments
    content = _content(body)  # type: ignore[arg-type]
    if body.get_content_subtype() == "html":
        content = html_to_text(content)
    return content.strip(), attachments


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, bad encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail body."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()
