"""Database schema of the context store and its migrations.

The schema is versioned by a one-row ``schema_version`` table. ``MIGRATIONS[n]`` takes a
database from version ``n - 1`` to ``n``; each step runs in its own ``BEGIN IMMEDIATE``
transaction together with the version bump, so a crash leaves the database at a whole
version. A database written by a newer release (a version above ``SCHEMA_VERSION``) is
refused rather than guessed at. To change the schema: add ``MIGRATIONS[n + 1]`` and bump
``SCHEMA_VERSION``; never edit a released step.

Items live in ``items``; ``items_fts`` is an FTS5 index over title, body, participants and
tags with ``items`` as its external content, kept in sync by triggers; ``item_tags`` holds
one row per tag for exact tag filters and cascades on delete. ``item_vectors`` holds an
item's embedding (by which model, float16) for vector search; it cascades on delete and a
trigger drops it when the item's title or body changes, so no vector outlives its text.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from common.errors import FailedPrecondition

SCHEMA_VERSION = 3

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("pk", Integer, primary_key=True),  # the rowid, shared with items_fts
    Column("id", String, nullable=False, unique=True),
    # Small columns first: filters and ranking read them without touching the body.
    Column("kind", String, nullable=False),
    Column("sensitivity", String, nullable=False),
    Column("created_at", Float, nullable=False),  # epoch seconds, UTC
    Column("starts_at", Float),
    Column("ends_at", Float),
    Column("expires_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("source", String, nullable=False),
    Column("source_id", String, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("participants", Text, nullable=False, server_default=""),  # "\n"-joined
    Column("tags", Text, nullable=False, server_default=""),  # "\n"-joined
    Column("body", Text, nullable=False),
    Index(
        "ix_items_source_key",
        "source",
        "source_id",
        unique=True,
        sqlite_where=text("source_id <> ''"),
    ),
    Index("ix_items_source", "source"),
    Index("ix_items_expires", "expires_at", sqlite_where=text("expires_at IS NOT NULL")),
)

item_tags = Table(
    "item_tags",
    metadata,
    Column("item_pk", Integer, ForeignKey("items.pk", ondelete="CASCADE"), primary_key=True),
    Column("tag", String, primary_key=True),
    Index("ix_item_tags_tag", "tag", "item_pk"),
    sqlite_with_rowid=False,
)

FTS_COLUMNS = ("title", "body", "participants", "tags")
#: BM25 weights, in FTS_COLUMNS order: a word in the title counts double.
FTS_WEIGHTS = (2.0, 1.0, 1.5, 1.0)

_EXTRA_DDL = (
    # The item's time (event start, else creation): recency listing and time filters.
    "CREATE INDEX ix_items_time ON items (coalesce(starts_at, created_at))",
    (
        "CREATE VIRTUAL TABLE items_fts USING fts5("
        "title, body, participants, tags, content='items', content_rowid='pk', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    ),
    # Merge index segments 8 at a time (default 4): about 15% less work per import for
    # a few more segments to look up per query word.
    "INSERT INTO items_fts(items_fts, rank) VALUES ('automerge', 8)",
    (
        "CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN "
        "INSERT INTO items_fts(rowid, title, body, participants, tags) "
        "VALUES (new.pk, new.title, new.body, new.participants, new.tags); END"
    ),
    (
        "CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN "
        "INSERT INTO items_fts(items_fts, rowid, title, body, participants, tags) "
        "VALUES ('delete', old.pk, old.title, old.body, old.participants, old.tags); END"
    ),
    (
        "CREATE TRIGGER items_fts_au AFTER UPDATE OF title, body, participants, tags ON items "
        "BEGIN "
        "INSERT INTO items_fts(items_fts, rowid, title, body, participants, tags) "
        "VALUES ('delete', old.pk, old.title, old.body, old.participants, old.tags); "
        "INSERT INTO items_fts(rowid, title, body, participants, tags) "
        "VALUES (new.pk, new.title, new.body, new.participants, new.tags); END"
    ),
)


class SchemaError(FailedPrecondition):
    """The database cannot be used by this release (e.g. written by a newer one)."""


def _migrate_to_1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[items, item_tags])
    for statement in _EXTRA_DDL:
        conn.exec_driver_sql(statement)


def _migrate_to_2(conn: Connection) -> None:
    # Durable maintenance flags: ``scrub_pending`` is set in the same transaction that
    # leaves forgotten words in the search index (a replaced or expired item), and
    # cleared by the scrub, so a restart finishes a scrub the last run did not.
    conn.exec_driver_sql(
        "CREATE TABLE maintenance (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
    )
    conn.exec_driver_sql("INSERT INTO maintenance VALUES ('scrub_pending', '1')")


def _migrate_to_3(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE item_vectors ("
        "item_pk INTEGER PRIMARY KEY REFERENCES items (pk) ON DELETE CASCADE, "
        "model TEXT NOT NULL, vector BLOB NOT NULL)"
    )
    conn.exec_driver_sql("CREATE INDEX ix_item_vectors_model ON item_vectors (model)")
    conn.exec_driver_sql(
        "CREATE TRIGGER item_vectors_au AFTER UPDATE OF title, body ON items "
        "WHEN old.title IS NOT new.title OR old.body IS NOT new.body BEGIN "
        "DELETE FROM item_vectors WHERE item_pk = old.pk; END"
    )


#: ``MIGRATIONS[n]`` upgrades a database from version ``n - 1`` to ``n``.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3,
}


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 for an empty file)."""
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).first()
    if exists is None:
        return 0
    row = conn.exec_driver_sql("SELECT version FROM schema_version").first()
    return 0 if row is None else int(row[0])


def set_version(conn: Connection, version: int) -> None:
    """Record ``version`` in the one-row version table (created when missing)."""
    metadata.create_all(conn, tables=[schema_version])
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=version))


def upgrade(
    engine: Engine,
    *,
    target: int = SCHEMA_VERSION,
    migrations: dict[int, Callable[[Connection], None]] | None = None,
) -> int:
    """Bring the database to ``target``, one committed step at a time; return the version."""
    steps = MIGRATIONS if migrations is None else migrations
    with engine.connect() as conn:
        version = current_version(conn)
        conn.rollback()
    if version > target:
        raise SchemaError(
            f"context database has schema version {version}, newer than this release "
            f"supports ({target}); upgrade edge-agent"
        )
    while version < target:
        step = steps.get(version + 1)
        if step is None:
            raise SchemaError(f"no migration to context schema version {version + 1}")
        writer = engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        with writer as conn, conn.begin():
            found = current_version(conn)
            if found == version:
                step(conn)
                set_version(conn, version + 1)
        version = version + 1 if found == version else found  # else: another process did it
    return version
