"""``bm25_df``: FTS5's BM25 from cached document frequencies, loaded into the store.

The native function must give exactly what ``bm25()`` gives, so the store ranks the
same whichever it uses; only the cost differs (``benchmarks/context_store.py``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Connection

from common.sqlite import driver as sqlite3
from edge_agent.context import ftsrank, ranking
from edge_agent.context import store as store_module
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

NOW = datetime.now(UTC)
WORDS = [f"w{i}" for i in range(60)]
ZIPF = [1.0 / (i + 1) ** 1.1 for i in range(60)]


def _corpus(seed: int, n: int) -> list[NewItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        # Zipf: low-numbered words are common, high-numbered ones rare
        body = " ".join(rng.choices(WORDS, weights=ZIPF, k=rng.randint(3, 40)))
        title = " ".join(rng.choice(WORDS[:20]) for _ in range(rng.randint(0, 4)))
        items.append(NewItem(
            kind=rng.choice(["note", "email", "message"]), title=title, body=body,
            participants=(f"{rng.choice(WORDS[10:30])} person",) if rng.random() < 0.5 else (),
            tags=(rng.choice(WORDS[:5]),) if rng.random() < 0.3 else (),
            created_at=NOW - timedelta(days=rng.randint(0, 900)),
        ))
    return items


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    s.put(_corpus(7, 3000))
    yield s
    s.close()


def test_the_built_library_is_loaded_by_the_store(store: ContextStore) -> None:
    # `make install` builds it; a silent fallback to bm25() would hide a broken build
    assert ftsrank.LIBRARY is not None
    assert store.native_ranking
    assert store._frequencies.native


def test_bm25_df_equals_bm25_bit_for_bit(store: ContextStore) -> None:
    rng = random.Random(3)
    weights = ", ".join(str(w) for w in ranking.FTS_WEIGHTS)
    with store._engine.connect() as conn:
        compared = 0
        for _ in range(40):
            words = rng.sample(WORDS, rng.randint(1, 12))
            expr = " OR ".join(f'"{w}"' for w in words)
            if rng.random() < 0.3:  # a repeated phrase, as the anchored queries have
                expr = f'("{words[0]}") AND ({expr})'
            counts = [store._frequencies.exact(conn, w) for w in ranking._PHRASE.findall(expr)]
            marks = "".join(", ?" for _ in counts)
            rows = conn.exec_driver_sql(
                f"SELECT bm25(items_fts, {weights}), bm25_df(items_fts, {weights}{marks}) "
                "FROM items_fts WHERE items_fts MATCH ?", (*counts, expr),
            ).all()
            assert all(builtin == ours for builtin, ours in rows), expr
            compared += len(rows)
        assert compared > 10_000


def test_search_and_retrieval_rank_the_same_with_either(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = time.time()  # the recency factor depends on the clock
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: frozen, monotonic=time.monotonic))
    rng = random.Random(5)
    queries = [" ".join(rng.sample(WORDS, rng.randint(1, 8))) for _ in range(60)]
    def run() -> list[list[tuple[str, float]]]:
        out = []
        for i, q in enumerate(queries):
            filters = {"kinds": ["email"]} if i % 3 == 0 else {}
            out.append([(h.item.id, h.score) for h in store.search(q, limit=7, **filters)])
            got = store.retrieve(q, token_budget=300, count_tokens=len)
            out.append([(item.id, 0.0) for item in got.items])
        return out
    native = run()
    store._frequencies.native = False
    builtin = run()
    assert native == builtin
    assert sum(len(r) for r in native) > 300


def test_counts_follow_writes(store: ContextStore) -> None:
    before = len(store.search("zebra"))
    assert before == 0
    store.put([NewItem(kind="note", body="zebra w0 w1", created_at=NOW)])
    assert [h.item.body for h in store.search("zebra")] == ["zebra w0 w1"]  # small count dropped
    store.delete(query="zebra")
    assert store.search("zebra") == []


def test_large_counts_survive_writes_and_expire(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    freq = store._frequencies
    with store._engine.connect() as conn:
        common, rare = freq.exact(conn, "w0"), freq.exact(conn, "w59")
    assert common > ranking.DF_KEEP_ON_WRITE >= rare
    calls: list[str] = []
    original = Connection.exec_driver_sql
    def counting(self: Connection, sql: str, *args: object, **kw: object) -> object:
        if sql.startswith("SELECT count(*)"):
            calls.append(sql)
        return original(self, sql, *args, **kw)  # type: ignore[arg-type]
    store.put([NewItem(kind="note", body="w0 w59", created_at=NOW)])
    monkeypatch.setattr(Connection, "exec_driver_sql", counting)
    with store._engine.connect() as conn:
        assert freq.exact(conn, "w0") == common  # kept: one item moves it by 1/3000
        assert not calls
        assert freq.exact(conn, "w59") == rare + 1  # recounted
        assert len(calls) == 1
        monkeypatch.setattr(ranking, "DF_TTL_S", 0.0)
        assert freq.exact(conn, "w0") == common + 1
        assert len(calls) == 2


def test_sql_cannot_load_extensions(store: ContextStore) -> None:
    with store._engine.connect() as conn, pytest.raises(Exception, match="not authorized"):
        conn.exec_driver_sql("SELECT load_extension(?)", (str(ftsrank.LIBRARY),)).all()


def test_wrong_arguments_are_an_error_not_a_crash(tmp_path: Path) -> None:
    db = sqlite3.connect(str(tmp_path / "x.db"))
    ftsrank.load(db)
    db.execute("CREATE VIRTUAL TABLE t USING fts5(a, b)")
    db.execute("INSERT INTO t VALUES ('x y', 'y')")
    with pytest.raises(sqlite3.OperationalError, match="expected 2 column weights and 1 document"):
        db.execute("SELECT bm25_df(t, 1.0, 2.0) FROM t WHERE t MATCH 'x'").fetchall()
    (score,) = db.execute("SELECT bm25_df(t, 1.0, 1.0, 1) FROM t WHERE t MATCH 'x'").fetchone()
    (builtin,) = db.execute("SELECT bm25(t) FROM t WHERE t MATCH 'x'").fetchone()
    assert score == builtin
    db.close()


def test_a_large_forget_drops_the_large_counts_too(store: ContextStore) -> None:
    freq = store._frequencies
    with store._engine.connect() as conn:
        common = freq.exact(conn, "w0")
    bulk = ranking.DF_KEEP_ON_WRITE + 1
    store.put([NewItem(kind="note", body="w0 bulk", source="bulk", source_id=str(i), created_at=NOW)
               for i in range(bulk)])
    freq.clear()
    with store._engine.connect() as conn:
        assert freq.exact(conn, "w0") == common + bulk
    store.put([NewItem(kind="note", body="w0 one more", created_at=NOW)])
    with store._engine.connect() as conn:
        assert freq.exact(conn, "w0") == common + bulk  # a small write keeps the large count
    assert store.delete(source="bulk") == bulk
    with store._engine.connect() as conn:
        assert freq.exact(conn, "w0") == common + 1  # a large forget recounts
    assert store.search("bulk") == []
