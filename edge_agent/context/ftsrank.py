"""Loading ``bm25_df``, the store's ranking function, into its SQLite connections.

``bm25_df`` (``native/ftsrank.c``, built with the package) computes FTS5's BM25 from
document frequencies the store passes in, instead of counting every query word's
matches over the whole index on each query as ``bm25()`` does. Where it could not be
built (no C compiler or SQLite headers) or the driver cannot load extensions, the store
ranks with ``bm25()``: the same scores, at a cost that grows with the store.

The library is only ever loaded from beside this file, and extension loading is switched
off again before the connection is used, so SQL cannot load anything.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.sqlite import driver

#: The built extension, or None where it is missing or cannot be loaded.
LIBRARY: Path | None = min(Path(__file__).parent.glob("_ftsrank*.so"), default=None)
if not hasattr(driver.Connection, "enable_load_extension"):
    LIBRARY = None


def load(dbapi_connection: sqlite3.Connection) -> None:
    """Register ``bm25_df`` on ``dbapi_connection``."""
    assert LIBRARY is not None
    dbapi_connection.enable_load_extension(True)
    try:
        dbapi_connection.load_extension(str(LIBRARY))
    finally:
        dbapi_connection.enable_load_extension(False)
