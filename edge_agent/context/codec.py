"""Conversions between items, database rows and JSON records.

Times are stored as UTC epoch seconds and returned as timezone-aware UTC datetimes; a
naive datetime given to the store is taken as UTC. Lists (participants, tags) are stored
newline-joined; tags are normalised to stripped lower case without duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from edge_agent.context.api import Item, NewItem
from edge_agent.context.limits import to_epoch

#: Columns selected to build an :class:`Item`, in order.
ITEM_COLUMNS = (
    "id",
    "kind",
    "body",
    "title",
    "source",
    "source_id",
    "participants",
    "tags",
    "sensitivity",
    "created_at",
    "starts_at",
    "ends_at",
    "expires_at",
)
ITEM_SELECT = ", ".join(f"i.{name}" for name in ITEM_COLUMNS)


def norm_participants(values: Sequence[str]) -> tuple[str, ...]:
    """Stripped, one-line participant names in order, without duplicates."""
    return _dedupe(" ".join(value.split()) for value in values)


def norm_tags(values: Sequence[str]) -> tuple[str, ...]:
    """Stripped, one-line, lower-case tags in order, without duplicates."""
    return _dedupe(" ".join(value.split()).lower() for value in values)


def _dedupe(values: Any) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return tuple(seen)


def from_epoch(value: float | None) -> datetime | None:
    """An aware UTC datetime, or None."""
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def epoch_or_none(value: datetime | None) -> float | None:
    """Epoch seconds of ``value``, or None."""
    return None if value is None else to_epoch(value)


def split_list(value: str) -> tuple[str, ...]:
    """Undo the newline-joining of a stored list."""
    return tuple(value.split("\n")) if value else ()


def row_to_item(row: Sequence[Any]) -> Item:
    """An :class:`Item` from a row selected with ``ITEM_SELECT``."""
    created = from_epoch(row[9])
    assert created is not None
    return Item(
        id=row[0],
        kind=row[1],
        body=row[2],
        title=row[3],
        source=row[4],
        source_id=row[5],
        participants=split_list(row[6]),
        tags=split_list(row[7]),
        sensitivity=row[8],
        created_at=created,
        starts_at=from_epoch(row[10]),
        ends_at=from_epoch(row[11]),
        expires_at=from_epoch(row[12]),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def item_to_record(item: Item) -> dict[str, Any]:
    """A JSON-ready dict of ``item`` (the export format, re-importable as JSON lines)."""
    return {
        "id": item.id,
        "kind": item.kind,
        "title": item.title,
        "body": item.body,
        "source": item.source,
        "source_id": item.source_id,
        "participants": list(item.participants),
        "tags": list(item.tags),
        "sensitivity": item.sensitivity,
        "created_at": _iso(item.created_at),
        "starts_at": _iso(item.starts_at),
        "ends_at": _iso(item.ends_at),
        "expires_at": _iso(item.expires_at),
    }


def parse_time(value: Any, field: str) -> datetime | None:
    """An ISO 8601 string (or epoch number) as an aware datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{field}: expected an ISO 8601 time")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{field}: expected an ISO 8601 time, got {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def record_to_new_item(record: Mapping[str, Any]) -> NewItem:
    """A :class:`NewItem` from a JSON record (export format or a hand-written subset).

    An exported item without a ``source_id`` gets its old ``id`` as ``source_id`` so that
    importing the same export twice does not duplicate it. Raises ``ValueError`` naming
    the field on a malformed record (``TypeError`` for a value of the wrong type).
    """
    if not isinstance(record, Mapping):
        raise TypeError("expected a JSON object")

    def text_field(name: str, default: str = "") -> str:
        value = record.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected a string")
        return value

    def list_field(name: str) -> tuple[str, ...]:
        value = record.get(name) or []
        if isinstance(value, str) or not isinstance(value, list):
            raise TypeError(f"{name}: expected a list of strings")
        if not all(isinstance(entry, str) for entry in value):
            raise TypeError(f"{name}: expected a list of strings")
        return tuple(value)

    source_id = text_field("source_id") or text_field("id")
    return NewItem(
        kind=text_field("kind", "note"),
        body=text_field("body"),
        title=text_field("title"),
        source=text_field("source", "jsonl") or "jsonl",
        source_id=source_id,
        participants=list_field("participants"),
        tags=list_field("tags"),
        sensitivity=text_field("sensitivity", "personal"),
        created_at=parse_time(record.get("created_at"), "created_at"),
        starts_at=parse_time(record.get("starts_at"), "starts_at"),
        ends_at=parse_time(record.get("ends_at"), "ends_at"),
        expires_at=parse_time(record.get("expires_at"), "expires_at"),
    )
