"""Forget means forget: by id, source, query or everything, gone from index and file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.errors import InvalidArgument, NotFound
from common.sqlite import driver as sqlite3  # the SQLite the store runs on
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

# Words the porter stemmer leaves as they are, each with a first letter no other word of
# the secret item has, so FTS5's prefix compression stores every one of them verbatim.
MARKERS = ("qzxwvk", "jzxwvk", "kzxwvk", "yzxwvk", "xzxwvk")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def note(body: str, **kw: object) -> NewItem:
    return NewItem(kind="note", body=body, **kw)  # type: ignore[arg-type]


def file_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            data += part.read_bytes()
    return data


def test_forget_by_id_source_query_everything(store: ContextStore) -> None:
    a, _b, c, d, e = store.put(
        [
            note("red apples", source="orchard"),
            note("green apples", source="orchard", source_id="g"),
            note("red cherries"),
            note("apples and pears"),
            note("keep me"),
        ]
    )
    assert store.delete(ids=[a, "no-such-id"]) == 1
    with pytest.raises(NotFound):
        store.get(a)
    assert store.delete(source="orchard") == 1
    assert [h.item.id for h in store.search("green")] == []
    assert store.delete(query="apples pears") == 1  # all words must be present
    assert store.get(c).body == "red cherries"
    assert {h.item.id for h in store.search("apples pears cherries")} == {c}
    assert store.delete(everything=True) == 2
    assert store.search("keep") == []
    assert store.stats()["items"] == 0
    assert d and e


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"ids": ["x"], "source": "s"}, {"query": "a", "everything": True}, {"query": "?!"},
     {"source": ""}, {"ids": "abc"}],
)
def test_forget_needs_exactly_one_valid_selector(store: ContextStore, kwargs: dict) -> None:
    store.put([note("untouched")])
    with pytest.raises(InvalidArgument):
        store.delete(**kwargs)
    assert store.stats()["items"] == 1


def test_query_forget_treats_operators_as_words(store: ContextStore) -> None:
    store.put([note("alpha beta"), note("alpha gamma")])
    assert store.delete(query="alpha OR gamma") == 0  # "or" is a word here, in neither item
    assert store.delete(query='"alpha" (gamma') == 1
    assert [h.item.body for h in store.search("alpha")] == ["alpha beta"]


def test_forgotten_text_is_gone_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    store = ContextStore(path, purge_interval_s=None)
    filler = [note(f"ordinary note number {i} about daily things") for i in range(300)]
    store.put(filler)
    [secret] = store.put(
        [
            NewItem(
                kind="email",
                title=f"subject {MARKERS[1]}",
                body=f"the launch code is {MARKERS[0]} " + "padding " * 200,
                participants=(f"Mr {MARKERS[2]}",),
                tags=(MARKERS[3],),
                source=f"mbox:{MARKERS[4]}",
                source_id="m1",
            )
        ]
    )
    # Few enough writes that FTS5's automatic merging has not rewritten the index yet:
    # without an explicit merge on delete, the index would still hold the words.
    store._checkpoint()
    before = file_bytes(path)
    for marker in MARKERS:
        assert marker.encode() in before  # the scan can see the text while it is stored

    assert store.delete(ids=[secret]) == 1
    assert store.search(MARKERS[0]) == []
    assert store.search(MARKERS[3]) == []
    after_delete = file_bytes(path)
    store.vacuum()
    after_vacuum = file_bytes(path)
    store.close()
    for marker in MARKERS:
        assert marker.encode() not in after_delete
        assert marker.encode() not in after_vacuum
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", (MARKERS[0],)
        ).fetchone()
        assert rows == (0,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")


def test_expired_items_are_invisible_and_purged(store: ContextStore, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    gone, kept = store.put(
        [
            note("stale coupon code", expires_at=now - timedelta(seconds=1)),
            note("fresh coupon code", expires_at=now + timedelta(days=1)),
        ]
    )
    assert [h.item.id for h in store.search("coupon")] == [kept]
    with pytest.raises(NotFound):
        store.get(gone)
    assert store.stats()["items"] == 1
    assert store.purge_expired() == 1
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)


def test_expired_text_is_gone_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    with ContextStore(path, purge_interval_s=None) as store:
        store.put([note(f"ordinary note {i}") for i in range(50)])
        soon = datetime.now(UTC) + timedelta(seconds=0.3)
        store.put([note(f"one time code {MARKERS[0]}", expires_at=soon)])
        store._checkpoint()
        assert MARKERS[0].encode() in file_bytes(path)
        time.sleep(0.4)
        store._last_purge = 0.0  # writes purge at most once a second: let this one
        store.put([note("a later write purges the expired item")])
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (51,)
        assert store.purge_expired() == 0  # already deleted by the write; now scrubbed
        assert MARKERS[0].encode() not in file_bytes(path)
        soon = datetime.now(UTC) + timedelta(seconds=0.3)
        store.put([note(f"another code {MARKERS[1]}", expires_at=soon)])
        time.sleep(0.4)
        assert store.purge_expired() == 1
        assert MARKERS[1].encode() not in file_bytes(path)


def test_purge_runs_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    with ContextStore(path, purge_interval_s=0.1) as store:
        soon = datetime.now(UTC) + timedelta(seconds=0.3)
        store.put([note("short lived", expires_at=soon), note("long lived")])
        deadline = time.monotonic() + 5
        count = 2
        while time.monotonic() < deadline:
            with sqlite3.connect(path) as conn:
                (count,) = conn.execute("SELECT count(*) FROM items").fetchone()
            if count == 1:
                break
            time.sleep(0.05)
        assert count == 1


def test_expired_items_are_purged_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    with ContextStore(path, purge_interval_s=None) as store:
        store.put([note("short lived", expires_at=datetime.now(UTC) + timedelta(seconds=0.2))])
    time.sleep(0.3)
    with ContextStore(path, purge_interval_s=None):
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_a_store_written_under_the_merge_rule_switches_to_in_place_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.context.store as store_module

    path = tmp_path / "ctx.db"
    monkeypatch.setattr(store_module, "SQLITE_VERSION", (3, 40, 1))  # as on an old SQLite
    with ContextStore(path, purge_interval_s=None) as old:
        assert not old.deletes_in_place
        old.put([note(f"ordinary note {i}") for i in range(30)] + [note(f"code {MARKERS[0]}")])
    monkeypatch.undo()
    with ContextStore(path, purge_interval_s=None) as store:
        assert store.deletes_in_place
        [hit] = store.search(MARKERS[0])
        assert store.delete(ids=[hit.item.id]) == 1
        assert store.search(MARKERS[0]) == []
        assert MARKERS[0].encode() not in file_bytes(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM items_fts_config WHERE k = 'secure-delete'").fetchone() == (1,)
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
