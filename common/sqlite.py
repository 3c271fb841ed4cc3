"""SQLAlchemy engine for the project's SQLite files (the context store and the egress
ledger): pragmas and transaction mode.

Pragmas are set on every new DBAPI connection by an engine ``connect`` listener:

* ``journal_mode=WAL``: readers never block the writer;
* ``synchronous=FULL``: a committed transaction is on disk when ``COMMIT`` returns, so an
  acknowledged write survives ``kill -9`` and power loss;
* ``foreign_keys=ON``: tag rows cascade with their item;
* ``secure_delete=ON``: deleted content is overwritten with zeros, not left in free pages;
* ``busy_timeout``: wait for a concurrent writer instead of failing at once.

The driver's own implicit transactions are switched off; a ``begin`` listener emits
``BEGIN`` itself (``BEGIN IMMEDIATE`` when a connection carries the execution option
``sqlite_begin="IMMEDIATE"``, as all writers do, so they never deadlock on a lock upgrade).
This is the recipe SQLAlchemy documents for pysqlite.

The driver is ``pysqlite3`` (``pysqlite3-binary``: the same DB-API module built with a
current SQLite) where it is installed, else the standard library's ``sqlite3``. The
bundled SQLite (3.51) makes every machine run the same SQL engine and brings FTS5's
``secure-delete`` (3.42+), which lets the context store forget items in time
proportional to what it forgets instead of rewriting the whole search index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, create_engine, event

try:  # a current SQLite, the same on every machine
    from pysqlite3 import dbapi2 as driver
except ImportError:  # pragma: no cover - platforms without the binary wheel
    driver = sqlite3  # type: ignore[misc,unused-ignore]

__all__ = ["BUSY_TIMEOUT_MS", "CACHE_KIB", "MMAP_BYTES", "SQLITE_VERSION", "driver", "make_engine",
           "raw_cursor"]

#: The SQLite library version the project's databases run on.
SQLITE_VERSION: tuple[int, ...] = tuple(int(x) for x in driver.sqlite_version.split("."))

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 32_768
MMAP_BYTES = 1 << 30

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    "PRAGMA temp_store=MEMORY",
    f"PRAGMA mmap_size={MMAP_BYTES}",
)


def make_engine(
    path: Path,
    *,
    pool_size: int = 4,
    setup: Callable[[sqlite3.Connection], None] | None = None,
) -> Engine:
    """An engine on the SQLite file at ``path`` with the pragmas above.

    ``setup`` runs on every new DBAPI connection after the pragmas (functions,
    extensions).
    """
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        module=driver,
        connect_args={"check_same_thread": False},
        pool_size=pool_size,
        max_overflow=2 * pool_size,
    )
    event.listen(engine, "connect", _on_connect)
    if setup is not None:
        event.listen(engine, "connect", lambda dbapi, _record: setup(dbapi))
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def raw_cursor(conn: Connection) -> sqlite3.Cursor:
    """The DBAPI cursor under ``conn``, for the bulk-insert hot path."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    return cast(sqlite3.Cursor, dbapi.cursor())
