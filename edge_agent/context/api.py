"""The personal-context store contract used by the request pipeline and the servers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KINDS = ("email", "message", "note", "event", "contact", "preference", "document")
SENSITIVITIES = ("public", "personal", "secret")


@dataclass(frozen=True)
class NewItem:
    """An item to store. ``(source, source_id)`` makes re-imports idempotent."""

    kind: str
    body: str
    title: str = ""
    source: str = "api"
    source_id: str = ""  # empty: a fresh id is assigned, no dedup
    participants: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sensitivity: str = "personal"
    created_at: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Item:
    """A stored item."""

    id: str
    kind: str
    body: str
    title: str
    source: str
    source_id: str
    participants: tuple[str, ...]
    tags: tuple[str, ...]
    sensitivity: str
    created_at: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Hit:
    """A search result."""

    item: Item
    score: float  # higher is better


@dataclass(frozen=True)
class Retrieved:
    """Context selected for a prompt within a token budget."""

    text: str  # compact formatted block to put into the prompt ("" when nothing)
    items: tuple[Item, ...]
    tokens: int
