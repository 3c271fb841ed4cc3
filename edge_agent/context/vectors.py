"""Vector search over the store's items, and its fusion with BM25.

Each item's vector (unit length, from one embedding model, named by its model id) is kept
as float16 in ``item_vectors``, in the store's own file: it is written in a transaction
that checks the item still has the text the vector was computed from, it is deleted with
the item (a cascade, scrubbed like the item's text by ``secure_delete``), and a trigger
drops it when the item's title or body changes, so no vector outlives its text.

A search compares the query's vector with every stored one: exact cosine similarity, a
matrix-vector product over a float32 copy held in memory (``4 * n * d`` bytes: 154 MB
at 100,000 items of 384 dimensions; ``benchmarks/context_store.py`` measures it). The copy
is loaded on the first search, extended in place as vectors are added, and reloaded after
a write that removed some. Exact search needs no index to build, tune or keep in sync,
and at personal scale it is fast enough (milliseconds at 100,000 items).

Hybrid ranking fuses the BM25 list (with its recency boost) and the vector list (the
items standing out from the store, see ``VECTOR_MIN_Z``) by
reciprocal rank: an item scores ``sum(1 / (RRF_K + rank))`` over the lists it is in
(rank 1 is the best). Rank fusion needs no calibration between BM25 scores and cosines,
which live on unrelated scales and shift with the store and the model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

#: Reciprocal-rank-fusion constant (the value of the original RRF paper).
RRF_K = 60
#: Characters of an item's body that go into its vector (with its title).
EMBED_BODY_CHARS = 1000
#: In hybrid ranking an item is a vector candidate only when its similarity to the query
#: stands this many standard deviations above the mean over all stored items: nearest
#: neighbours always exist, and a prompt about nothing stored (a general question) must
#: not pull personal items into the prompt (which would also keep it on the device).
#: Small stores (fewer than about a dozen vectors) cannot reach it: BM25 alone ranks.
VECTOR_MIN_Z = 3.0

Vector = npt.NDArray[np.float32]


def item_text(title: str, body: str) -> str:
    """What an item's vector is computed from: its title and the start of its body."""
    text = f"{title}\n{body[:EMBED_BODY_CHARS]}" if title else body[:EMBED_BODY_CHARS]
    return text.strip()


def encode(vector: Vector) -> bytes:
    """A vector as stored: little-endian float16."""
    return np.asarray(vector, dtype="<f2").tobytes()


def decode(blob: bytes) -> Vector:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)


def fuse(lists: Iterable[Sequence[tuple[int, float]]], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked ``(pk, score)`` lists: the best ``limit`` pks
    with their fused scores (ties: first seen)."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (pk, _score) in enumerate(ranked, start=1):
            fused[pk] = fused.get(pk, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(fused.items(), key=lambda kv: -kv[1])  # stable: first seen wins ties
    return best[:limit]


class VectorIndex:
    """The in-memory copy of one model's stored vectors; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: str | None = None
        self._stale = True
        self._pks = np.empty(0, dtype=np.int64)
        self._rows = np.empty((0, 0), dtype=np.float32)
        self._n = 0

    def invalidate(self) -> None:
        """Vectors were removed: reload before the next search."""
        with self._lock:
            self._stale = True

    def added(self, model: str, pks: Sequence[int], vectors: Sequence[Vector]) -> None:
        """Vectors were stored for new pks (a replaced vector must ``invalidate``)."""
        with self._lock:
            if self._stale or model != self._model or not pks:
                return
            dim = len(vectors[0])
            if self._n and dim != self._rows.shape[1]:
                self._stale = True
                return
            need = self._n + len(pks)
            if need > len(self._pks) or self._rows.shape[1] != dim:
                cap = max(need, 2 * len(self._pks), 1024)
                rows = np.empty((cap, dim), dtype=np.float32)
                pk_buf = np.empty(cap, dtype=np.int64)
                if self._n:
                    rows[: self._n] = self._rows[: self._n]
                    pk_buf[: self._n] = self._pks[: self._n]
                self._rows, self._pks = rows, pk_buf
            self._rows[self._n : need] = np.asarray(vectors, dtype=np.float16).astype(np.float32)
            self._pks[self._n : need] = pks
            self._n = need

    def count(self, conn: Connection, model: str) -> int:
        with self._lock:
            self._load(conn, model)
            return self._n

    def nearest(
        self, conn: Connection, model: str, query: Vector, n: int, *, min_z: float | None = None
    ) -> list[tuple[int, float]]:
        """The ``n`` stored pks most similar to ``query`` (cosine), best first; with
        ``min_z`` only those that many standard deviations above the mean similarity."""
        with self._lock:
            self._load(conn, model)
            rows, pks, count = self._rows, self._pks, self._n
        if count == 0 or n <= 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (rows.shape[1],):
            return []  # another model's vector: nothing is comparable
        scores = rows[:count] @ q
        k = min(n, count)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((pks[top], -scores[top]))]  # best first; ties: older item
        if min_z is not None:
            spread = float(scores.std())
            if spread <= 1e-6:
                return []  # all alike: none stands out
            top = top[scores[top] >= float(scores.mean()) + min_z * spread]
        return [(int(pks[i]), float(scores[i])) for i in top]

    def _load(self, conn: Connection, model: str) -> None:
        if not self._stale and model == self._model:
            return
        got = conn.exec_driver_sql(
            "SELECT item_pk, vector FROM item_vectors WHERE model = ? ORDER BY item_pk", (model,)
        ).all()
        pks = np.fromiter((int(r[0]) for r in got), dtype=np.int64, count=len(got))
        if got:
            dim = len(got[0][1]) // 2
            raw = b"".join(r[1] for r in got if len(r[1]) == 2 * dim)
            if len(raw) != 2 * dim * len(got):  # mixed dimensions under one model id
                keep = [i for i, r in enumerate(got) if len(r[1]) == 2 * dim]
                pks = pks[keep]
            rows = np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(len(pks), dim)
        else:
            rows = np.empty((0, 0), dtype=np.float32)
        self._rows, self._pks, self._n = rows, pks, len(pks)
        self._model, self._stale = model, False
