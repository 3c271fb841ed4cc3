"""Acknowledged writes survive ``kill -9``: integrity holds, every acknowledged id is there.

A child process (``durability_writer.py``) writes batches through ``ContextStore`` and
prints each batch's ids once ``put`` returns. The test SIGKILLs it at several points
(right after an acknowledgement, so the next batch is usually mid-write), reopens the
file and checks ``PRAGMA integrity_check``, the FTS index, that every acknowledged item
is present and searchable, and that no batch is half-written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.sqlite import driver as sqlite3  # the SQLite the store runs on
from edge_agent.context.store import ContextStore

WRITER = Path(__file__).with_name("durability_writer.py")
BATCH = 40


def run_and_kill(args: list[str], *, acks_before_kill: int, extra_delay_s: float) -> list[list[str]]:
    """Start the writer, SIGKILL it after some acknowledgements; return the acked batches."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[list[str]] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while len(acked) < acks_before_kill and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(json.loads(line)["ids"])
        assert len(acked) == acks_before_kill, child.stderr.read() if child.stderr else ""
        if extra_delay_s:
            time.sleep(extra_delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        # Lines printed before the kill were acknowledged too: read them all.
        for line in child.stdout.read().splitlines():
            try:
                acked.append(json.loads(line)["ids"])
            except (ValueError, KeyError):  # a line cut by the kill, or "done"
                continue
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    return acked


def check_database(path: Path, acked: list[list[str]]) -> None:
    with sqlite3.connect(path) as conn:  # a plain connection recovers the WAL
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
        stored = {row[0] for row in conn.execute("SELECT id FROM items")}
        for ids in acked:
            assert len(ids) == BATCH
            missing = set(ids) - stored
            assert not missing, f"{len(missing)} acknowledged items lost"
        # Batches are atomic: every source batch is complete or absent.
        sizes = conn.execute(
            "SELECT substr(source_id, 1, instr(source_id, '-') - 1) AS b, count(*) "
            "FROM items GROUP BY b"
        ).fetchall()
        assert all(count == BATCH for _batch, count in sizes)
    with ContextStore(path, purge_interval_s=None) as store:
        last = acked[-1][-1]
        word = store.get(last).body.split()[0]
        assert last in [hit.item.id for hit in store.search(word, limit=BATCH)]


@pytest.mark.parametrize(
    ("acks", "delay"), [(1, 0.0), (3, 0.0), (12, 0.0), (2, 0.05)],
)
def test_put_batches_survive_sigkill(tmp_path: Path, acks: int, delay: float) -> None:
    path = tmp_path / "ctx.db"
    acked = run_and_kill([str(path), "put"], acks_before_kill=acks, extra_delay_s=delay)
    assert len(acked) >= acks
    check_database(path, acked)


def test_import_batches_survive_sigkill(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    with source.open("w") as out:
        for i in range(20_000):
            record = {"kind": "note", "body": f"record{i} " + "text " * 30,
                      "source_id": f"{i // BATCH}-{i % BATCH}"}
            out.write(json.dumps(record) + "\n")
    path = tmp_path / "ctx.db"
    acked = run_and_kill([str(path), "import", str(source)], acks_before_kill=5, extra_delay_s=0)
    check_database(path, acked)
