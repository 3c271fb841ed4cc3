"""The context store's contract: put/upsert, validation with field paths, search and
filters, contact names, run on both twins (``ContextStore`` and the fakes'
``MemoryStore``, through the parametrized ``store`` fixture) so the fake cannot drift;
and what only the SQLite store has (``get``, ranking, the file, threads) on ``db``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.errors import InvalidArgument, NotFound, OutOfRange
from edge_agent.context import limits
from edge_agent.context.api import Item, NewItem
from edge_agent.context.store import ContextStore
from edge_agent.pipeline.fakes import MemoryStore
from edge_agent.pipeline.ports import ContextStore as StorePort

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorePort]:
    """Each twin behind the port: the SQLite store and the fakes' ``MemoryStore``."""
    s: StorePort = ContextStore(tmp_path / "ctx.db", purge_interval_s=None) if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[ContextStore]:
    """The SQLite store alone, for what the port does not promise."""
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def fetch(store: StorePort, item_id: str) -> Item:
    """An item by id through the port (a query without words lists every item)."""
    return next(h.item for h in store.search("", limit=100) if h.item.id == item_id)


def note(body: str, **kw: object) -> NewItem:
    return NewItem(kind=kw.pop("kind", "note"), body=body, **kw)  # type: ignore[arg-type]


def test_put_get_round_trip(db: ContextStore) -> None:
    start = NOW + timedelta(days=1)
    [item_id] = db.put(
        [
            NewItem(
                kind="event",
                body="Quarterly review with finance",
                title="Review",
                source="cal",
                source_id="uid-1",
                participants=("Dana Scully", "Fox Mulder"),
                tags=(" Work ", "work", "Finance"),
                sensitivity="secret",
                created_at=NOW - timedelta(days=3),
                starts_at=start,
                ends_at=start + timedelta(hours=1),
            )
        ]
    )
    item = db.get(item_id)
    assert item.id == item_id
    assert (item.kind, item.title, item.body) == ("event", "Review", "Quarterly review with finance")
    assert item.participants == ("Dana Scully", "Fox Mulder")
    assert item.tags == ("work", "finance")  # normalised: stripped, lower case, deduped
    assert item.sensitivity == "secret"
    assert item.starts_at is not None and abs((item.starts_at - start).total_seconds()) < 1e-3
    assert item.created_at.tzinfo is not None


def test_naive_datetimes_are_utc(db: ContextStore) -> None:
    [item_id] = db.put([note("x", created_at=datetime(2024, 1, 2, 3, 4, 5))])
    assert db.get(item_id).created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_get_unknown_raises_not_found(db: ContextStore) -> None:
    with pytest.raises(NotFound):
        db.get("nope")


def test_upsert_on_source_key_keeps_id_and_replaces_content(store: StorePort) -> None:
    [first] = store.put([note("old text about apples", source="s", source_id="k", tags=("a",))])
    [again] = store.put([note("new text about pears", source="s", source_id="k", tags=("b",))])
    assert again == first
    assert fetch(store, first).body == "new text about pears"
    assert fetch(store, first).tags == ("b",)
    assert store.search("apples") == []
    assert [h.item.id for h in store.search("pears")] == [first]
    assert store.search("pears", tags=["a"]) == []
    assert store.stats()["items"] == 1


def test_empty_source_id_never_deduplicates(store: StorePort) -> None:
    ids = store.put([note("same"), note("same")])
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    ("item", "field", "error"),
    [
        (note("   "), "items[1].body", InvalidArgument),
        (note("x", kind="tweet"), "items[1].kind", InvalidArgument),
        (note("x", sensitivity="top"), "items[1].sensitivity", InvalidArgument),
        (note("x" * (limits.MAX_BODY_BYTES + 1)), "items[1].body", OutOfRange),
        (note("é" * (limits.MAX_BODY_BYTES // 2 + 1)), "items[1].body", OutOfRange),
        (note("x", title="t" * (limits.MAX_TITLE_CHARS + 1)), "items[1].title", OutOfRange),
        (note("x", tags=tuple(f"t{i}" for i in range(limits.MAX_TAGS + 1))), "items[1].tags",
         OutOfRange),
        (note("x", tags=("",)), "items[1].tags[0]", InvalidArgument),
        (note("x", participants="Bob"), "items[1].participants", InvalidArgument),
        (note("x", starts_at=NOW, ends_at=NOW - timedelta(minutes=1)), "items[1].ends_at",
         InvalidArgument),
        (note("x", source=""), "items[1].source", InvalidArgument),
    ],
)
def test_validation_names_the_field_and_writes_nothing(
    store: StorePort, item: NewItem, field: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        store.put([note("a valid first item"), item])
    assert isinstance(raised.value, InvalidArgument)
    assert raised.value.field == field
    assert store.stats()["items"] == 0  # the valid first item was not written either


def test_oversized_batch_is_refused(store: StorePort) -> None:
    with pytest.raises(OutOfRange) as raised:
        store.put([note("x")] * (limits.MAX_BATCH_ITEMS + 1))
    assert raised.value.field == "items"


def test_search_ranks_title_and_filters(store: StorePort) -> None:
    a, b, c, d = store.put(
        [
            note("we talked about the budget", title="Budget plan", tags=("work",)),
            note("budget is mentioned once here among many other words about life"),
            note("budget meeting", kind="event", starts_at=NOW + timedelta(days=1)),
            note("budget secrets", sensitivity="secret", created_at=NOW - timedelta(days=400)),
        ]
    )
    assert {h.item.id for h in store.search("budget")} == {a, b, c, d}
    assert store.search("budget")[0].item.id in {a, c}
    assert [h.item.id for h in store.search("budget", kinds=["event"])] == [c]
    assert [h.item.id for h in store.search("budget", tags=["WORK"])] == [a]
    assert [h.item.id for h in store.search("budget", tags=["work", "other"])] == []
    assert [h.item.id for h in store.search("budget", sensitivities=["secret"])] == [d]
    old = store.search("budget", until=NOW - timedelta(days=30))
    assert [h.item.id for h in old] == [d]
    recent = store.search("budget", since=NOW - timedelta(days=30))
    assert {h.item.id for h in recent} == {a, b, c}
    assert len(store.search("budget", limit=2)) == 2
    scores = [h.score for h in store.search("budget")]
    assert scores == sorted(scores, reverse=True)


def test_recency_breaks_ties(store: StorePort) -> None:
    old, new = store.put(
        [
            note("invoice from the plumber", created_at=NOW - timedelta(days=900)),
            note("invoice from the plumber", created_at=NOW - timedelta(days=1)),
        ]
    )
    assert [h.item.id for h in store.search("plumber invoice")] == [new, old]


@pytest.mark.parametrize(
    "query",
    [
        'AND OR NOT', '"unbalanced', "(((", "body:zebra", "zebra*", "NEAR(zebra, x)",
        "^zebra", "zebra -", "{title}: zebra", "'; DROP TABLE items; --", "zebra\x00",
        "ZÉBRA!!!", "c++ && zebra || ?",
    ],
)
def test_user_text_never_breaks_the_query(store: StorePort, query: str) -> None:
    [zebra] = store.put([note("a zebra crossed the road")])
    store.put([note("AND OR NOT near title body")])
    hits = store.search(query)  # must not raise
    if "zebra" in query.lower() or "zébra" in query.lower():
        assert zebra in [h.item.id for h in hits]


def test_operator_words_are_plain_words(store: StorePort) -> None:
    [ops] = store.put([note("remember to NEAR the end")])
    store.put([note("unrelated text")])
    assert [h.item.id for h in store.search("near")] == [ops]


def test_search_validation(store: StorePort) -> None:
    with pytest.raises(InvalidArgument) as raised:
        store.search("x", since=NOW, until=NOW - timedelta(days=1))
    assert raised.value.field == "until"
    with pytest.raises(InvalidArgument) as raised:
        store.search("x", kinds=["note", "tweet"])
    assert raised.value.field == "kinds[1]"
    with pytest.raises(InvalidArgument) as raised:
        store.search("x", tags="work")
    assert raised.value.field == "tags"
    with pytest.raises(InvalidArgument) as raised:
        store.search("x", kinds="note")
    assert raised.value.field == "kinds"
    with pytest.raises(OutOfRange) as raised:
        store.search("x", limit=0)
    assert raised.value.field == "limit"
    with pytest.raises(OutOfRange) as raised:
        store.search("x" * (limits.MAX_QUERY_CHARS + 1))
    assert raised.value.field == "query"


def test_query_without_words_lists_recent(store: StorePort) -> None:
    old, new = store.put(
        [note("a", created_at=NOW - timedelta(days=5)), note("b", created_at=NOW)]
    )
    assert [h.item.id for h in store.search("?!")] == [new, old]


def test_contact_names(store: StorePort) -> None:
    store.put(
        [
            note("phone 1", kind="contact", title="Zoe Quinn"),
            note("phone 2", kind="contact", title="Adam West"),
            note("not a contact", title="Nobody"),
        ]
    )
    assert store.contact_names() == ["Adam West", "Zoe Quinn"]
    store.put([note("phone 3", kind="contact", title="Bea Arthur")])
    assert store.contact_names() == ["Adam West", "Bea Arthur", "Zoe Quinn"]


def test_stats(db: ContextStore) -> None:
    db.put([note("a"), note("b", kind="email", source="mbox:x")])
    stats = db.stats()
    assert stats["items"] == 2  # "items" is the port's; the rest the SQLite store's
    assert stats["by_kind"] == {"email": 1, "note": 1}
    assert stats["top_sources"] == {"api": 1, "mbox:x": 1}
    assert stats["schema_version"] >= 1
    assert stats["db_bytes"] > 0


def test_reopen_keeps_items(tmp_path: Path) -> None:
    with ContextStore(tmp_path / "c.db", purge_interval_s=None) as first:
        [item_id] = first.put([note("persisted")])
    with ContextStore(tmp_path / "c.db", purge_interval_s=None) as second:
        assert second.get(item_id).body == "persisted"


def test_same_key_twice_in_one_batch_keeps_the_last(store: StorePort) -> None:
    first, second = store.put(
        [
            note("draft words", source="s", source_id="k", tags=("draft",)),
            note("final words", source="s", source_id="k", tags=("final",)),
        ]
    )
    assert first == second
    item = fetch(store, first)
    assert (item.body, item.tags) == ("final words", ("final",))
    assert store.search("words", tags=["draft"]) == []
    assert [h.item.id for h in store.search("words", tags=["final"])] == [first]


def test_threads_share_one_store(db: ContextStore) -> None:
    import threading

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(5):
                db.put([note(f"thread{n} batch{batch} item{i} shared") for i in range(20)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(10):
                db.search("shared", limit=5)
                db.contact_names()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert db.stats()["items"] == 3 * 5 * 20


def test_delete_by_each_selector(store: StorePort) -> None:
    a, _b, _c, d = store.put([
        note("apples and pears", source="s1"), note("apples only", source="s2"),
        note("pears only", source="s2"), note("plums"),
    ])
    assert store.delete(ids=[a]) == 1
    assert store.delete(query="apples pears") == 0  # every word of the query: none left
    assert store.delete(query="apples") == 1  # b
    assert store.delete(source="s2") == 1  # c
    assert [h.item.id for h in store.search("")] == [d]
    assert store.delete(everything=True) == 1
    assert store.stats()["items"] == 0


@pytest.mark.parametrize("selector", [{}, {"ids": ["x"], "everything": True}, {"query": "?!"}])
def test_delete_takes_exactly_one_selector(store: StorePort, selector: dict[str, object]) -> None:
    store.put([note("kept")])
    with pytest.raises(InvalidArgument):
        store.delete(**selector)  # type: ignore[arg-type]
    assert store.stats()["items"] == 1


def test_retrieve_finds_items_sharing_a_word_with_the_prompt(store: StorePort) -> None:
    dentist, _ = store.put([note("the dentist appointment is on Tuesday"), note("the milk is in the fridge")])
    got = store.retrieve("When is my dentist appointment?", token_budget=500, count_tokens=lambda t: len(t.split()))
    assert [i.id for i in got.items] == [dentist]
    assert "dentist appointment is on Tuesday" in got.text and got.tokens == len(got.text.split())
    none = store.retrieve("zzz qqq", token_budget=500, count_tokens=lambda t: len(t.split()))
    assert (none.items, none.text) == ((), "")
