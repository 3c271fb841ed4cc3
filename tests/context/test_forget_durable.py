"""Replaced and expired text leaves every file of the data directory, across restarts.

The old body of an item re-put with the same ``source_id``, and the body of an expired
item, stay in the FTS5 index pages until the index is scrubbed. The scrub is recorded
as pending in the database in the same transaction, so a stop, the purge timer or the
next start (after a crash too) completes it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.sqlite import SQLITE_VERSION
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore

OLD = ("qzxwvk", "jzxwvk", "kzxwvk")  # stored verbatim by FTS5's prefix compression
EXPIRED = ("vzxwvq", "wzxwvq", "hzxwvq")


def every_file(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def _fill(store: ContextStore, n: int) -> None:
    store.put([NewItem(kind="note", body=f"filler note number {i} about gardens") for i in range(n)])


@pytest.mark.parametrize("size", [1, 50, 400])
def test_replaced_body_is_gone_after_a_stop(tmp_path: Path, size: int) -> None:
    store = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    _fill(store, size)
    store.put([NewItem(kind="note", body=" ".join(OLD), source="notes", source_id="n1")])
    store.put([NewItem(kind="note", body="the new text", source="notes", source_id="n1")])
    store.close()
    data = every_file(tmp_path)
    assert not any(w.encode() in data for w in OLD)
    reopened = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    assert [h.item.body for h in reopened.search("new text")] == ["the new text"]
    assert reopened.search(OLD[0]) == []
    reopened.close()


@pytest.mark.parametrize("size", [1, 50, 400])
def test_expired_body_is_gone_after_purge_and_stop(tmp_path: Path, size: int) -> None:
    store = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    _fill(store, size)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    store.put([NewItem(kind="note", body=" ".join(EXPIRED), expires_at=soon)])
    time.sleep(1.2)
    store.put([NewItem(kind="note", body="a later write purges the expired item")])
    store.close()
    data = every_file(tmp_path)
    assert not any(w.encode() in data for w in EXPIRED)


CRASH = r"""
import os, sys
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore
s = ContextStore(sys.argv[1], purge_interval_s=None)
s.put([NewItem(kind="note", body=f"filler {i}") for i in range(100)])
s.put([NewItem(kind="note", body=sys.argv[2], source="notes", source_id="n1")])
s.put([NewItem(kind="note", body="replacement", source="notes", source_id="n1")])
os._exit(0)  # no close: the scrub is left pending, as after kill -9
"""


def test_a_scrub_left_by_a_crash_is_finished_at_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "ctx.db"
    subprocess.run([sys.executable, "-c", CRASH, str(db), " ".join(OLD)], check=True)
    left = any(w.encode() in every_file(tmp_path) for w in OLD)
    # in-place deletes (FTS5 secure-delete, SQLite 3.42+) have the words out of the file
    # before put returns; the merge rule of an older SQLite leaves a scrub pending
    assert left == (SQLITE_VERSION < (3, 42))
    store = ContextStore(db, purge_interval_s=None)  # the start finishes the scrub
    data = every_file(tmp_path)
    assert not any(w.encode() in data for w in OLD)
    store.close()
