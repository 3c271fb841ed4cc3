"""Files and processes, as a careful user and an attacker would check them.

The daemon's private state is 0700 / 0600 whatever the umask (000 here); it never
deletes what is not its stale socket; one daemon per data directory; a request cannot
forge a log line; bad UTF-8 is named by field; the dry run applies Generate's checks.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from tests.suites.suite_support import agent_target, start_service, stop_service, write_config

pytestmark = pytest.mark.model

FAST = "[model]\nn_threads = 1\nwarmup = false\nselfcheck = false\ncalibrate = false\n"


def _env(data: Path, sock: Path, cfg: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EDGE_AGENT_DATA_DIR=str(data), EDGE_AGENT_SOCKET=str(sock),
               EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_CLOUD="")
    return env


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A daemon started under umask 000 in a data directory it creates itself."""
    tmp = tmp_path_factory.mktemp("files")
    cfg = write_config(tmp / "agent.toml", FAST)
    data = tmp / "home" / "edge-agent"
    old = os.umask(0)
    try:
        svc = start_service(["edge_agent.cli.main", "serve"], _env(data, data / "a.sock", cfg),
                            "ready", tmp / "agent.log")
    finally:
        os.umask(old)
    svc.data, svc.cfg, svc.tmp = data, cfg, tmp
    try:
        with grpc.insecure_channel(agent_target(svc)) as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            stub.PutContext(pb.PutContextRequest(items=[pb.ContextItem(kind="note", body="x")]))
            list(stub.Generate(pb.GenerateRequest(prompt="Hi", params=common_pb2.GenerationParams(max_tokens=2))))
        yield svc
    finally:
        assert stop_service(svc) == 0, svc.log()


def test_private_state_is_0700_and_0600_under_umask_000(daemon: Any) -> None:
    data: Path = daemon.data
    assert _mode(data) == 0o700
    files = sorted(p for p in data.iterdir())
    names = {p.name for p in files}
    assert {"context.db", "ledger.db", "edge-agent.lock", "a.sock"} <= names, names
    for p in files:
        assert _mode(p) == 0o600, f"{p.name} is {oct(_mode(p))}"


def test_group_readable_existing_state_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    leaked = data / "context.db"
    leaked.write_bytes(b"")
    os.chmod(leaked, 0o644)
    from edge_agent.datadir import make_private

    make_private(data)
    assert _mode(data) == 0o700 and _mode(leaked) == 0o600


def _serve(data: Path, sock: Path, cfg: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli.main", "serve"], env=_env(data, sock, cfg),
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_second_daemon_on_the_same_directory_is_refused(daemon: Any) -> None:
    other_sock = daemon.tmp / "other.sock"
    proc = _serve(daemon.data, other_sock, daemon.cfg)
    assert proc.returncode != 0 and "ready" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert f"pid {daemon.proc.pid}" in last and str(daemon.data) in last, last
    assert not other_sock.exists()
    with grpc.insecure_channel(agent_target(daemon)) as ch:  # the first one still answers
        pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=10)


def test_a_live_socket_is_never_taken_over(daemon: Any, tmp_path: Path) -> None:
    proc = _serve(tmp_path / "data2", daemon.data / "a.sock", daemon.cfg)
    assert proc.returncode != 0
    assert "a live process serves on this socket" in proc.stderr
    assert stat.S_ISSOCK((daemon.data / "a.sock").lstat().st_mode)
    with grpc.insecure_channel(agent_target(daemon)) as ch:
        pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=10)


def test_a_file_at_the_socket_path_is_left_alone(daemon: Any, tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("do not delete")
    proc = _serve(tmp_path / "data3", precious, daemon.cfg)
    assert proc.returncode != 0
    assert "found something else (left in place)" in proc.stderr.strip().splitlines()[-1]
    assert precious.read_text() == "do not delete"


def test_a_stale_socket_is_replaced(daemon: Any, tmp_path: Path) -> None:
    import socket as so

    stale = tmp_path / "stale.sock"
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound, never listening: nobody serves on it
    env = _env(tmp_path / "data4", stale, daemon.cfg)
    svc = start_service(["edge_agent.cli.main", "serve"], env, "ready", tmp_path / "a4.log")
    try:
        assert stat.S_ISSOCK(stale.lstat().st_mode)
    finally:
        assert stop_service(svc) == 0
    assert not stale.exists()  # removed at stop: it was ours


def test_request_fields_cannot_forge_log_lines(daemon: Any) -> None:
    with grpc.insecure_channel(agent_target(daemon)) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        for field, req in (
            ("request_id", pb.GenerateRequest(prompt="hi", request_id="x\n2026-01-01 INFO forged")),
            ("routing.app_id", pb.GenerateRequest(prompt="hi", routing=pb.Routing(app_id="a" * 200))),
            ("routing.labels[1]", pb.GenerateRequest(prompt="hi", routing=pb.Routing(labels=["ok", "b\rad"]))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Generate(req, timeout=30))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith(field + ":"), info.value.details()
    for line in daemon.log().splitlines():
        assert not line.startswith("2026-01-01 INFO forged")


def test_bad_utf8_is_named_by_field(daemon: Any) -> None:
    with grpc.insecure_channel(agent_target(daemon)) as ch:
        raw = pb.GenerateRequest(prompt="hello there", routing=pb.Routing(labels=["aa", "bb", "cc-x"])).SerializeToString()
        for good, field in ((b"hello there", "prompt"), (b"cc-x", "routing.labels[2]")):
            call = ch.unary_unary("/edgecloud.v1.EdgeAgent/Complete",
                                  request_serializer=lambda b: b, response_deserializer=lambda b: b)
            with pytest.raises(grpc.RpcError) as info:
                call(raw.replace(good, b"\xff\xfe" + good[2:]), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == f"{field}: must be valid UTF-8 text"


def test_explain_route_applies_the_checks_of_generate(daemon: Any) -> None:
    long_prompt = "word " * 5000  # past the 4096-token context, within the byte limit
    with grpc.insecure_channel(agent_target(daemon)) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        codes = []
        for call in (lambda r: stub.ExplainRoute(r, timeout=60), lambda r: list(stub.Generate(r, timeout=60))):
            with pytest.raises(grpc.RpcError) as info:
                call(pb.GenerateRequest(prompt=long_prompt))
            codes.append((info.value.code(), info.value.details().split(":")[0]))
    assert codes == [(grpc.StatusCode.OUT_OF_RANGE, "prompt")] * 2
