"""The personal-context store: items in SQLite through SQLAlchemy, searched with FTS5.

``ContextStore`` is the one interface the rest of the agent uses. Writes are validated
as a whole batch first (see :mod:`edge_agent.context.limits` for the documented limits),
then run in one ``BEGIN IMMEDIATE`` transaction that is on disk when the call returns.

Search matches items containing any word of the query (common function words dropped,
see :mod:`.query`) and ranks them by BM25 (title words count double) times a recency
boost: an item whose time (event start, else creation time) is near now scores up to
``1 + RECENCY_WEIGHT`` times its text score, a boost that halves at ``RECENCY_HALF_DAYS``
away. :mod:`.ranking` bounds the work per query on large stores. Filters: kinds and
sensitivities match any of the given values, tags must all be present, ``since`` is
inclusive and ``until`` exclusive on the item's time.

Forgetting (``delete``) removes the rows, their words from the FTS index and, with
``secure_delete``, their bytes from the file; the write-ahead log is then checkpointed and
truncated. On SQLite 3.42+ (the bundled driver, see :mod:`common.sqlite`) the index runs
with FTS5 ``secure-delete``: a deleted row's words leave the index with the delete, in
time proportional to what is forgotten. On an older SQLite the index is merged into one
segment after a delete instead, so no old segment keeps the words (time proportional to
the whole index). A delete that removes more than 1/``IN_PLACE_SHARE`` of the store
(forget a whole mail archive) merges the index once instead of deleting row by row, which
is cheaper past that share. Expired items are invisible at once, deleted on open, by
writes and by a background timer, and scrubbed like forgotten ones by the timer (or
``purge_expired``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Self

from sqlalchemy import Connection, Engine

from common.errors import InvalidArgument, NotFound
from common.sqlite import SQLITE_VERSION, make_engine, raw_cursor
from edge_agent.context import ftsrank, ranking, retrieval, vectors
from edge_agent.context.api import KINDS, SENSITIVITIES, Hit, Item, NewItem, Retrieved
from edge_agent.context.codec import (
    ITEM_SELECT,
    epoch_or_none,
    from_epoch,
    item_to_record,
    norm_participants,
    norm_tags,
    row_to_item,
)
from edge_agent.context.limits import (
    MAX_DELETE_IDS,
    MAX_SEARCH_LIMIT,
    validate_choices,
    validate_items,
    validate_limit,
    validate_query,
    validate_range,
    validate_tags,
)
from edge_agent.context.query import key_terms, match_expression, terms
from edge_agent.context.schema import upgrade

_log = logging.getLogger(__name__)

RECENCY_WEIGHT = 0.5
RECENCY_HALF_DAYS = 30.0
#: Seconds between background purges of expired items (None: no timer).
PURGE_INTERVAL_S = 300.0
#: Index pages one step of ``tidy_index`` merges (one short write transaction: at a
#: million items 16 ms median, 160 ms at most).
MERGE_PAGES = 200
#: Seconds of index merging the purge timer spends per run.
MERGE_BUDGET_S = 10.0
#: How long ``contact_names`` may serve a cached list (own writes clear it at once).
CONTACT_CACHE_S = 30.0
#: A delete takes its words out of the index row by row (FTS5 secure-delete) when it
#: removes at most 1/IN_PLACE_SHARE of the store, else it merges the whole index once.
#: Measured: about 2 ms per item in place, 0.01 ms per stored item to merge.
IN_PLACE_SHARE = 128
#: Hybrid search fuses the best FUSE_DEPTH of each list (at least the limit).
FUSE_DEPTH = 50
#: With filters, this many times the wanted nearest items are compared before filtering.
VECTOR_OVERFETCH = 8

_INSERT = (
    "INSERT INTO items (id, kind, source, source_id, title, body, participants, tags, "
    "sensitivity, created_at, starts_at, ends_at, expires_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, source_id) WHERE source_id <> '' DO UPDATE SET "
    "kind = excluded.kind, title = excluded.title, body = excluded.body, "
    "participants = excluded.participants, tags = excluded.tags, "
    "sensitivity = excluded.sensitivity, created_at = excluded.created_at, "
    "starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
    "expires_at = excluded.expires_at, updated_at = excluded.updated_at "
    "RETURNING pk, id"
)
_ITEM_TIME = "coalesce(i.starts_at, i.created_at)"
_LIVE = "(i.expires_at IS NULL OR i.expires_at > ?)"


class ContextStore:
    """Personal items in a SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path, *, purge_interval_s: float | None = PURGE_INTERVAL_S):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: True: ranking uses ``bm25_df`` with cached document frequencies (ftsrank.py)
        self.native_ranking = ftsrank.LIBRARY is not None
        self._engine = make_engine(
            self.path, setup=ftsrank.load if self.native_ranking else None
        )
        try:
            self.schema_version = upgrade(self._engine)
            # True: deletes take their words out of the index at once (no merge needed)
            self.deletes_in_place = _configure_index(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._contacts: tuple[float, list[str]] | None = None
        self._frequencies = ranking.DocFrequencies(native=self.native_ranking)
        self._vectors = vectors.VectorIndex()
        self._closed = threading.Event()
        self._last_purge = 0.0
        self.purge_expired()  # also finishes a scrub a previous run left pending
        self._checkpoint()  # old pages a crash left in the file before its checkpoint
        self._purger: threading.Thread | None = None
        if purge_interval_s is not None:
            self._purger = threading.Thread(
                target=self._purge_loop, args=(purge_interval_s,), name="context-purge",
                daemon=True,
            )
            self._purger.start()

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Stop the purge timer and close every connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._purger is not None:
            self._purger.join()
        try:
            self.purge_expired()  # no forgotten word stays in the file after a stop
        finally:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, *, keeps_vectors: bool = False) -> Iterator[Connection]:
        """A write transaction; ``keeps_vectors``: it removes no stored vector."""
        try:
            with _writing(self._engine) as conn:
                yield conn
        finally:
            if not keeps_vectors:
                self._vectors.invalidate()
        self._contacts = None
        self._frequencies.written()

    # -- writes ----------------------------------------------------------------------

    def put(self, items: Sequence[NewItem]) -> list[str]:
        """Store ``items`` in one durable transaction; return their ids in order.

        An item with a non-empty ``source_id`` replaces the stored item with the same
        ``(source, source_id)`` and keeps its id. Nothing is written if any item is bad.
        """
        validate_items(items)
        now = time.time()
        rows = [_row(item, now) for item in items]
        ids: list[str] = []
        tags_of: dict[int, tuple[str, ...]] = {}  # the last write of an item wins
        with self._write(keeps_vectors=True) as conn:
            stale = bool(self._purge(conn, now))  # expired words left in the index
            cursor = raw_cursor(conn)
            try:
                for row, tags in rows:
                    pk, item_id = cursor.execute(_INSERT, row).fetchone()
                    if item_id != row[0]:  # an update: replace its tags
                        cursor.execute("DELETE FROM item_tags WHERE item_pk = ?", (pk,))
                        stale = True  # the old body's words are still in the index
                    tags_of[pk] = tags
                    ids.append(item_id)
                cursor.executemany(
                    "INSERT OR IGNORE INTO item_tags (item_pk, tag) VALUES (?, ?)",
                    [(pk, tag) for pk, tags in tags_of.items() for tag in tags],
                )
            finally:
                cursor.close()
            if stale and not self.deletes_in_place:  # durable: timer, stop or next start scrubs
                _set_scrub_pending(conn, True)
        if stale:  # replaced or expired items took their vectors with them
            self._vectors.invalidate()
        if stale and self.deletes_in_place:  # the replaced words' old pages leave the file
            self._checkpoint()
        return ids

    def delete(
        self,
        *,
        ids: Sequence[str] = (),
        source: str | None = None,
        query: str | None = None,
        everything: bool = False,
    ) -> int:
        """Forget items; return how many were deleted.

        Give exactly one selector: ``ids``, ``source``, ``query`` (items containing all
        its words) or ``everything``. Deleted text is removed from the search index and
        its pages are zeroed (``secure_delete``), so it is gone from the file.
        """
        chosen = [bool(ids), source is not None, query is not None, everything]
        if sum(chosen) != 1:
            raise InvalidArgument("selector", "give exactly one of ids, source, query, all")
        if isinstance(ids, str):
            raise InvalidArgument("ids", "must be a list of ids")
        if len(ids) > MAX_DELETE_IDS:
            raise InvalidArgument("ids", f"at most {MAX_DELETE_IDS} ids per call")
        if source is not None and not source:
            raise InvalidArgument("source", "must not be empty")
        if query is not None:
            validate_query(query)
            words = terms(query, drop_stopwords=False)
            if not words:
                raise InvalidArgument("query", "must contain at least one word")
        params: tuple[str, ...] = ()
        if everything:
            where = "1"
        elif ids:
            where, params = f"id IN ({', '.join('?' for _ in ids)})", tuple(ids)
        elif source is not None:
            where, params = "source = ?", (source,)
        else:
            where = "pk IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)"
            params = (match_expression(words, mode="all"),)
        with self._write() as conn:
            in_place = self.deletes_in_place
            if in_place:  # a large share of the store is cheaper to merge out at once
                n = conn.exec_driver_sql(f"SELECT count(*) FROM items WHERE {where}", params).scalar_one()
                share = n * IN_PLACE_SHARE  # the store holds fewer items? (count no further)
                fewer = conn.exec_driver_sql(
                    "SELECT count(*) FROM (SELECT 1 FROM items LIMIT ?)", (share + 1,)
                ).scalar_one() < share
                if fewer:
                    in_place = False
                    _set_in_place(conn, False)
            count = _rowcount(conn.exec_driver_sql(f"DELETE FROM items WHERE {where}", params))
            if count and not in_place:
                _scrub(conn)
            if in_place != self.deletes_in_place:
                _set_in_place(conn, True)
        if count > ranking.DF_KEEP_ON_WRITE:  # enough to move even the large counts
            self._frequencies.clear()
        if count:
            self._checkpoint()
        return count

    def purge_expired(self) -> int:
        """Forget items whose expiry has passed (like ``delete``); return how many."""
        with self._write() as conn:
            count = self._purge(conn, time.time(), force=True)
            scrub = (bool(count) and not self.deletes_in_place) or _scrub_pending(conn)
            if scrub:
                _scrub(conn)
                _set_scrub_pending(conn, False)
        if scrub or count:
            self._checkpoint()
        return count

    def _purge(self, conn: Connection, now: float, *, force: bool = False) -> int:
        if not force and now - self._last_purge < 1.0:
            return 0
        self._last_purge = now
        result = conn.exec_driver_sql(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
        )
        return _rowcount(result)

    def _purge_loop(self, interval: float) -> None:
        while not self._closed.wait(interval):
            try:
                self.purge_expired()
                self.tidy_index(MERGE_BUDGET_S)
            except Exception:  # noqa: BLE001 - a busy database must not kill the timer
                _log.warning("purging expired context items failed", exc_info=True)

    def tidy_index(self, max_seconds: float | None = None) -> bool:
        """Merge the search index's segments, a little at a time; True when it is tidy.

        Every write adds a segment to the FTS5 index and FTS5 merges them only when a
        level holds eight, so a store fed in small batches keeps a few dozen; every
        query word is looked up in each (a million-item store: 23 segments, retrieval
        17 ms; merged to 3, 9 ms). Each step merges about ``MERGE_PAGES`` pages in its own
        write transaction, so a writer waits for one step at most. The timer runs it
        after each purge; ``context import`` runs it to the end.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while True:  # at least one step
            if self._closed.is_set():
                return False
            with _writing(self._engine) as conn:  # the content is unchanged: caches stay
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                before = dbapi.total_changes
                conn.exec_driver_sql(
                    "INSERT INTO items_fts(items_fts, rank) VALUES ('merge', ?)", (MERGE_PAGES,)
                )
                worked = dbapi.total_changes - before >= 2  # FTS5's sign of work done
            if not worked:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def index_segments(self) -> int:
        """How many segments the search index has (each query word is looked up in each)."""
        with self._read() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(DISTINCT segid) FROM items_fts_idx"
            ).scalar_one())

    def vacuum(self) -> None:
        """Rebuild the file compactly (frees the pages of deleted items)."""
        self._outside_transaction("VACUUM")
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the file and empty it (best effort)."""
        self._outside_transaction("PRAGMA wal_checkpoint(TRUNCATE)")

    def _outside_transaction(self, statement: str) -> None:
        # The pooled DBAPI connection runs in autocommit (see db.py), as VACUUM needs.
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(statement).fetchall()
            cursor.close()
        finally:
            connection.close()

    # -- reads -----------------------------------------------------------------------

    def get(self, item_id: str) -> Item:
        """The item with ``item_id``; raises ``NotFound`` (also for an expired one)."""
        with self._read() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {ITEM_SELECT} FROM items i WHERE i.id = ? AND {_LIVE}",
                (item_id, time.time()),
            ).first()
        if row is None:
            raise NotFound(f"context item {item_id!r} not found")
        return row_to_item(row)

    def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        tags: Sequence[str] = (),
        sensitivities: Sequence[str] = (),
        limit: int = 10,
        vector: vectors.Vector | None = None,
        vector_model: str = "",
    ) -> list[Hit]:
        """Items matching any word of ``query``, best first, within the filters.

        A query without words lists the items passing the filters, most recent first.
        With ``vector`` (the query's embedding by ``vector_model``) the ranking is hybrid:
        the BM25 list and the items nearest to ``vector`` fused by rank (see :mod:`.vectors`).
        """
        validate_query(query)
        return self._search(
            terms(query), kinds, since, until, tags, sensitivities, limit, vector, vector_model
        )

    def _search(
        self,
        words: list[str],
        kinds: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        tags: Sequence[str],
        sensitivities: Sequence[str],
        limit: int,
        vector: vectors.Vector | None = None,
        vector_model: str = "",
    ) -> list[Hit]:
        validate_limit(limit)
        validate_choices(kinds, KINDS, "kinds")
        validate_choices(sensitivities, SENSITIVITIES, "sensitivities")
        validate_range(since, until)
        validate_tags(tags)
        now = time.time()
        where, params = _filters(now, kinds, since, until, tags, sensitivities)
        recency = (RECENCY_WEIGHT, now, RECENCY_HALF_DAYS * 86400.0)
        with self._read() as conn:
            if vector is not None and words:
                depth = max(FUSE_DEPTH, limit)
                lexical = ranking.ranked(
                    conn, words, self._frequencies, where=where, params=params,
                    recency=recency, limit=depth, filtered=where != _LIVE,
                )
                near = self._near(conn, vector, vector_model, where, params, depth,
                                  min_z=vectors.VECTOR_MIN_Z)
                scored = vectors.fuse([lexical, near], limit)
            elif words:
                scored = ranking.ranked(
                    conn, words, self._frequencies, where=where, params=params,
                    recency=recency, limit=limit, filtered=where != _LIVE,
                )
            else:
                scored = [
                    (int(row[0]), float(row[1]))
                    for row in conn.exec_driver_sql(
                        f"SELECT i.pk, {ranking.RECENCY} FROM items i WHERE {where} "
                        f"ORDER BY {_ITEM_TIME} DESC LIMIT ?",
                        (*recency, *params, limit),
                    )
                ]
            return self._hits(conn, scored)

    @staticmethod
    def _hits(conn: Connection, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """The items of ``scored`` ``(pk, score)`` pairs, in that order."""
        if not scored:
            return []
        marks = ", ".join("?" for _ in scored)
        rows = conn.exec_driver_sql(
            f"SELECT {ITEM_SELECT}, i.pk FROM items i WHERE i.pk IN ({marks})",
            tuple(pk for pk, _ in scored),
        ).all()
        by_pk = {int(row[-1]): row_to_item(row) for row in rows}
        return [Hit(item=by_pk[pk], score=score) for pk, score in scored if pk in by_pk]

    def _near(
        self, conn: Connection, vector: vectors.Vector, model: str, where: str,
        params: Sequence[Any], limit: int, *, min_z: float | None = None,
    ) -> list[tuple[int, float]]:
        """The stored items nearest to ``vector`` that pass the filters, best first."""
        if not model:
            raise InvalidArgument("vector_model", "must name the model of the query vector")
        filtered = where != _LIVE
        near = self._vectors.nearest(
            conn, model, vector, limit * (VECTOR_OVERFETCH if filtered else 1) + 16, min_z=min_z
        )
        if not near:
            return []
        marks = ", ".join("?" for _ in near)
        passing = {
            int(row[0]) for row in conn.exec_driver_sql(
                f"SELECT i.pk FROM items i WHERE i.pk IN ({marks}) AND {where}",
                (*(pk for pk, _ in near), *params),
            )
        }
        return [(pk, score) for pk, score in near if pk in passing][:limit]

    def nearest(
        self, vector: vectors.Vector, vector_model: str, *, limit: int = 10
    ) -> list[Hit]:
        """The live items whose stored vectors (by ``vector_model``) are most similar to
        ``vector``, best first (score: cosine similarity)."""
        validate_limit(limit)
        with self._read() as conn:
            scored = self._near(conn, vector, vector_model, _LIVE, (time.time(),), limit)
            return self._hits(conn, scored)

    # -- vectors ---------------------------------------------------------------------

    def unembedded(self, vector_model: str, limit: int = 16) -> list[tuple[str, float, str]]:
        """Up to ``limit`` live items with no vector by ``vector_model``, newest first:
        ``(id, updated_at, text to embed)`` (see :func:`.vectors.item_text`)."""
        with self._read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT i.id, i.updated_at, i.title, substr(i.body, 1, ?) FROM items i "
                "LEFT JOIN item_vectors v ON v.item_pk = i.pk AND v.model = ? "
                f"WHERE v.item_pk IS NULL AND {_LIVE} ORDER BY i.pk DESC LIMIT ?",
                (vectors.EMBED_BODY_CHARS, vector_model, time.time(), limit),
            ).all()
        out = [(str(r[0]), float(r[1]), vectors.item_text(r[2], r[3])) for r in rows]
        return [row for row in out if row[2]]

    def put_vectors(
        self, vector_model: str, rows: Sequence[tuple[str, float, vectors.Vector]]
    ) -> int:
        """Store ``(id, updated_at, vector)`` rows (as from ``unembedded``); an item that was
        changed or deleted since is skipped. Returns how many were stored."""
        if not vector_model:
            raise InvalidArgument("vector_model", "must not be empty")
        stored: list[tuple[int, vectors.Vector]] = []
        with self._write(keeps_vectors=True) as conn:
            for item_id, updated_at, vector in rows:
                pk = conn.exec_driver_sql(
                    "SELECT pk FROM items WHERE id = ? AND updated_at = ?", (item_id, updated_at)
                ).scalar()
                if pk is None:
                    continue
                replaced = conn.exec_driver_sql(
                    "DELETE FROM item_vectors WHERE item_pk = ?", (pk,)
                ).rowcount
                if replaced:
                    self._vectors.invalidate()
                conn.exec_driver_sql(
                    "INSERT INTO item_vectors (item_pk, model, vector) VALUES (?, ?, ?)",
                    (pk, vector_model, vectors.encode(vector)),
                )
                stored.append((int(pk), vector))
        self._vectors.added(vector_model, [pk for pk, _ in stored], [v for _, v in stored])
        return len(stored)

    def drop_vectors(self, *, keep_model: str) -> int:
        """Delete every stored vector not by ``keep_model``; return how many."""
        with self._write() as conn:
            count = _rowcount(conn.exec_driver_sql(
                "DELETE FROM item_vectors WHERE model <> ?", (keep_model,)
            ))
        if count:
            self._checkpoint()
        return count

    def vector_count(self, vector_model: str) -> int:
        """How many items have a vector by ``vector_model``."""
        with self._read() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM item_vectors WHERE model = ?", (vector_model,)
            ).scalar_one())

    def retrieve(
        self,
        query: str,
        *,
        token_budget: int,
        count_tokens: Callable[[str], int],
        limit: int = 8,
        kinds: Sequence[str] = (),
        sensitivities: Sequence[str] = (),
        vector: vectors.Vector | None = None,
        vector_model: str = "",
    ) -> Retrieved:
        """Context for a prompt: the best items for ``query`` that fit ``token_budget``.

        ``query`` is the request's prompt, of any length: its most frequent content words
        (at most ``MAX_QUERY_TERMS``, see :func:`.query.key_terms`) are searched for, and
        with ``vector`` (the prompt's embedding) the ranking is hybrid (see ``search``).
        Only prompts with content words retrieve anything; every returned item's text is
        in ``text``, and ``tokens`` is ``count_tokens(text)``.
        """
        if not isinstance(query, str):
            raise InvalidArgument("query", "must be a string")
        validate_limit(limit)
        if token_budget < 0:
            raise InvalidArgument("token_budget", "must not be negative")
        words = key_terms(query)
        if token_budget == 0 or not words:
            return Retrieved(text="", items=(), tokens=0)
        hits = self._search(
            words, kinds, None, None, (), sensitivities, min(MAX_SEARCH_LIMIT, limit * 3),
            vector, vector_model,
        )
        return retrieval.pack(hits, words, token_budget, count_tokens, limit)

    def contact_names(self) -> list[str]:
        """Distinct names of contact items, sorted (for PII detection)."""
        cached = self._contacts
        now = time.monotonic()
        if cached is not None and now - cached[0] < CONTACT_CACHE_S:
            return list(cached[1])
        with self._read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT DISTINCT i.title FROM items i WHERE i.kind = 'contact' "
                f"AND i.title <> '' AND {_LIVE} ORDER BY i.title",
                (time.time(),),
            ).all()
        names = [row[0] for row in rows]
        self._contacts = (now, names)
        return list(names)

    def export(self, out: IO[str]) -> int:
        """Write every live item to ``out`` as JSON lines (oldest first); return the count."""
        count = 0
        with self._read() as conn:
            cursor = raw_cursor(conn)
            try:
                cursor.execute(
                    f"SELECT {ITEM_SELECT} FROM items i WHERE {_LIVE} ORDER BY i.pk",
                    (time.time(),),
                )
                while batch := cursor.fetchmany(500):
                    for row in batch:
                        record = item_to_record(row_to_item(row))
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                        count += 1
            finally:
                cursor.close()
        return count

    def stats(self) -> dict[str, Any]:
        """Counts by kind, sensitivity and source, time span, size and schema version."""
        now = time.time()
        with self._read() as conn:

            def grouped(column: str, top: int = 1000) -> dict[str, int]:
                rows = conn.exec_driver_sql(
                    f"SELECT i.{column}, count(*) AS n FROM items i WHERE {_LIVE} "
                    f"GROUP BY i.{column} ORDER BY n DESC, i.{column} LIMIT ?",
                    (now, top),
                ).all()
                return {row[0]: int(row[1]) for row in rows}

            total, oldest, newest, expiring = conn.exec_driver_sql(
                "SELECT count(*), min(i.created_at), max(i.created_at), "
                f"count(i.expires_at) FROM items i WHERE {_LIVE}",
                (now,),
            ).one()
            by_kind, by_sensitivity, sources = (
                grouped("kind"), grouped("sensitivity"), grouped("source", 20)
            )
            vectors_by_model = {
                str(row[0]): int(row[1]) for row in conn.exec_driver_sql(
                    "SELECT model, count(*) FROM item_vectors GROUP BY model ORDER BY model"
                )
            }
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "items": int(total),
            "by_kind": by_kind,
            "by_sensitivity": by_sensitivity,
            "top_sources": sources,
            "vectors": vectors_by_model,  # items embedded, by embedding model
            "expiring": int(expiring),
            "oldest": _iso(from_epoch(oldest)),
            "newest": _iso(from_epoch(newest)),
            "db_bytes": self.db_bytes(),
        }

    def sources(self) -> dict[str, int]:
        """Every stored source (e.g. ``mbox:/home/me/mail.mbox``) with its live items."""
        with self._read() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT i.source, count(*) FROM items i WHERE {_LIVE} GROUP BY i.source ORDER BY i.source",
                (time.time(),),
            ).all()
        return {row[0]: int(row[1]) for row in rows}

    def db_bytes(self) -> int:
        """Size of the database file plus its write-ahead log."""
        size = 0
        for suffix in ("", "-wal"):
            file = self.path.with_name(self.path.name + suffix)
            if file.exists():
                size += file.stat().st_size
        return size


def _scrub_pending(conn: Connection) -> bool:
    row = conn.exec_driver_sql("SELECT value FROM maintenance WHERE key = 'scrub_pending'").first()
    return row is not None and row[0] == "1"


def _set_scrub_pending(conn: Connection, pending: bool) -> None:
    conn.exec_driver_sql(
        "INSERT OR REPLACE INTO maintenance (key, value) VALUES ('scrub_pending', ?)",
        ("1" if pending else "0",),
    )


def _set_in_place(conn: Connection, on: bool) -> None:
    conn.exec_driver_sql(
        "INSERT INTO items_fts(items_fts, rank) VALUES ('secure-delete', ?)", (int(on),)
    )


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction (``BEGIN IMMEDIATE``: writers never deadlock on an upgrade)."""
    writer = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    with writer as conn, conn.begin():
        yield conn


def _index_setting(conn: Connection, key: str) -> int | None:
    row = conn.exec_driver_sql("SELECT v FROM items_fts_config WHERE k = ?", (key,)).first()
    return None if row is None else int(row[0])


def _configure_index(engine: Engine) -> bool:
    """Set the search index's lasting options; True when deletes work in place.

    ``usermerge`` 2 lets ``tidy_index`` merge any level with two or more segments (FTS5's
    default: 4). FTS5 ``secure-delete`` is turned on where SQLite has it (3.42+);
    turning it on marks a scrub pending, so words a store forgot before (under the merge
    rule) are merged out once. The setting is kept in the database: an FTS5 older than
    3.42 can then no longer open the index (the bundled driver is always newer).
    """
    in_place = SQLITE_VERSION >= (3, 42)
    with _writing(engine) as conn:
        if _index_setting(conn, "usermerge") != 2:
            conn.exec_driver_sql("INSERT INTO items_fts(items_fts, rank) VALUES ('usermerge', 2)")
        if in_place and not _index_setting(conn, "secure-delete"):
            _set_in_place(conn, True)
            _set_scrub_pending(conn, True)
    return in_place


def _scrub(conn: Connection) -> None:
    """Merge the index into one segment, so deleted words leave the file too.

    Costs time in proportion to the index (about 0.2 s of CPU per 30,000 items).
    """
    conn.exec_driver_sql("INSERT INTO items_fts(items_fts) VALUES ('optimize')")


def _row(item: NewItem, now: float) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    tags = norm_tags(item.tags)
    created = epoch_or_none(item.created_at)
    row = (
        uuid.uuid4().hex,
        item.kind,
        item.source,
        item.source_id,
        item.title,
        item.body,
        "\n".join(norm_participants(item.participants)),
        "\n".join(tags),
        item.sensitivity,
        now if created is None else created,
        epoch_or_none(item.starts_at),
        epoch_or_none(item.ends_at),
        epoch_or_none(item.expires_at),
        now,
    )
    return row, tags


def _filters(
    now: float,
    kinds: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    tags: Sequence[str],
    sensitivities: Sequence[str],
) -> tuple[str, list[Any]]:
    clauses = [_LIVE]
    params: list[Any] = [now]
    if kinds:
        clauses.append(f"i.kind IN ({', '.join('?' for _ in kinds)})")
        params += list(kinds)
    if sensitivities:
        clauses.append(f"i.sensitivity IN ({', '.join('?' for _ in sensitivities)})")
        params += list(sensitivities)
    if since is not None:
        clauses.append(f"{_ITEM_TIME} >= ?")
        params.append(epoch_or_none(since))
    if until is not None:
        clauses.append(f"{_ITEM_TIME} < ?")
        params.append(epoch_or_none(until))
    wanted = norm_tags(tags)
    if wanted:
        clauses.append(
            "i.pk IN (SELECT item_pk FROM item_tags WHERE tag IN "
            f"({', '.join('?' for _ in wanted)}) GROUP BY item_pk HAVING count(*) = ?)"
        )
        params += [*wanted, len(wanted)]
    return " AND ".join(clauses), params


def _rowcount(result: Any) -> int:
    return max(0, int(result.rowcount))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
