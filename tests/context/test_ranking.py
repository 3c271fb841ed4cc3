"""The bounded search planner: exact when small, anchored on rare words, capped otherwise.

``SCORE_CAP`` is lowered so a small corpus exercises every path of the planner.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.context import ranking
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

NOW = datetime.now(UTC)


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContextStore]:
    monkeypatch.setattr(ranking, "SCORE_CAP", 8)
    monkeypatch.setattr(ranking, "RERANK_MIN", 3)
    monkeypatch.setattr(ranking, "SCAN_FACTOR", 1)
    monkeypatch.setattr(ranking, "CAP_PER_LIMIT", 1)
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def note(body: str, **kw: Any) -> NewItem:
    kw.setdefault("kind", "note")
    kw.setdefault("created_at", NOW)
    return NewItem(body=body, **kw)


def bodies(hits: list) -> list[str]:
    return [h.item.body for h in hits]


def test_exact_when_matches_fit(store: ContextStore) -> None:
    store.put([note(f"filler {i}") for i in range(20)])
    store.put([note("kiwi once"), note("kiwi kiwi kiwi twice"), note("mango")])
    hits = store.search("kiwi mango", limit=10)
    assert set(bodies(hits)) == {"kiwi once", "kiwi kiwi kiwi twice", "mango"}


def test_rare_words_anchor_the_candidates(store: ContextStore) -> None:
    store.put([note(f"common word number {i}") for i in range(30)])
    store.put([note("common and zanzibar together"), note("zanzibar alone")])
    store.put([note(f"common again {i}") for i in range(30)])
    hits = store.search("zanzibar common", limit=2)
    # Both rare-word items are found although 60 newer/older items match "common".
    assert set(bodies(hits)) == {"common and zanzibar together", "zanzibar alone"}
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_few_anchor_hits_are_filled_with_common_matches(store: ContextStore) -> None:
    store.put([note(f"common word number {i}") for i in range(30)])
    store.put([note("zanzibar alone")])
    hits = store.search("zanzibar common", limit=5)
    assert len(hits) == 5
    assert "zanzibar alone" in bodies(hits)
    assert all("common" in b or "zanzibar" in b for b in bodies(hits))


def test_all_common_words_prefer_items_with_all_of_them(store: ContextStore) -> None:
    store.put([note(f"filler {i}") for i in range(100)])  # both words keep a real IDF
    store.put([note(f"alpha {i}") for i in range(20)] + [note(f"beta {i}") for i in range(20)])
    store.put([note("alpha beta both")])
    store.put([note(f"alpha {i} later") for i in range(5)])
    hits = store.search("alpha beta", limit=3)
    assert len(hits) == 3
    assert hits[0].item.body == "alpha beta both"


def test_capped_search_applies_filters_before_the_cap(store: ContextStore) -> None:
    old = NOW - timedelta(days=300)
    store.put([note("common event long ago", kind="event", starts_at=old, ends_at=old,
                    created_at=old)])
    store.put([note(f"common note {i}") for i in range(40)])
    hits = store.search("common", kinds=["event"], limit=5)
    assert bodies(hits) == ["common event long ago"]
    hits = store.search("common", until=NOW - timedelta(days=100), limit=5)
    assert bodies(hits) == ["common event long ago"]


def test_matches_beyond_the_cap_come_from_the_newest(store: ContextStore) -> None:
    store.put([note(f"common {i}") for i in range(30)])
    newest = store.put([note(f"common {i} newest") for i in range(8)])  # SCORE_CAP items
    hits = store.search("common", limit=3)
    assert len(hits) == 3
    assert {h.item.id for h in hits} <= set(newest)


def test_document_frequencies_are_cached_and_refreshed(store: ContextStore) -> None:
    store.put([note("papaya")])
    assert len(store.search("papaya")) == 1
    store.put([note("papaya again")])
    assert len(store.search("papaya")) == 2  # writes clear the cache
    store.delete(query="papaya")
    assert store.search("papaya") == []


def test_capped_search_never_returns_expired_items(store: ContextStore) -> None:
    store._last_purge = float("inf")  # keep the expired row in the table for this test
    store.put([note(f"common {i}") for i in range(30)])
    [gone] = store.put([note("common common common", expires_at=NOW - timedelta(seconds=1))])
    with store._read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM items").scalar() == 31
    hits = store.search("common", limit=3)
    assert len(hits) == 3
    assert gone not in {h.item.id for h in hits}
