"""Schema versioning, migrations, pragmas and the FTS triggers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection

from common.sqlite import driver as sqlite3  # the SQLite the store runs on
from common.sqlite import make_engine
from edge_agent.context import schema
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore


def test_new_database_is_at_current_version(tmp_path: Path) -> None:
    with ContextStore(tmp_path / "c.db", purge_interval_s=None) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (schema.SCHEMA_VERSION,)
        ]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"items", "item_tags", "items_fts", "items_fts_ai", "items_fts_ad", "items_fts_au"} <= names


def test_newer_database_is_refused(tmp_path: Path) -> None:
    ContextStore(tmp_path / "c.db", purge_interval_s=None).close()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(schema.SchemaError, match="newer"):
        ContextStore(tmp_path / "c.db", purge_interval_s=None)


def test_upgrade_applies_new_steps_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with ContextStore(path, purge_interval_s=None) as store:
        [item_id] = store.put([NewItem(kind="note", body="survives the migration")])

    def to_next(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE items ADD COLUMN language TEXT")

    nxt = schema.SCHEMA_VERSION + 1
    steps = {**schema.MIGRATIONS, nxt: to_next}
    engine = make_engine(path)
    try:
        assert schema.upgrade(engine, target=nxt, migrations=steps) == nxt
        assert schema.upgrade(engine, target=nxt, migrations=steps) == nxt  # idempotent
    finally:
        engine.dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (nxt,)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
        assert "language" in columns
        assert conn.execute("SELECT body FROM items WHERE id = ?", (item_id,)).fetchone() == (
            "survives the migration",
        )


def test_failed_migration_step_leaves_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    ContextStore(path, purge_interval_s=None).close()

    def broken(conn: Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE items ADD COLUMN half_done TEXT")
        raise RuntimeError("boom")

    engine = make_engine(path)
    try:
        with pytest.raises(RuntimeError):
            nxt = schema.SCHEMA_VERSION + 1
            schema.upgrade(engine, target=nxt, migrations={**schema.MIGRATIONS, nxt: broken})
    finally:
        engine.dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (
            schema.SCHEMA_VERSION,
        )
        assert "half_done" not in {row[1] for row in conn.execute("PRAGMA table_info(items)")}


def test_pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "c.db")
    try:
        results: list[tuple[object, ...]] = []

        def check() -> None:
            with engine.connect() as conn:
                results.append(
                    tuple(
                        conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                        for name in ("journal_mode", "foreign_keys", "synchronous", "secure_delete")
                    )
                )

        threads = [threading.Thread(target=check) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [("wal", 1, 2, 1)] * 3  # synchronous 2 = FULL
    finally:
        engine.dispose()


def test_tags_cascade_and_fts_follows_updates(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with ContextStore(path, purge_interval_s=None) as store:
        [item_id] = store.put([NewItem(kind="note", body="alpha", tags=("t1", "t2"))])
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("UPDATE items SET body = 'omega' WHERE id = ?", (item_id,))
        assert store.search("alpha") == []
        assert [h.item.id for h in store.search("omega")] == [item_id]
        store.delete(ids=[item_id])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM item_tags").fetchone() == (0,)
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
