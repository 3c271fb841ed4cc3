"""Fault suite: the real edge agent keeps answering while its cloud misbehaves.

The agent talks to the cloud through a loopback TCP proxy written here, whose upstream
the test switches between: the real cloud-stub server code around a scripted backend
(healthy real model, UNAVAILABLE, INTERNAL, slower than the deadline, a stream cut
short), a gRPC server answering bytes that are not protobuf, real ``cloud-stub``
processes that are SIGKILLed mid-stream, nothing at all (connection refused), and a
listener speaking junk. The proxy can also cut connections after a random number of
bytes. For every fault at least 50 requests run (200 in the long variant); each must end with a
complete answer (``done`` with ``fallback`` and its reason in ``done.route`` when the
cloud failed) or a documented status code, and none may hang past its deadline. A
second agent with a small breaker shows the circuit opening and recovering.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from suite_support import (
    GarbageCloud,
    InProcessCloud,
    JunkTcp,
    Proxy,
    Scripted,
    ScriptState,
    Shared,
    agent_target,
    scales,
    start_agent,
    start_service,
    stop_service,
    write_config,
)

from cloud_stub.backends import LlamaBackend

pytestmark = pytest.mark.model

PER_FAULT = scales(50, 200)
CONCURRENCY = 8
CLIENT_SLACK_S = 60.0  # local fallback time allowed on top of a request's deadline
# Outcomes that count as "ended well": a whole answer, or the documented queue status.
GOOD = {"cloud", "fallback", "continued", "local", "status:RESOURCE_EXHAUSTED"}


def request(max_tokens: int = 1, deadline_ms: int = 0, prompt: str = "Name one colour of the rainbow.") -> pb.GenerateRequest:
    return pb.GenerateRequest(
        prompt=prompt,
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED, deadline_ms=deadline_ms),
    )


@dataclass
class Result:
    outcome: str
    wall_s: float
    detail: str = ""
    cloud_chars: int = 0


def call(stub: pb_grpc.EdgeAgentStub, req: pb.GenerateRequest, on_delta: Callable[[], None] | None = None) -> Result:
    """One Generate, classified by how it ended."""
    deadline_s = (req.routing.deadline_ms or 30_000) / 1000 + CLIENT_SLACK_S
    t0 = time.monotonic()
    msgs: list[pb.GenerateResponse] = []
    try:
        for m in stub.Generate(req, timeout=deadline_s):
            msgs.append(m)
            if on_delta is not None and m.HasField("delta"):
                on_delta()
                on_delta = None
    except grpc.RpcError as exc:
        return Result(f"status:{exc.code().name}", time.monotonic() - t0, exc.details() or "")
    wall = time.monotonic() - t0
    if not msgs or not msgs[-1].HasField("done") or sum(m.HasField("done") for m in msgs) != 1:
        return Result("incomplete", wall, "stream without exactly one final done")
    done = msgs[-1].done
    r = done.route
    if done.finish_reason not in ("stop", "length"):
        return Result("incomplete", wall, f"finish_reason {done.finish_reason!r}")
    if r.fallback:
        kind = "continued" if "continued" in r.fallback_reason else "fallback"
        return Result(kind, wall, r.fallback_reason, r.cloud_chars)
    if r.target == pb.ROUTE_TARGET_CLOUD:
        return Result("cloud", wall)
    if r.target == pb.ROUTE_TARGET_LOCAL:
        return Result("local", wall, ",".join(r.rules_fired))
    return Result(f"route:{pb.RouteTarget.Name(r.target)}", wall)


def run_many(stub: pb_grpc.EdgeAgentStub, reqs: list[pb.GenerateRequest], concurrency: int = CONCURRENCY) -> list[Result]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda r: call(stub, r), reqs))


def report(name: str, results: list[Result], **extra: object) -> Counter[str]:
    counts = Counter(r.outcome for r in results)
    reasons = Counter(r.detail.split(":")[0] for r in results if r.outcome in ("fallback", "continued"))
    slowest = max((r.wall_s for r in results), default=0.0)
    more = "".join(f", {k}={v}" for k, v in extra.items())
    print(f"\nfault[{name}]: {len(results)} requests, outcomes {dict(counts)}, fallback reasons {dict(reasons)}, slowest {slowest:.1f}s{more}")
    return counts


def assert_good(results: list[Result], within_s: float = 30.0) -> None:
    """Every request ended well, and within ``within_s`` (its deadline, 30 s by default
    policy, plus the local fallback where the deadline was set short)."""
    bad = [r for r in results if r.outcome not in GOOD]
    assert not bad, bad[:5]
    late = [r for r in results if r.wall_s > within_s]
    assert not late, late[:5]


# -- fixtures ---------------------------------------------------------------------------


@dataclass
class Rig:
    stub: pb_grpc.EdgeAgentStub
    agent: Any
    proxy: Proxy
    scripted: InProcessCloud
    state: ScriptState
    token: str
    tmp: Path


@pytest.fixture(scope="module")
def llama(model_path: Path) -> Iterator[LlamaBackend]:
    backend = LlamaBackend(model_path, n_ctx=1024, n_threads=1)
    yield backend
    backend._llm.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, llama: LlamaBackend) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("faults")
    token = secrets.token_hex(8)
    state = ScriptState()
    scripted = InProcessCloud(Scripted(Shared(llama), state), token)
    proxy = Proxy(scripted.address)
    cfg = write_config(
        tmp / "agent.toml",
        "[model]\nn_threads = 1\n[server]\nqueue_depth = 64\n[cloud]\nbreaker_failures = 1000000\n",
    )
    agent = start_agent(tmp / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_CLOUD=proxy.address, EDGE_AGENT_CLOUD_TOKEN=token)
    ch = grpc.insecure_channel(agent_target(agent))
    try:
        yield Rig(pb_grpc.EdgeAgentStub(ch), agent, proxy, scripted, state, token, tmp)
    finally:
        ch.close()
        code = stop_service(agent)
        proxy.close()
        scripted.stop()
        assert code == 0, agent.log()


def ledger_rows(rig: Rig, since: datetime) -> list[Any]:
    """Egress ledger rows the agent wrote since ``since`` (read beside the daemon: WAL)."""
    from edge_agent.adapters.ledger import Ledger

    ledger = Ledger(rig.tmp / "data" / "ledger.db")
    try:
        return ledger.query(since=since, limit=100_000)
    finally:
        ledger.close()


def healthy(rig: Rig, timeout_s: float = 60) -> int:
    """Send probes until the cloud answers again; return how many were needed."""
    deadline = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if call(rig.stub, request()).outcome == "cloud":
            return n
        time.sleep(0.2)
    raise AssertionError("the cloud did not come back")


# -- the faults ----------------------------------------------------------------------------


def test_baseline_healthy_cloud_answers(rig: Rig) -> None:
    rig.state.mode = "ok"
    results = run_many(rig.stub, [request(max_tokens=3) for _ in range(10)])
    report("healthy", results)
    assert all(r.outcome == "cloud" for r in results), results


@pytest.mark.parametrize("mode", ["unavailable", "internal"])
@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_error_status_falls_back(rig: Rig, mode: str, per_fault: int) -> None:
    rig.state.mode = mode
    calls0 = rig.state.calls
    t0 = datetime.now(UTC)
    try:
        results = run_many(rig.stub, [request() for _ in range(per_fault)])
    finally:
        rig.state.mode = "ok"
    calls = rig.state.calls - calls0
    rows = ledger_rows(rig, t0)
    report(mode, results, cloud_calls=calls, ledger_rows=len(rows))
    assert_good(results)
    assert all(r.outcome == "fallback" and mode in r.detail for r in results), results[:3]
    assert calls >= per_fault
    # every attempt that reached the cloud is one ledger row, with its outcome
    assert len(rows) == calls, (len(rows), calls)
    outcomes = {r.outcome for r in rows}
    assert outcomes <= {"retried", "failed_before_answer"}, outcomes
    # only an unreachable cloud (UNAVAILABLE) is tried again, within cloud.max_attempts
    assert calls == (2 * per_fault if mode == "unavailable" else per_fault)
    healthy(rig)


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_stream_ending_without_final_message_is_continued(rig: Rig, per_fault: int) -> None:
    rig.state.mode = "truncated"
    try:
        results = run_many(rig.stub, [request() for _ in range(max(20, per_fault // 2))])
    finally:
        rig.state.mode = "ok"
    report("truncated", results)
    assert_good(results)
    assert all(r.outcome == "continued" and r.cloud_chars == len("half an answer") for r in results), results[:3]


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_answering_garbage_falls_back(rig: Rig, per_fault: int) -> None:
    """A valid delta, then bytes that are not a CloudGenerateResponse: the local model
    continues (grpc.aio yields None for such a message; it once surfaced as INTERNAL)."""
    garbage = GarbageCloud()
    rig.proxy.set(upstream=garbage.address)
    try:
        results = run_many(rig.stub, [request() for _ in range(per_fault)])
    finally:
        rig.proxy.set(upstream=rig.scripted.address)
        garbage.stop()
    counts = report("garbage", results)
    healthy(rig)
    assert counts["status:INTERNAL"] == 0
    assert_good(results)
    assert all(r.outcome in ("fallback", "continued") for r in results)


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_slower_than_the_deadline_is_abandoned_at_the_deadline(rig: Rig, per_fault: int) -> None:
    deadline_ms = 1000
    rig.state.mode = "slow"
    rig.state.cancel_after_s.clear()
    try:
        results = run_many(rig.stub, [request(deadline_ms=deadline_ms) for _ in range(per_fault)], concurrency=16)
    finally:
        rig.state.mode = "ok"
    waited = sorted(rig.state.cancel_after_s)
    report("slow", results, cloud_abandoned_after_s=f"{waited[0]:.2f}..{waited[-1]:.2f}" if waited else "-")
    assert_good(results, within_s=deadline_ms / 1000 + 15)
    assert all(r.outcome == "fallback" and "deadline" in r.detail for r in results), results[:3]
    # The cloud call of every request was given up within its deadline (plus scheduling).
    assert len(waited) >= per_fault * 0.9
    assert waited[-1] <= deadline_ms / 1000 + 1.5
    healthy(rig)


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_connection_cut_by_the_proxy(rig: Rig, per_fault: int) -> None:
    rig.state.mode = "ok"
    rig.proxy.set(cut_after=(120, 1500))
    cuts0 = rig.proxy.cuts
    try:
        results = run_many(rig.stub, [request(max_tokens=4) for _ in range(per_fault)], concurrency=4)
    finally:
        rig.proxy.set(cut_after=None)
    cuts = rig.proxy.cuts - cuts0
    counts = report("proxy-cut", results, connections_cut=cuts)
    assert_good(results)
    assert cuts > 0 and counts["fallback"] + counts["continued"] > 0
    healthy(rig)


def _spawn_stub(tmp: Path, token_file: Path, n: int) -> Any:
    return start_service(
        ["cloud_stub.cli", "serve", "--listen", "127.0.0.1:0", "--token-file", str(token_file), "--threads", "1", "--n-ctx", "1024"],
        dict(os.environ), "listening on", tmp / f"stub{n}.log",
    )


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_process_killed_mid_stream(rig: Rig, per_fault: int) -> None:
    rounds = max(5, per_fault // 10)
    per_round = -(-per_fault // rounds)
    rng = random.Random(5)
    t0 = datetime.now(UTC)
    token_file = rig.tmp / "token"
    token_file.write_text(rig.token)
    results: list[Result] = []
    kills = 0
    spawned: list[Any] = []
    nxt = _spawn_stub(rig.tmp, token_file, 0)
    spawned.append(nxt)
    try:
        for i in range(rounds):
            current = nxt
            rig.proxy.set(upstream=current.ready_line.split()[-1])
            healthy(rig)
            nxt = _spawn_stub(rig.tmp, token_file, i + 1)  # the restarted cloud, warming up
            spawned.append(nxt)
            first = threading.Event()
            with ThreadPoolExecutor(per_round) as pool:
                # One long answer that is streaming when the process dies, the rest queued.
                futures = [pool.submit(call, rig.stub, request(max_tokens=12, prompt="Count from one to twenty:"), first.set)]
                time.sleep(0.05)
                futures += [pool.submit(call, rig.stub, request(max_tokens=2)) for _ in range(per_round - 1)]
                assert first.wait(60), "the cloud never started streaming"
                time.sleep(rng.uniform(0.0, 0.15))
                os.kill(current.proc.pid, signal.SIGKILL)
                kills += 1
                current.proc.wait(10)
                time.sleep(rng.uniform(0.3, 1.0))  # the cloud stays dead for a moment
                rig.proxy.set(upstream=nxt.ready_line.split()[-1])
                results += [f.result() for f in futures]
    finally:
        for stub in spawned:
            stop_service(stub, signal.SIGKILL)
        rig.proxy.set(upstream=rig.scripted.address)
    reached: Counter[str] = Counter()
    for n in range(len(spawned)):
        reached.update(re.findall(r"generate request_id=(\S+)", (rig.tmp / f"stub{n}.log").read_text()))
    recorded = Counter(r.request_id for r in ledger_rows(rig, t0))
    counts = report("sigkill", results, kills=kills, upstream_calls=sum(reached.values()),
                    ledger_rows=sum(recorded.values()))
    # no call reached the cloud without its row in the egress ledger
    missing = {rid: n for rid, n in reached.items() if recorded[rid] < n}
    assert not missing, missing
    assert_good(results)
    assert len(results) >= per_fault
    assert counts["continued"] >= 1, "no kill landed mid-stream"
    healthy(rig)


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_unreachable_then_back(rig: Rig, per_fault: int) -> None:
    rig.proxy.stop_listening()
    try:
        results = run_many(rig.stub, [request() for _ in range(per_fault)])
    finally:
        rig.proxy.listen_again()
    report("unreachable", results)
    assert_good(results)
    assert all(r.outcome == "fallback" and "unavailable" in r.detail for r in results), results[:3]


@pytest.mark.parametrize("per_fault", PER_FAULT)
def test_cloud_speaking_junk_bytes(rig: Rig, per_fault: int) -> None:
    junk = JunkTcp()
    rig.proxy.set(upstream=junk.address)
    try:
        results = run_many(rig.stub, [request() for _ in range(max(20, per_fault // 2))])
    finally:
        rig.proxy.set(upstream=rig.scripted.address)
        junk.stop()
    report("junk-bytes", results)
    assert_good(results)
    assert all(r.outcome == "fallback" for r in results), results[:3]


# -- the breaker ---------------------------------------------------------------------------


def test_breaker_opens_and_recovers(tmp_path: Path, llama: LlamaBackend) -> None:
    token = secrets.token_hex(8)
    state = ScriptState()
    cloud = InProcessCloud(Scripted(Shared(llama), state), token)
    cfg = write_config(tmp_path / "agent.toml", "[model]\nn_threads = 1\n[cloud]\nbreaker_failures = 3\nbreaker_cooldown_s = 1.5\nmax_attempts = 1\n")
    agent = start_agent(tmp_path / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_CLOUD=cloud.address, EDGE_AGENT_CLOUD_TOKEN=token)
    ch = grpc.insecure_channel(agent_target(agent))
    stub = pb_grpc.EdgeAgentStub(ch)

    def circuit() -> str:
        return stub.GetStats(pb.GetStatsRequest(), timeout=10).cloud_circuit

    try:
        assert call(stub, request()).outcome == "cloud"
        assert circuit() == "closed"
        state.mode = "unavailable"
        failing = [call(stub, request()) for _ in range(3)]
        assert [r.outcome for r in failing] == ["fallback"] * 3
        assert circuit() == "open"
        calls = state.calls
        while_open = [call(stub, request()) for _ in range(5)]
        assert all(r.outcome == "local" and "cloud.unavailable" in r.detail for r in while_open), while_open
        assert state.calls == calls, "an open breaker must not call the cloud"
        time.sleep(1.6)
        assert circuit() == "half_open"
        assert call(stub, request()).outcome == "fallback"  # a failed probe opens it again
        assert circuit() == "open"
        state.mode = "ok"
        time.sleep(1.6)
        assert call(stub, request()).outcome == "cloud"  # the next probe succeeds
        assert circuit() == "closed"
        assert [call(stub, request()).outcome for _ in range(3)] == ["cloud"] * 3
        print(f"\nfault[breaker]: 3 failures opened it, {len(while_open)} requests answered locally while open without a cloud call, "
              "a failed probe re-opened it, a good probe closed it")
    finally:
        ch.close()
        code = stop_service(agent)
        cloud.stop()
        assert code == 0, agent.log()


def test_agent_starts_and_answers_when_the_cloud_answers_garbage(tmp_path: Path) -> None:
    """An undecodable Info answer at start-up is a cloud failure, not a crash."""
    garbage = GarbageCloud()
    try:
        agent = start_agent(tmp_path / "data", EDGE_AGENT_CLOUD=garbage.address, EDGE_AGENT_CLOUD_TOKEN="t")
        try:
            with grpc.insecure_channel(agent_target(agent)) as ch:
                r = call(pb_grpc.EdgeAgentStub(ch), request())
                assert r.outcome in ("fallback", "continued", "local"), r
        finally:
            assert stop_service(agent) == 0, agent.log()
    finally:
        garbage.stop()
