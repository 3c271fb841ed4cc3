"""Item vectors in the store: stored with their text, gone with it, searched exactly,
fused with BM25 by rank."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from common.errors import InvalidArgument
from edge_agent.context import vectors
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

MODEL = "test-model"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def note(body: str, **kw: object) -> NewItem:
    return NewItem(kind="note", body=body, **kw)  # type: ignore[arg-type]


def embed_all(store: ContextStore, by_text: dict[str, np.ndarray], model: str = MODEL) -> int:
    rows = [(i, at, by_text[text]) for i, at, text in store.unembedded(model, limit=1000)]
    return store.put_vectors(model, rows)


def file_bytes(path: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


def test_nearest_is_exact_cosine_order(store: ContextStore) -> None:
    rng = np.random.default_rng(7)
    bodies = [f"note number {i}" for i in range(40)]
    ids = store.put([note(b) for b in bodies])
    vecs = {b: unit(*rng.normal(size=16)) for b in bodies}
    assert embed_all(store, vecs) == 40
    query = unit(*rng.normal(size=16))
    stored = np.stack([vecs[b].astype(np.float16).astype(np.float32) for b in bodies])
    want = [ids[i] for i in np.argsort(-(stored @ query), kind="stable")[:10]]
    assert [h.item.id for h in store.nearest(query, MODEL, limit=10)] == want
    # the in-memory copy, extended in place, agrees with a fresh load from the file
    store._vectors.invalidate()
    assert [h.item.id for h in store.nearest(query, MODEL, limit=10)] == want


def fillers(store: ContextStore, n: int, dim: int, seed: int = 3) -> dict[str, np.ndarray]:
    """``n`` unrelated items with random vectors in dimensions 3 .. dim - 2."""
    rng = np.random.default_rng(seed)
    bodies = [f"filler item {i}" for i in range(n)]
    store.put([note(b) for b in bodies])
    return {b: unit(0, 0, 0, *rng.normal(size=dim - 4), 0) for b in bodies}


def test_hybrid_finds_what_words_miss_and_ranks_agreement_first(store: ContextStore) -> None:
    vecs = fillers(store, 40, 12)
    a, b, c = store.put([
        note("Dentist appointment on Tuesday at 3pm"),
        note("Appointment with the accountant about taxes"),
        note("Dr. Lee's practice: teeth cleaning booked"),
    ])
    pad = (0.0,) * 9
    vecs |= {
        "Dentist appointment on Tuesday at 3pm": unit(1, 0.2, 0, *pad),
        "Appointment with the accountant about taxes": unit(0, 1, 0.3, *pad),
        "Dr. Lee's practice: teeth cleaning booked": unit(0.9, 0, 0.3, *pad),
    }
    assert embed_all(store, vecs) == 43
    query = unit(1, 0.1, 0.1, *pad)  # "when do I see the dentist", say
    lexical = [h.item.id for h in store.search("dentist appointment")]
    assert c not in lexical
    hybrid = [h.item.id for h in store.search("dentist appointment", vector=query, vector_model=MODEL)]
    assert hybrid[0] == a  # first in both lists
    assert set(hybrid) == {a, b, c}  # the teeth cleaning comes from the vectors alone
    scores = [h.score for h in store.search("dentist appointment", vector=query, vector_model=MODEL)]
    assert scores == sorted(scores, reverse=True)
    retrieved = store.retrieve("dentist appointment", token_budget=500, count_tokens=len,
                               vector=query, vector_model=MODEL)
    assert {i.id for i in retrieved.items} == {a, b, c}  # no filler: they do not stand out
    # a prompt about nothing stored retrieves nothing, words or vectors
    elsewhere = unit(0, 0, 0, *pad[:-1], 1)  # like no stored item
    assert store.retrieve("capital of France", token_budget=500, count_tokens=len,
                          vector=elsewhere, vector_model=MODEL).items == ()


def test_a_small_store_ranks_by_words_alone(store: ContextStore) -> None:
    a, _b = store.put([note("dentist visit"), note("teeth cleaning")])
    assert embed_all(store, {"dentist visit": unit(1, 0), "teeth cleaning": unit(0.9, 0.1)}) == 2
    hits = store.search("dentist", vector=unit(0.95, 0.05), vector_model=MODEL)
    assert [h.item.id for h in hits] == [a]  # two vectors cannot stand out from each other


def test_filters_apply_to_vector_candidates(store: ContextStore) -> None:
    n, e = store.put([note("alpha words"), NewItem(kind="email", body="alpha mail", sensitivity="secret")])
    assert embed_all(store, {"alpha words": unit(1, 0), "alpha mail": unit(1, 0.01)}) == 2
    hits = store.search("alpha", kinds=["note"], vector=unit(1, 0), vector_model=MODEL)
    assert [h.item.id for h in hits] == [n]
    hits = store.search("alpha", sensitivities=["secret"], vector=unit(1, 0), vector_model=MODEL)
    assert [h.item.id for h in hits] == [e]


def test_a_changed_item_loses_its_vector_and_a_stale_one_is_not_stored(store: ContextStore) -> None:
    (a,) = store.put([note("first text", source="s", source_id="1")])
    pending = store.unembedded(MODEL)
    assert [(i, t) for i, _, t in pending] == [(a, "first text")]
    store.put([note("second text", source="s", source_id="1")])  # same item, new body
    assert store.put_vectors(MODEL, [(a, pending[0][1], unit(1, 0))]) == 0  # computed from old text
    assert store.vector_count(MODEL) == 0
    assert embed_all(store, {"second text": unit(1, 0)}) == 1
    assert [h.item.id for h in store.nearest(unit(1, 0), MODEL)] == [a]
    store.put([note("third text", source="s", source_id="1")])
    assert store.vector_count(MODEL) == 0  # the trigger dropped it with the old body
    assert store.nearest(unit(1, 0), MODEL) == []
    assert [t for _, _, t in store.unembedded(MODEL)] == ["third text"]
    # a re-import of the same text keeps the vector
    assert embed_all(store, {"third text": unit(1, 0)}) == 1
    store.put([note("third text", source="s", source_id="1")])
    assert store.vector_count(MODEL) == 1


def test_forgotten_items_take_their_vectors_out_of_the_file(store: ContextStore) -> None:
    keep, gone = store.put([note("keep this"), note("forget this")])
    secret = unit(*np.linspace(0.1, 3.3, 64))
    assert embed_all(store, {"keep this": unit(*np.linspace(-1, 1, 64)), "forget this": secret}) == 2
    blob = vectors.encode(secret)
    assert blob in file_bytes(store.path)
    assert [h.item.id for h in store.nearest(secret, MODEL, limit=1)] == [gone]
    assert store.delete(ids=[gone]) == 1
    assert [h.item.id for h in store.nearest(secret, MODEL, limit=5)] == [keep]
    assert store.vector_count(MODEL) == 1
    assert blob not in file_bytes(store.path)


def test_expired_items_are_not_found_by_vector(store: ContextStore) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    (a,) = store.put([note("short lived", expires_at=soon)])
    assert embed_all(store, {"short lived": unit(1, 0)}) == 1
    assert [h.item.id for h in store.nearest(unit(1, 0), MODEL)] == [a]
    import time

    time.sleep(1.1)
    assert store.nearest(unit(1, 0), MODEL) == []


def test_models_do_not_mix(store: ContextStore) -> None:
    store.put([note("some text")])
    assert embed_all(store, {"some text": unit(1, 0)}, model="old") == 1
    assert store.nearest(unit(1, 0), "new") == []
    assert [t for _, _, t in store.unembedded("new")] == ["some text"]
    assert store.nearest(unit(1, 0, 0), "old") == []  # another dimension: not comparable
    assert store.drop_vectors(keep_model="new") == 1
    assert store.nearest(unit(1, 0), "old") == []
    with pytest.raises(InvalidArgument, match="vector_model"):
        store.search("some", vector=unit(1, 0))


def test_vectors_survive_reopening(tmp_path: Path) -> None:
    with ContextStore(tmp_path / "c.db", purge_interval_s=None) as s:
        (a,) = s.put([note("durable")])
        embed_all(s, {"durable": unit(0.6, 0.8)})
    with ContextStore(tmp_path / "c.db", purge_interval_s=None) as s:
        hits = s.nearest(unit(0.6, 0.8), MODEL)
        assert [h.item.id for h in hits] == [a]
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_fuse_is_reciprocal_rank() -> None:
    got = vectors.fuse([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.8)]], limit=3)
    assert [pk for pk, _ in got] == [2, 1, 3]
    assert got[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert got[1][1] == pytest.approx(1 / 61)


def test_stats_count_vectors_by_model(store: ContextStore) -> None:
    store.put([note("one"), note("two")])
    assert store.stats()["vectors"] == {}
    embed_all(store, {"one": unit(1, 0), "two": unit(0, 1)})
    assert store.stats()["vectors"] == {MODEL: 2}
