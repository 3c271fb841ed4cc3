"""Importers of real personal data into the context store.

``import_paths(store, paths)`` detects each path's format, streams its items in batches
of ``batch_size`` through ``ContextStore.put`` (each batch durable once written) and
returns an :class:`ImportReport`. Formats, by extension:

* ``.mbox`` (or any file starting with ``From ``): mail, see :mod:`.mbox`;
* ``.ics``/``.ical``: calendar events, see :mod:`.ics`;
* ``.vcf``/``.vcard``: contacts, see :mod:`.vcard`;
* ``.jsonl``/``.ndjson``: items in the export format, see :mod:`.jsonl`;
* a folder, or a ``.md``/``.markdown``/``.txt`` file: notes, see :mod:`.notes`.

Re-importing is idempotent: every importer gives items a stable ``(source, source_id)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import InvalidArgument
from edge_agent.context.api import SENSITIVITIES, NewItem
from edge_agent.context.importers.base import ErrorFn, ImportProgress, Meter, ProgressFn
from edge_agent.context.importers.ics import read_ics
from edge_agent.context.importers.jsonl import read_jsonl
from edge_agent.context.importers.mbox import read_mbox
from edge_agent.context.importers.notes import NOTE_SUFFIXES, read_notes
from edge_agent.context.importers.vcard import read_vcard
from edge_agent.context.limits import MAX_BATCH_ITEMS, validate_item

if TYPE_CHECKING:
    from edge_agent.context.store import ContextStore

__all__ = ["FORMATS", "ImportProgress", "ImportReport", "detect", "import_paths", "read_path"]

Reader = Callable[[Path, Meter, ErrorFn], Iterator[NewItem]]

FORMATS: dict[str, Reader] = {
    "mbox": read_mbox,
    "ics": read_ics,
    "vcard": read_vcard,
    "jsonl": read_jsonl,
    "notes": read_notes,
}
_SUFFIXES = {
    ".mbox": "mbox",
    ".ics": "ics",
    ".ical": "ics",
    ".vcf": "vcard",
    ".vcard": "vcard",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    **{suffix: "notes" for suffix in NOTE_SUFFIXES},
}
#: Most problems kept in a report (the count goes on).
MAX_REPORTED_ERRORS = 100


@dataclass
class ImportReport:
    """What an import did: items written, records skipped and why (the first few)."""

    items: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    by_path: dict[str, int] = field(default_factory=dict)

    def error(self, where: str, why: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {why}")


def detect(path: Path) -> str:
    """The format name of ``path``; raises ``InvalidArgument`` if it is not importable."""
    if path.is_dir():
        return "notes"
    if not path.is_file():
        raise InvalidArgument("path", f"{path}: no such file or folder")
    found = _SUFFIXES.get(path.suffix.lower())
    if found is not None:
        return found
    with path.open("rb") as stream:
        if stream.read(5) == b"From ":
            return "mbox"
    raise InvalidArgument(
        "path",
        f"{path}: unknown format (expected .mbox, .ics, .vcf, .jsonl, .md, .txt or a folder)",
    )


def read_path(
    path: Path,
    *,
    fmt: str | None = None,
    progress: ProgressFn | None = None,
    on_error: ErrorFn | None = None,
) -> Iterator[NewItem]:
    """The valid items of ``path``, streamed; bad records go to ``on_error``."""
    name = fmt or detect(path)
    if name not in FORMATS:
        raise InvalidArgument("format", f"must be one of {', '.join(FORMATS)}")
    report = on_error or (lambda _where, _why: None)
    total = path.stat().st_size if path.is_file() else None
    meter = Meter(str(path), total, progress)
    for number, item in enumerate(FORMATS[name](path, meter, report), start=1):
        try:
            validate_item(item, "item")
        except InvalidArgument as exc:
            label = item.source_id or item.title
            report(f"{path}: item {number}" + (f" ({label})" if label else ""), exc.message)
            continue
        meter.add_item()
        yield item
    meter.tick(force=True)


def import_paths(
    store: ContextStore,
    paths: Sequence[str | Path],
    *,
    fmt: str | None = None,
    batch_size: int = 500,
    progress: ProgressFn | None = None,
    sensitivity: str | None = None,
    on_batch: Callable[[list[str]], None] | None = None,
) -> ImportReport:
    """Import every path into ``store``; each batch is durable once written.

    ``sensitivity`` overrides the label importers choose (e.g. ``secret`` for a diary).
    ``on_batch`` gets the ids of each batch once it is on disk (to acknowledge progress).
    Paths are checked before anything is written.
    """
    if not 1 <= batch_size <= MAX_BATCH_ITEMS:
        raise InvalidArgument("batch_size", f"must be between 1 and {MAX_BATCH_ITEMS}")
    if sensitivity is not None and sensitivity not in SENSITIVITIES:
        raise InvalidArgument("sensitivity", f"must be one of {', '.join(SENSITIVITIES)}")
    resolved = [Path(p).expanduser() for p in paths]
    formats = [fmt or detect(path) for path in resolved]
    report = ImportReport()
    for path, name in zip(resolved, formats):
        batch: list[NewItem] = []
        written = 0
        for item in read_path(path, fmt=name, progress=progress, on_error=report.error):
            batch.append(item if sensitivity is None else replace(item, sensitivity=sensitivity))
            if len(batch) >= batch_size:
                written += _flush(store, batch, on_batch)
        if batch:
            written += _flush(store, batch, on_batch)
        report.items += written
        report.by_path[str(path)] = written
    return report


def _flush(
    store: ContextStore, batch: list[NewItem], on_batch: Callable[[list[str]], None] | None
) -> int:
    """Write ``batch`` durably, empty it, acknowledge it; return how many were written."""
    ids = store.put(batch)
    batch.clear()
    if on_batch is not None:
        on_batch(ids)
    return len(ids)
