"""Documented limits of the personal-context store and the validation that enforces them.

Every rule names the offending field with a path such as ``items[3].body`` so the gRPC
layer can turn :class:`common.errors.InvalidArgument` into a precise
``INVALID_ARGUMENT`` status without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from common.errors import InvalidArgument, OutOfRange
from edge_agent.context.api import KINDS, SENSITIVITIES, NewItem

#: Largest body accepted, in UTF-8 bytes (1 MiB). Importers truncate longer texts.
MAX_BODY_BYTES = 1024 * 1024
#: Longest title, in characters.
MAX_TITLE_CHARS = 1_000
#: Longest ``source`` / ``source_id``, in characters.
MAX_SOURCE_CHARS = 200
MAX_SOURCE_ID_CHARS = 1_000
#: At most this many participants per item, each at most ``MAX_NAME_CHARS`` long.
MAX_PARTICIPANTS = 500
MAX_NAME_CHARS = 320
#: At most this many tags per item, each at most ``MAX_TAG_CHARS`` long.
MAX_TAGS = 32
MAX_TAG_CHARS = 64
#: Largest batch accepted by one ``put`` call.
MAX_BATCH_ITEMS = 10_000
#: Longest search query, in characters, and most words used from it.
MAX_QUERY_CHARS = 2_000
MAX_QUERY_TERMS = 32
#: Largest ``limit`` of a search.
MAX_SEARCH_LIMIT = 1_000
#: Most ids accepted by one ``delete`` call.
MAX_DELETE_IDS = 10_000


def validate_items(items: Sequence[NewItem]) -> None:
    """Check a whole batch before anything is written; raise on the first bad field."""
    if len(items) > MAX_BATCH_ITEMS:
        raise OutOfRange("items", f"at most {MAX_BATCH_ITEMS} items per batch")
    for index, item in enumerate(items):
        validate_item(item, f"items[{index}]")


def validate_item(item: NewItem, path: str) -> None:
    """Check one item; ``path`` prefixes the field names in errors."""
    if item.kind not in KINDS:
        raise InvalidArgument(f"{path}.kind", f"must be one of {', '.join(KINDS)}")
    if item.sensitivity not in SENSITIVITIES:
        raise InvalidArgument(
            f"{path}.sensitivity", f"must be one of {', '.join(SENSITIVITIES)}"
        )
    if not isinstance(item.body, str) or not item.body.strip():
        raise InvalidArgument(f"{path}.body", "must not be empty")
    if len(item.body) > MAX_BODY_BYTES or len(item.body.encode("utf-8")) > MAX_BODY_BYTES:
        raise OutOfRange(f"{path}.body", f"must be at most {MAX_BODY_BYTES} bytes")
    _check_text(item.title, f"{path}.title", MAX_TITLE_CHARS)
    if not item.source.strip():
        raise InvalidArgument(f"{path}.source", "must not be empty")
    _check_text(item.source, f"{path}.source", MAX_SOURCE_CHARS)
    _check_text(item.source_id, f"{path}.source_id", MAX_SOURCE_ID_CHARS)
    _check_list(item.participants, f"{path}.participants", MAX_PARTICIPANTS, MAX_NAME_CHARS)
    _check_list(item.tags, f"{path}.tags", MAX_TAGS, MAX_TAG_CHARS)
    for name in ("created_at", "starts_at", "ends_at", "expires_at"):
        value = getattr(item, name)
        if value is not None and not isinstance(value, datetime):
            raise InvalidArgument(f"{path}.{name}", "must be a datetime")
    if item.starts_at is not None and item.ends_at is not None:
        if to_epoch(item.ends_at) < to_epoch(item.starts_at):
            raise InvalidArgument(f"{path}.ends_at", "must not be before starts_at")
    elif item.ends_at is not None:
        raise InvalidArgument(f"{path}.starts_at", "is required when ends_at is set")


def validate_range(since: datetime | None, until: datetime | None) -> None:
    """A search time range must not be inverted."""
    if since is not None and until is not None and to_epoch(until) < to_epoch(since):
        raise InvalidArgument("until", "must not be before since")


def validate_tags(tags: Sequence[str]) -> None:
    """Tag filters are a list of strings."""
    if isinstance(tags, str):
        raise InvalidArgument("tags", "must be a list, not a string")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise InvalidArgument(f"tags[{index}]", "must be a string")


def validate_query(query: str) -> None:
    """A query is free text of bounded length (its syntax never matters)."""
    if not isinstance(query, str):
        raise InvalidArgument("query", "must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise OutOfRange("query", f"must be at most {MAX_QUERY_CHARS} characters")


def validate_limit(limit: int, field: str = "limit") -> None:
    """A result limit is between 1 and ``MAX_SEARCH_LIMIT``."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise OutOfRange(field, f"must be between 1 and {MAX_SEARCH_LIMIT}")


def validate_choices(values: Sequence[str], allowed: Sequence[str], field: str) -> None:
    """Every filter value must be a known one (a typo must not silently match nothing)."""
    if isinstance(values, str):
        raise InvalidArgument(field, "must be a list, not a string")
    for index, value in enumerate(values):
        if value not in allowed:
            raise InvalidArgument(f"{field}[{index}]", f"must be one of {', '.join(allowed)}")


def _check_text(value: str, field: str, max_chars: int) -> None:
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if len(value) > max_chars:
        raise OutOfRange(field, f"must be at most {max_chars} characters")


def _check_list(values: Sequence[str], field: str, max_len: int, max_chars: int) -> None:
    if isinstance(values, str):
        raise InvalidArgument(field, "must be a list of strings, not a string")
    if len(values) > max_len:
        raise OutOfRange(field, f"must have at most {max_len} entries")
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"{field}[{index}]", "must be a non-empty string")
        if len(value) > max_chars:
            raise OutOfRange(f"{field}[{index}]", f"must be at most {max_chars} characters")


def to_epoch(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        return (value - _EPOCH_NAIVE).total_seconds()
    return value.timestamp()


_EPOCH_NAIVE = datetime(1970, 1, 1)
