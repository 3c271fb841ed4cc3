"""Ranked full-text search with bounded work per query.

FTS5 computes BM25 for every row a query matches, so a word found in half of 100,000
items would cost tens of milliseconds. The planner keeps the work per query bounded by
``SCORE_CAP`` scored rows while keeping BM25's ordering where it matters:

1. Each word's document frequency is looked up (counted up to the cap, then cached).
2. If all matches together fit the cap, every match is scored: the exact ranking.
3. Otherwise the rarest words whose matches fit the cap are *anchors*: items containing
   an anchor are scored against the whole query (anchor words count twice, which only
   strengthens what BM25 already prefers). Common words alone cannot make an item a
   candidate unless the anchors yield fewer than ``limit`` results.
4. When every word is common (or to fill up), the newest ``SCORE_CAP`` stored items that
   contain all the words (else any of them) are scored.

The score of a row is ``-bm25 * recency`` (see ``store.py``); filters are SQL conditions
on ``items i``.

BM25 needs each query word's document frequency. FTS5's ``bm25()`` counts it on every
query by walking the word's whole posting list (about 40 ns a posting here), so a
prompt's 32 key words cost 75 ms per query at a million items whatever the query
returns. Where ``bm25_df`` is loaded (``ftsrank.py``), scoring passes the counts this
module caches instead: the same scores, at a cost that depends on the rows scored. A
count is made once per word and kept for ``DF_TTL_S``; a write drops the small counts
(the planner's decisions rest on them) and keeps the large ones, which a write moves
by a fraction of a percent; forgetting more than ``DF_KEEP_ON_WRITE`` items at once drops
them all.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from edge_agent.context.schema import FTS_WEIGHTS

#: Most rows BM25 is computed for in one step of a search.
SCORE_CAP = 500
#: ... and at least this many times the limit.
CAP_PER_LIMIT = 4
#: Candidates re-ranked with recency: this many times the limit, at least RERANK_MIN.
RERANK_FACTOR = 5
RERANK_MIN = 50
#: With filters, the newest SCAN_FACTOR * SCORE_CAP matches are filtered first.
SCAN_FACTOR = 3
#: Seconds a cached document frequency is trusted.
DF_TTL_S = 120.0
#: Counts above this survive writes (until ``DF_TTL_S``).
DF_KEEP_ON_WRITE = 1_000

_WEIGHTS = ", ".join(str(w) for w in FTS_WEIGHTS)
_BM25 = f"bm25(items_fts, {_WEIGHTS})"
_PHRASE = re.compile(r'"([^"]*)"')
ITEM_TIME = "coalesce(i.starts_at, i.created_at)"
RECENCY = f"(1.0 + ? / (1.0 + abs(? - {ITEM_TIME}) / ?))"


def quoted(words: Sequence[str]) -> list[str]:
    return [f'"{word}"' for word in words]


class DocFrequencies:
    """Cached document frequencies per word (counted up to a cap, or exactly).

    ``native``: scoring uses ``bm25_df`` with exact counts from here.
    """

    def __init__(self, *, native: bool = False) -> None:
        self.native = native
        self._cache: dict[str, tuple[float, int, int | float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def written(self) -> None:
        """Items were written or deleted: drop the counts a write can change much."""
        with self._lock:
            for word in [w for w, hit in self._cache.items() if hit[1] <= DF_KEEP_ON_WRITE]:
                del self._cache[word]

    def exact(self, conn: Connection, word: str) -> int:
        """How many items contain ``word``."""
        return self.get(conn, word, None)

    def get(self, conn: Connection, word: str, cap: int | None) -> int:
        """How many items contain ``word``, counted up to ``cap + 1`` (None: all)."""
        now = time.monotonic()
        limit = float("inf") if cap is None else cap
        with self._lock:
            hit = self._cache.get(word)
        if hit is not None and now - hit[0] < DF_TTL_S:
            _at, count, counted_to = hit
            if count <= counted_to or counted_to >= limit:  # exact, or over a larger cap
                return int(min(count, limit + 1))
        if cap is None:
            count = conn.exec_driver_sql(
                "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", (f'"{word}"',)
            ).scalar_one()
        else:
            count = conn.exec_driver_sql(
                "SELECT count(*) FROM (SELECT rowid FROM items_fts WHERE items_fts MATCH ? "
                "LIMIT ?)",
                (f'"{word}"', cap + 1),
            ).scalar_one()
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[word] = (now, int(count), limit)
        return int(count)

    def bm25(self, conn: Connection, expr: str) -> tuple[str, list[int]]:
        """The SQL that scores a match of ``expr`` (one quoted word per phrase), and its
        parameters."""
        if not self.native:
            return _BM25, []
        counts = [self.exact(conn, word) for word in _PHRASE.findall(expr)]
        marks = "".join(", ?" for _ in counts)
        return f"bm25_df(items_fts, {_WEIGHTS}{marks})", counts


def ranked(
    conn: Connection,
    words: Sequence[str],
    frequencies: DocFrequencies,
    *,
    where: str,
    params: Sequence[Any],
    recency: Sequence[float],
    limit: int,
    filtered: bool = False,
) -> list[tuple[int, float]]:
    """``(pk, score)`` of the best ``limit`` items for ``words``, best first.

    ``filtered`` says ``where`` does more than hide expired items.
    """
    cap = max(SCORE_CAP, CAP_PER_LIMIT * limit)
    df = {word: frequencies.get(conn, word, cap) for word in words}
    present = sorted((w for w in words if df[w] > 0), key=lambda w: df[w])
    if not present:
        return []
    any_word = " OR ".join(quoted(present))
    if sum(df[w] for w in present) <= cap:
        return _score(conn, frequencies, any_word, where, params, recency, limit, newest=None, skip=(), filtered=filtered)
    anchors: list[str] = []
    total = 0
    for word in present:
        if total + df[word] > cap:
            break
        anchors.append(word)
        total += df[word]
    found: list[tuple[int, float]] = []
    if anchors:
        expr = f"({' OR '.join(quoted(anchors))}) AND ({any_word})"
        found = _score(conn, frequencies, expr, where, params, recency, limit, newest=None, skip=(), filtered=filtered)
        if len(found) >= limit:
            return found
    skip = [pk for pk, _ in found]
    if len(present) > 1:
        all_words = " AND ".join(quoted(present))
        found += _score(conn, frequencies, all_words, where, params, recency, limit - len(found),
                        newest=cap, skip=skip, filtered=filtered)
        if len(found) >= limit:
            return sorted(found, key=lambda hit: -hit[1])
        skip = [pk for pk, _ in found]
    found += _score(conn, frequencies, any_word, where, params, recency, limit - len(found), newest=cap,
                    skip=skip, filtered=filtered)
    return sorted(found, key=lambda hit: -hit[1])


def _score(
    conn: Connection,
    frequencies: DocFrequencies,
    expr: str,
    where: str,
    params: Sequence[Any],
    recency: Sequence[float],
    limit: int,
    *,
    newest: int | None,
    skip: Sequence[int],
    filtered: bool,
) -> list[tuple[int, float]]:
    """Score the matches of ``expr`` (only the newest ``newest`` ones when given).

    Recency can lift a score by at most ``1 + RECENCY_WEIGHT``, so only the
    ``RERANK_FACTOR * limit`` best by BM25 are re-ranked with it, unless filters must be
    applied first (then every candidate is joined with its item).
    """
    bm25, counts = frequencies.bm25(conn, expr)
    skip_sql = f" AND i.pk NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
    top = max(RERANK_MIN, RERANK_FACTOR * limit)
    if newest is None and filtered:
        inner = f"SELECT rowid AS pk, {bm25} AS r FROM items_fts WHERE items_fts MATCH ?"
        sql = (
            f"SELECT c.pk, -c.r * {RECENCY} AS score FROM ({inner}) c "
            f"JOIN items i ON i.pk = c.pk WHERE {where}{skip_sql} ORDER BY score DESC LIMIT ?"
        )
        args = [*recency, *counts, expr, *params, *skip, limit]
    elif newest is None:
        inner = (
            f"SELECT rowid AS pk, {bm25} AS r FROM items_fts WHERE items_fts MATCH ? "
            "ORDER BY r LIMIT ?"
        )
        sql = (
            f"SELECT c.pk, -c.r * {RECENCY} AS score FROM ({inner}) c "
            f"JOIN items i ON i.pk = c.pk WHERE {where}{skip_sql} ORDER BY score DESC LIMIT ?"
        )
        args = [*recency, *counts, expr, top, *params, *skip, limit]
    elif not filtered:
        # Only expiry to check: score the newest matches straight from the index, then
        # drop expired items (rare: the purge timer deletes them) among the best ones.
        skip_fts = f" AND rowid NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
        inner = (
            f"SELECT rowid AS pk, {bm25} AS r FROM items_fts WHERE items_fts MATCH ?"
            f"{skip_fts} ORDER BY rowid DESC LIMIT ?"
        )
        sql = (
            f"SELECT c.pk, -c.r * {RECENCY} AS score FROM "
            f"(SELECT pk, r FROM ({inner}) ORDER BY r LIMIT ?) c "
            f"JOIN items i ON i.pk = c.pk WHERE {where} ORDER BY score DESC LIMIT ?"
        )
        args = [*recency, *counts, expr, *skip, newest, top, *params, limit]
    else:
        return _score_newest_filtered(
            conn, expr, where, params, recency, limit, newest=newest, skip_sql=skip_sql,
            skip=skip, top=top, bm25=bm25, counts=counts,
        )
    rows = conn.exec_driver_sql(sql, tuple(args)).all()
    return [(int(row[0]), float(row[1])) for row in rows]


def _score_newest_filtered(
    conn: Connection,
    expr: str,
    where: str,
    params: Sequence[Any],
    recency: Sequence[float],
    limit: int,
    *,
    newest: int,
    skip_sql: str,
    skip: Sequence[int],
    top: int,
    bm25: str,
    counts: Sequence[int],
) -> list[tuple[int, float]]:
    """Score the newest ``newest`` matches that pass the filters.

    The newest ``SCAN_FACTOR * newest`` matches are filtered first; only if too few pass
    are all matches filtered.
    """
    floor = conn.exec_driver_sql(
        "SELECT rowid FROM items_fts WHERE items_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
        (expr, SCAN_FACTOR * newest),
    ).scalar()
    while True:
        window = "" if floor is None else " AND f.rowid > ?"
        inner = (
            f"SELECT f.rowid AS pk, {bm25} AS r FROM items_fts f "
            f"JOIN items i ON i.pk = f.rowid WHERE items_fts MATCH ?{window} "
            f"AND {where}{skip_sql} ORDER BY f.rowid DESC LIMIT ?"
        )
        sql = (
            f"SELECT c.pk, -c.r * {RECENCY} AS score FROM "
            f"(SELECT pk, r FROM ({inner}) ORDER BY r LIMIT ?) c "
            "JOIN items i ON i.pk = c.pk ORDER BY score DESC LIMIT ?"
        )
        bounds = [] if floor is None else [floor]
        args = [*recency, *counts, expr, *bounds, *params, *skip, newest, top, limit]
        rows = conn.exec_driver_sql(sql, tuple(args)).all()
        if floor is None or len(rows) >= limit:
            return [(int(row[0]), float(row[1])) for row in rows]
        floor = None  # the filters are selective: search all matches
