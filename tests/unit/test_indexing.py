"""The background indexer and the prompt's vector: embeds what has no vector, only when
the model is idle, never what it cannot embed twice, and starts over for a new model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from common.errors import OutOfRange
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore
from edge_agent.pipeline.indexing import VectorSearch


class FakeEmbedder:
    """Deterministic vectors: one dimension per known word."""

    WORDS = ("dentist", "teeth", "invoice", "plumber", "flight", "airport")

    def __init__(self, model_id: str = "fake:1") -> None:
        self.model_id = model_id
        self.calls: list[list[str]] = []
        self.refuse: set[str] = set()
        self.closed = False

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        for i, t in enumerate(texts):
            if t in self.refuse:
                raise OutOfRange(f"input[{i}]", "too long")
        out = np.zeros((len(texts), len(self.WORDS) + 1), dtype=np.float32)
        for r, t in enumerate(texts):
            for c, w in enumerate(self.WORDS):
                out[r, c] = t.lower().count(w)
            out[r, -1] = 0.1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def note(body: str) -> NewItem:
    return NewItem(kind="note", body=body)


def test_embeds_newest_first_in_batches_only_when_idle(store: ContextStore) -> None:
    store.put([note(f"note {i} about the dentist") for i in range(5)])
    emb = FakeEmbedder()
    busy = [True]
    search = VectorSearch(store, emb, idle=lambda: not busy[0], batch=2)

    async def go() -> None:
        assert await search.step() is True  # busy: waited, embedded nothing
        assert emb.calls == [] and store.vector_count(emb.model_id) == 0
        busy[0] = False
        assert await search.step() is True
        assert emb.calls == [["note 4 about the dentist", "note 3 about the dentist"]]
        while await search.step():
            pass
        assert store.vector_count(emb.model_id) == 5 and search.embedded == 5
        assert len(emb.calls) == 3

    asyncio.run(go())


def test_prompt_vector_only_once_the_store_has_vectors(store: ContextStore) -> None:
    store.put([note(f"unrelated note {i}") for i in range(30)])
    dentist, _invoice = store.put([note("Dr. Lee: teeth cleaning booked"), note("Invoice from the plumber")])
    emb = FakeEmbedder()
    search = VectorSearch(store, emb, idle=lambda: True)

    async def go() -> None:
        assert await search.query_vector("when do I see the dentist about my teeth") is None
        while await search.step():
            pass
        got = await search.query_vector("when do I see the dentist about my teeth")
        assert got is not None
        vec, model = got
        assert model == emb.model_id
        hits = store.search("dentist", vector=vec, vector_model=model)
        assert hits[0].item.id == dentist  # found by its vector: no word in common

    asyncio.run(go())


def test_a_text_the_model_refuses_is_skipped_once(store: ContextStore) -> None:
    store.put([note("fine text"), note("too long text"), note("other fine text")])
    emb = FakeEmbedder()
    emb.refuse.add("too long text")
    search = VectorSearch(store, emb, idle=lambda: True, batch=8)

    async def go() -> None:
        while await search.step():
            pass
        assert store.vector_count(emb.model_id) == 2
        calls = len(emb.calls)
        assert await search.step() is False  # nothing left to try
        assert len(emb.calls) == calls

    asyncio.run(go())


def test_a_new_model_drops_the_old_vectors(store: ContextStore) -> None:
    store.put([note("flight to the airport"), note("invoice")])
    old = FakeEmbedder("fake:old")
    search = VectorSearch(store, old, idle=lambda: True)

    async def go() -> None:
        while await search.step():
            pass
        assert store.vector_count("fake:old") == 2
        search.embedder = new = FakeEmbedder("fake:new")
        assert await search.query_vector("airport") is None  # not comparable to the old ones
        while await search.step():
            pass
        assert store.vector_count("fake:old") == 0
        assert store.vector_count("fake:new") == 2
        await search.stop()
        assert new.closed

    asyncio.run(go())


def test_written_wakes_the_background_task(store: ContextStore) -> None:
    emb = FakeEmbedder()
    search = VectorSearch(store, emb, idle=lambda: True, poll_s=3600)

    async def go() -> None:
        search.start()
        await asyncio.sleep(0.05)
        store.put([note("teeth")])
        search.written()
        for _ in range(3000):  # up to 30 s on a slow machine; the poll interval is an hour
            if store.vector_count(emb.model_id):
                break
            await asyncio.sleep(0.01)
        assert store.vector_count(emb.model_id) == 1
        await search.stop()

    asyncio.run(go())
