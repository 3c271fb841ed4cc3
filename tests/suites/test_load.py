"""Load: 64 concurrent streaming clients, each on its own loopback TCP connection, for a
bounded time. The only error allowed is RESOURCE_EXHAUSTED (with a retry hint) at the
queue limit; no call hangs; the daemon's memory stays bounded; it is healthy after.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from suite_support import (
    agent_tcp,
    agent_token,
    rss_kib,
    scales,
    start_agent,
    stop_service,
    tcp_channel,
    write_config,
)

pytestmark = pytest.mark.model

CLIENTS = 64
RSS_GROWTH_LIMIT_KIB = 150 * 1024
PROMPTS = ["The sky is", "Water boils at", "A good breakfast is", "Three colours are", "The moon is"]


def client(target: str, token: str, cid: int, until: float, counts: Counter[str], lock: threading.Lock, hints: list[float]) -> None:
    rng = random.Random(cid)
    with tcp_channel(target, token) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        while time.monotonic() < until:
            req = pb.GenerateRequest(
                prompt=rng.choice(PROMPTS),
                params=common_pb2.GenerationParams(max_tokens=rng.randint(1, 4)),
                routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
                use_context=rng.random() < 0.2,
            )
            cancel = rng.random() < 0.1
            outcome = "ok"
            try:
                call = stub.Generate(req, timeout=60)
                done = None
                for m in call:
                    if cancel:
                        call.cancel()
                        outcome = "cancelled-by-client"
                        break
                    if m.HasField("done"):
                        done = m.done
                if not cancel:
                    assert done is not None and done.finish_reason in ("stop", "length"), done
            except grpc.RpcError as exc:
                code = exc.code()
                if cancel and code == grpc.StatusCode.CANCELLED:
                    outcome = "cancelled-by-client"
                else:
                    outcome = f"status:{code.name}"
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    m2 = re.search(r"retry after ([0-9.]+)s", exc.details() or "")
                    hint = float(m2.group(1)) if m2 else -1.0
                    with lock:
                        hints.append(hint)
                    time.sleep(min(max(hint, 0.05), 1.0) * rng.uniform(0.5, 1.0))
            except Exception as exc:  # noqa: BLE001 - counted and reported as an error
                outcome = f"error:{type(exc).__name__}"
            with lock:
                counts[outcome] += 1


@pytest.mark.parametrize("seconds", scales(20.0, 120.0))
def test_64_streaming_clients(tmp_path: Path, seconds: float) -> None:
    cfg = write_config(tmp_path / "agent.toml", "[model]\nn_threads = 1\n")
    agent = start_agent(tmp_path / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_LISTEN="127.0.0.1:0")
    target, token = agent_tcp(agent), agent_token(agent)
    try:
        with tcp_channel(target, token) as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            stub.PutContext(pb.PutContextRequest(items=[pb.ContextItem(kind="note", body=f"The sky note {i}: blue and wide.") for i in range(20)]), timeout=30)
            for p in PROMPTS:  # warm every code path before the first measurement
                list(stub.Generate(pb.GenerateRequest(prompt=p, params=common_pb2.GenerationParams(max_tokens=2)), timeout=60))
            rss_before = rss_kib(agent.proc.pid)
            counts: Counter[str] = Counter()
            hints: list[float] = []
            lock = threading.Lock()
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=client, args=(target, token, i, until, counts, lock, hints), daemon=True) for i in range(CLIENTS)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            peak = rss_before
            while any(t.is_alive() for t in threads):
                peak = max(peak, rss_kib(agent.proc.pid))
                time.sleep(0.25)
                assert time.monotonic() - t0 < seconds + 90, "clients hung"
            rss_after = rss_kib(agent.proc.pid)
            stats = stub.GetStats(pb.GetStatsRequest(), timeout=10)
            health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            final = list(stub.Generate(pb.GenerateRequest(prompt="The sky is", params=common_pb2.GenerationParams(max_tokens=2)), timeout=30))
        errors = {k: v for k, v in counts.items() if k not in ("ok", "cancelled-by-client", "status:RESOURCE_EXHAUSTED")}
        print(f"\nload: {CLIENTS} clients for {seconds:.0f}s: {sum(counts.values())} calls, outcomes {dict(counts)}, "
              f"retry hints {min(hints, default=0):.1f}..{max(hints, default=0):.1f}s, "
              f"RSS {rss_before // 1024} -> peak {peak // 1024} -> {rss_after // 1024} MiB, "
              f"daemon stats: {dict(stats.requests_by_route)} errors={stats.errors}, threads={os.cpu_count()} cores")
        assert not errors, errors
        assert counts["ok"] >= 20, counts
        assert all(h > 0 for h in hints), "RESOURCE_EXHAUSTED without a retry hint"
        assert stats.errors >= counts["status:RESOURCE_EXHAUSTED"], "queue-full rejections must be counted"
        assert peak - rss_before <= RSS_GROWTH_LIMIT_KIB, (rss_before, peak)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert final[-1].HasField("done")
    finally:
        assert stop_service(agent) == 0, agent.log()
