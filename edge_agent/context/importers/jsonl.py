"""JSON lines: one item per line, in the export format (any subset of its fields).

The export of one store imports into another as the same items (``source`` and
``source_id`` are kept; an item exported without a ``source_id`` uses its old ``id``).
Blank lines are ignored; a malformed line is reported with its line number and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from edge_agent.context.api import NewItem
from edge_agent.context.codec import record_to_new_item
from edge_agent.context.importers.base import ErrorFn, Meter, clip_body, lines


def read_jsonl(path: Path, meter: Meter, on_error: ErrorFn) -> Iterator[NewItem]:
    """Items of the JSON lines file at ``path``."""
    with path.open("rb") as stream:
        for number, raw in enumerate(lines(stream, meter), start=1):
            if not raw.strip():
                continue
            try:
                item = record_to_new_item(json.loads(raw))
            except (ValueError, TypeError) as exc:  # bad JSON, bad UTF-8, bad fields
                on_error(f"{path}:{number}", str(exc).splitlines()[0])
                continue
            yield replace(item, body=clip_body(item.body))
