"""Merging the search index's segments in small steps (``ContextStore.tidy_index``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.context import store as store_module
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

NOW = datetime.now(UTC)


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContextStore]:
    monkeypatch.setattr(store_module, "MERGE_PAGES", 4)  # many steps on a small index
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    for batch in range(120):  # a store fed in small batches, as mail sync does
        s.put([NewItem(kind="note", body=f"note {batch} {i} alpha beta w{i % 7} word{batch * 5 + i}",
                       created_at=NOW) for i in range(5)])
    yield s
    s.close()


def _hits(store: ContextStore) -> list[list[str]]:
    return [[h.item.id for h in store.search(q, limit=20)] for q in ("alpha", "w3 word17", "beta w5", "word399")]


def test_tidy_merges_segments_and_keeps_every_answer(store: ContextStore) -> None:
    before, answers = store.index_segments(), _hits(store)
    assert before >= 5
    assert store.tidy_index() is True
    after = store.index_segments()
    assert after < before and after <= 2
    assert _hits(store) == answers
    assert store.tidy_index() is True  # nothing left: one no-op step
    assert store.index_segments() == after


def test_a_time_budget_stops_after_one_step(store: ContextStore) -> None:
    before = store.index_segments()
    assert store.tidy_index(0.0) is False
    assert store.index_segments() <= before
    calls = 1
    while not store.tidy_index(0.0):  # one step per call, and each step does some work
        calls += 1
        assert calls < 10_000
    assert calls >= 2 and store.index_segments() < before


def test_writers_and_readers_go_on_while_it_merges(store: ContextStore) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(20):
                store.put([NewItem(kind="note", body=f"during merge {i} gamma", created_at=NOW)])
                assert store.search("gamma", limit=50)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    store.tidy_index()
    writer.join()
    assert not errors
    assert len(store.search("gamma", limit=50)) == 20


def test_forgotten_words_stay_gone_after_merging(store: ContextStore) -> None:
    store.put([NewItem(kind="note", body="zanzibarsecret once", created_at=NOW)])
    assert store.delete(query="zanzibarsecret") == 1
    store.tidy_index()
    assert store.search("zanzibarsecret") == []
    store.close()
    data = store.path.read_bytes()
    wal = store.path.with_name(store.path.name + "-wal")
    assert b"zanzibarsecret" not in data + (wal.read_bytes() if wal.exists() else b"")
