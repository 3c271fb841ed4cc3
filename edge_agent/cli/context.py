"""``edge-agent context``: import, search, forget, export and inspect personal context.

These commands open the database file directly (SQLite in WAL mode lets them run while
the daemon is serving). ``--db`` defaults to the configured database path. Errors go to stderr with exit status 1
(2 for usage errors such as a missing selector).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import DomainError
from edge_agent.config import Config
from edge_agent.context.api import KINDS, SENSITIVITIES
from edge_agent.context.importers import FORMATS, ImportProgress, detect, import_paths
from edge_agent.context.store import ContextStore

PROG = "edge-agent context"


def register(subparsers: Any) -> None:
    """Add the ``context`` command and its subcommands to the main CLI."""
    context = subparsers.add_parser("context", help="manage the personal-context store")
    sub = context.add_subparsers(dest="context_command", required=True, metavar="COMMAND")

    imp = sub.add_parser("import", help="import mail, calendars, contacts, notes, JSON lines")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to import")
    imp.add_argument("--format", choices=sorted(FORMATS), help="skip format detection")
    imp.add_argument("--sensitivity", choices=SENSITIVITIES, help="label every item")
    imp.add_argument("--batch-size", type=int, default=500, help="items per database transaction (default 500)")
    imp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _db_arg(imp)
    imp.set_defaults(func=_guard(_cmd_import))

    search = sub.add_parser("search", help="full-text search with filters")
    search.add_argument("query", help="words to look for (full-text)")
    search.add_argument("--kind", action="append", default=[], choices=KINDS, help="only items of this kind (repeatable)")
    search.add_argument("--tag", action="append", default=[], help="only items with this tag (repeatable)")
    search.add_argument("--sensitivity", action="append", default=[], choices=SENSITIVITIES, help="only items with this label (repeatable)")
    search.add_argument("--since", type=_when, help="ISO date or time (inclusive)")
    search.add_argument("--until", type=_when, help="ISO date or time (exclusive)")
    search.add_argument("--limit", type=int, default=10, help="most hits shown (default 10)")
    search.add_argument("--json", action="store_true", help="one JSON object per hit")
    _db_arg(search)
    search.set_defaults(func=_guard(_cmd_search))

    forget = sub.add_parser("forget", help="delete items for good (also from the index)")
    which = forget.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", action="append", dest="ids", metavar="ID", help="an item id from `context search` (repeatable)")
    which.add_argument("--source", help="items from this source: a kind such as mbox or ics, a path, or the stored source as `context stats` lists it")
    which.add_argument("--query", help="items containing all these words")
    which.add_argument("--all", action="store_true", help="everything")
    _db_arg(forget)
    forget.set_defaults(func=_guard(_cmd_forget))

    export = sub.add_parser("export", help="write every item as JSON lines")
    export.add_argument("--out", help="file to write (default: standard output)")
    _db_arg(export)
    export.set_defaults(func=_guard(_cmd_export))

    stats = sub.add_parser("stats", help="counts, sources, size")
    stats.add_argument("--json", action="store_true", help="print JSON")
    _db_arg(stats)
    stats.set_defaults(func=_guard(_cmd_stats))


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="database file (default: from config)")


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or time, got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _guard(command: Callable[[argparse.Namespace, ContextStore], int]) -> Callable[
    [argparse.Namespace, Config], int
]:
    """Open the store, run ``command``, report domain and file errors on stderr."""

    def run(args: argparse.Namespace, cfg: Config) -> int:
        db = args.db or str(cfg.database_path)
        try:
            with ContextStore(db, purge_interval_s=None) as store:
                return command(args, store)
        except DomainError as exc:
            print(f"{PROG}: {exc.message}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"{PROG}: {exc.filename or ''} {exc.strerror or exc}".strip(), file=sys.stderr)
            return 1

    run.__name__ = command.__name__
    return run


def _cmd_import(args: argparse.Namespace, store: ContextStore) -> int:
    show = None if args.quiet else _progress_printer()
    report = import_paths(
        store,
        [Path(p) for p in args.paths],
        fmt=args.format,
        batch_size=args.batch_size,
        progress=show,
        sensitivity=args.sensitivity,
    )
    if show is not None and sys.stderr.isatty():
        print(file=sys.stderr)
    for path, count in report.by_path.items():
        print(f"{path}: {count} item(s)")
    for problem in report.errors:
        print(f"{PROG}: skipped {problem}", file=sys.stderr)
    if report.skipped > len(report.errors):
        print(f"{PROG}: ... {report.skipped - len(report.errors)} more skipped", file=sys.stderr)
    print(f"imported {report.items} item(s), skipped {report.skipped}")
    empty = [path for path, count in report.by_path.items() if count == 0]
    for path in empty:
        fmt = args.format or detect(Path(path))
        print(f"{PROG}: warning: {path}: nothing imported (no valid {fmt} records found)", file=sys.stderr)
    if report.items:
        store.tidy_index()  # merge what the import's batches added, while nobody waits
        return 0
    return 1


def _progress_printer() -> Callable[[ImportProgress], None]:
    tty = sys.stderr.isatty()

    def show(p: ImportProgress) -> None:
        done = f"{p.bytes_done / 1e6:.1f} MB"
        if p.bytes_total:
            done += f" of {p.bytes_total / 1e6:.1f} MB ({100 * p.bytes_done / p.bytes_total:.0f}%)"
        line = f"{p.path}: {p.items} item(s), {done}"
        print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def _cmd_search(args: argparse.Namespace, store: ContextStore) -> int:
    hits = store.search(
        args.query,
        kinds=args.kind,
        tags=args.tag,
        sensitivities=args.sensitivity,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    for hit in hits:
        item = hit.item
        if args.json:
            from edge_agent.context.codec import item_to_record

            print(json.dumps({"score": hit.score, **item_to_record(item)}, ensure_ascii=False))
            continue
        when = (item.starts_at or item.created_at).strftime("%Y-%m-%d %H:%M")
        title = item.title or item.body.strip().splitlines()[0][:80]
        print(f"{item.id}  {hit.score:7.3f}  {item.kind:<10} {when}  {title}")
    if not hits and not args.json:
        print("no matches", file=sys.stderr)
    return 0


def matching_sources(wanted: str, stored: Sequence[str]) -> list[str]:
    """The stored sources ``--source wanted`` means: the one spelled exactly so, else
    every source of that kind (``mbox`` -> ``mbox:/any/path``), else the ones whose
    path is ``wanted`` or lies under it (``~/mail.mbox``, ``notes/``)."""
    if wanted in stored:
        return [wanted]
    kind = [s for s in stored if s.partition(":")[0] == wanted]
    if kind:
        return kind
    path = str(Path(wanted).expanduser().resolve())
    return [s for s in stored if s.partition(":")[2] in (path, wanted) or s.partition(":")[2].startswith(path + "/")]


def _cmd_forget(args: argparse.Namespace, store: ContextStore) -> int:
    if args.source is None:
        count = store.delete(ids=args.ids or (), query=args.query, everything=args.all)
        print(f"forgot {count} item(s)")
        return 0
    stored = store.sources()
    chosen = matching_sources(args.source, list(stored))
    if not chosen:
        known = ", ".join(sorted({s.partition(":")[0] for s in stored})) or "none: the store is empty"
        print(f"{PROG}: no stored source matches --source {args.source!r}; give a kind ({known}), "
              "a path, or a source as `edge-agent context stats` lists it", file=sys.stderr)
        return 1
    count = sum(store.delete(source=source) for source in chosen)
    print(f"forgot {count} item(s) from {len(chosen)} source(s): {', '.join(chosen)}")
    return 0


def _cmd_export(args: argparse.Namespace, store: ContextStore) -> int:
    if args.out:
        out = Path(args.out)
        partial = out.with_name(out.name + ".partial")
        with partial.open("w", encoding="utf-8") as stream:
            count = store.export(stream)
        partial.replace(out)
    else:
        try:
            count = store.export(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `context export | head`: the reader has had enough
            _quiet_stdout()
            return 0
    print(f"exported {count} item(s)", file=sys.stderr)
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests): nothing will flush it
        pass
    finally:
        os.close(devnull)


def _cmd_stats(args: argparse.Namespace, store: ContextStore) -> int:
    stats: dict[str, Any] = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"database: {stats['path']} (schema {stats['schema_version']}, "
          f"{stats['db_bytes'] / 1e6:.1f} MB)")
    print(f"items: {stats['items']} ({stats['expiring']} expiring)")
    if stats["items"]:
        print(f"span: {stats['oldest']} .. {stats['newest']}")
    for label, key in (("kinds", "by_kind"), ("sensitivity", "by_sensitivity"),
                       ("sources", "top_sources"), ("vectors", "vectors")):
        if stats[key]:
            parts = ", ".join(f"{name} {count}" for name, count in stats[key].items())
            print(f"{label}: {parts}")
    return 0
