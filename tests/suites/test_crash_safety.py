"""Crash safety: ``kill -9`` the daemon at random moments while clients stream
acknowledged PutContext writes (new items and updates of earlier ones), restart it, and
check after every kill that ``PRAGMA integrity_check`` is ok, the FTS index is intact,
every acknowledged item is present with its acknowledged (or a newer in-flight) body,
and finally that the restarted daemon finds them through SearchContext.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from suite_support import agent_target, scales, start_agent, stop_service, write_config

from common.sqlite import driver as sqlite3  # the SQLite the store runs on
from edge_agent.context.store import ContextStore

pytestmark = pytest.mark.model

WRITERS = 2


@dataclass
class Ledger:
    """What the daemon acknowledged, per writer."""

    ids: dict[str, str] = field(default_factory=dict)  # id -> source_id
    body: dict[str, str] = field(default_factory=dict)  # source_id -> last acknowledged body
    in_flight: dict[str, str] = field(default_factory=dict)  # source_id -> body sent, not acked
    acked_items: int = 0
    acked_calls: int = 0
    unacked_but_committed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(target: str, wid: int, ledger: Ledger, stop: threading.Event, rng: random.Random) -> None:
    """PutContext batches of 1..20 items until the daemon dies; records every ack."""
    keys: list[str] = []
    with grpc.insecure_channel(target) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        while not stop.is_set():
            batch: list[tuple[str, str]] = []
            for _ in range(rng.randint(1, 20)):
                if keys and rng.random() < 0.2:
                    sid = rng.choice(keys)  # an update of an earlier item
                else:
                    sid = f"w{wid}-{uuid.uuid4().hex[:12]}"
                if any(s == sid for s, _ in batch):
                    continue
                batch.append((sid, f"crash item {sid} version tok{uuid.uuid4().hex[:16]}"))
            req = pb.PutContextRequest(
                items=[pb.ContextItem(kind="note", title=f"t {sid}", body=body, source="crash", source_id=sid, tags=[f"w{wid}"]) for sid, body in batch]
            )
            with ledger.lock:
                for sid, body in batch:
                    ledger.in_flight[sid] = body
            try:
                resp = stub.PutContext(req, timeout=10)
            except grpc.RpcError:
                return  # the daemon died: this call was never acknowledged
            assert len(resp.ids) == len(batch)
            with ledger.lock:
                for (sid, body), item_id in zip(batch, resp.ids):
                    ledger.ids[item_id] = sid
                    ledger.body[sid] = body
                    del ledger.in_flight[sid]
                    if sid not in keys:
                        keys.append(sid)
                ledger.acked_items += len(batch)
                ledger.acked_calls += 1


def check_db(db: Path, ledger: Ledger) -> int:
    """Integrity, FTS index and every acknowledged item; returns items checked."""
    with sqlite3.connect(db) as conn:  # a plain connection recovers the WAL
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
        rows = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, source_id, body FROM items WHERE source = 'crash'")}
    with ledger.lock:
        missing = [i for i in ledger.ids if i not in rows]
        assert not missing, f"{len(missing)} acknowledged items lost, e.g. {missing[:3]}"
        for item_id, sid in ledger.ids.items():
            got_sid, body = rows[item_id]
            assert got_sid == sid
            allowed = {ledger.body[sid], ledger.in_flight.get(sid)}
            assert body in allowed, f"{sid}: body {body!r} is neither the acknowledged nor the in-flight version"
        # Rows nobody acknowledged must come from the calls in flight at the kill (their
        # commit won the race with the acknowledgement); nothing else may appear.
        extra = {i: r for i, r in rows.items() if i not in ledger.ids}
        for item_id, (sid, body) in extra.items():
            assert ledger.in_flight.get(sid) == body, f"an item nobody wrote: {sid} {body!r}"
            ledger.ids[item_id] = sid
        ledger.unacked_but_committed += len(extra)
        # Writes whose acknowledgement was lost in the kill are now settled either way.
        ledger.in_flight.clear()
        for item_id, sid in list(ledger.ids.items()):
            ledger.body[sid] = rows[item_id][1]
        return len(ledger.ids)


@pytest.mark.parametrize("counts", scales((10, 1000), (40, 4000)))
def test_kill_9_during_acknowledged_writes_loses_nothing(tmp_path: Path, counts: tuple[int, int]) -> None:
    kills_wanted, min_acked = counts
    rng = random.Random(42)
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "agent.toml", "[model]\nn_threads = 1\nwarmup = false\n")
    db = data / "context.db"
    ledger = Ledger()
    kills = 0
    t0 = time.monotonic()
    while kills < kills_wanted or ledger.acked_items < min_acked:
        agent = start_agent(data, EDGE_AGENT_CONFIG=str(cfg))
        target = agent_target(agent)
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(target, w, ledger, stop, random.Random(rng.random())), daemon=True) for w in range(WRITERS)]
        start_items = ledger.acked_items
        for t in threads:
            t.start()
        # Kill at a random moment after a random amount of acknowledged work.
        goal = start_items + rng.randint(60, 180)
        deadline = time.monotonic() + 60
        while ledger.acked_items < goal and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        kills += 1
        stop.set()
        for t in threads:
            t.join(15)
        assert agent.proc.returncode == -signal.SIGKILL
        assert ledger.acked_items > start_items, agent.log()
        check_db(db, ledger)
    # The restarted daemon serves every acknowledged item.
    agent = start_agent(data, EDGE_AGENT_CONFIG=str(cfg))
    try:
        with grpc.insecure_channel(agent_target(agent)) as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            sample = random.Random(1).sample(sorted(ledger.ids.items()), 40)
            for item_id, sid in sample:
                token = ledger.body[sid].split()[-1]
                hits = stub.SearchContext(pb.SearchContextRequest(query=token, limit=5), timeout=10).hits
                assert [h.item.id for h in hits] == [item_id], (sid, token)
            stats = stub.GetStats(pb.GetStatsRequest(), timeout=10)
            assert stats.context_items == len({sid for sid in ledger.ids.values()})
    finally:
        assert stop_service(agent) == 0, agent.log()
    with ContextStore(db, purge_interval_s=None) as store:
        for item_id in random.Random(2).sample(sorted(ledger.ids), 200):
            assert store.get(item_id).source == "crash"
    print(f"\ncrash-safety: {kills} kill -9, {ledger.acked_calls} acknowledged PutContext calls, "
          f"{ledger.acked_items} acknowledged item writes ({len(ledger.ids)} distinct items, {ledger.unacked_but_committed} "
          f"committed from calls cut before their acknowledgement), lost writes: 0, "
          f"integrity_check ok after every kill, {time.monotonic() - t0:.0f}s")
