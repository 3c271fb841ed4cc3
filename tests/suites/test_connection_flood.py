"""Connection flood suite: idle and half-sent connections against a daemon with few
file handles.

The daemon runs with ``RLIMIT_NOFILE`` lowered to 256 (a user service gets 1,024; the
flood is bigger than both). The test opens well over that many connections to the
loopback gRPC and HTTP doors, half of them sending nothing, half a partial request head
(an HTTP/2 preface cut short, request headers without their end), and holds them.
Meanwhile the unix socket answers health and ``GetStats`` every time, quickly; the HTTP
door still serves a real client (the longest-idle connection makes room); the daemon
never runs out of handles; the held connections are closed by the daemon after the
handshake / read timeouts; and the log stays small. Bounded loops, loopback only.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from suite_support import Service, scales, stop_service, write_config

pytestmark = pytest.mark.model

NOFILE = 256
CONFIG = (
    "[model]\nn_threads = 1\nwarmup = false\nselfcheck = false\ncalibrate = false\n"
    "[server]\nhandshake_timeout_s = 2.0\n[http]\nread_timeout_s = 2.0\n"
)
LOG_LIMIT_BYTES = 64 * 1024

# ``python -c`` launcher: lower the open-file limit, die with the test (PR_SET_PDEATHSIG),
# then exec the daemon; done in the child rather than a preexec_fn (see conftest).
_LIMITED = (
    "import ctypes, os, resource, signal, sys\n"
    "n = int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() == int(sys.argv[1]):\n"
    "    os.execv(sys.executable, [sys.executable, '-m', *sys.argv[3:]])\n"
)


def start_limited(data: Path, cfg: Path, nofile: int) -> Service:
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "EDGE_AGENT_DATA_DIR": str(data), "EDGE_AGENT_SOCKET": str(data / "a.sock"),
           "EDGE_AGENT_CONFIG": str(cfg), "EDGE_AGENT_LISTEN": "127.0.0.1:0", "EDGE_AGENT_HTTP": "127.0.0.1:0",
           "EDGE_AGENT_CLOUD": ""}
    log_path = data / "agent.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LIMITED, str(os.getpid()), str(nofile), "edge_agent.cli.main", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True,
    )
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(180)
    line = box[0] if box else ""
    if "ready" not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"daemon did not become ready ({line!r}); log:\n{log_path.read_text(errors='replace')}")
    return Service(proc, line.strip(), log_path)


@contextlib.contextmanager
def own_fd_limit(need: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the test needs {need} file handles, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_flood(ports: tuple[int, int], n: int) -> tuple[list[socket.socket], int]:
    """``n`` connections alternating between the gRPC and the HTTP door; every other
    pair sends a partial request head. (held sockets, connects that failed)"""
    held: list[socket.socket] = []
    failed = 0
    partial = {ports[0]: b"PRI * HTTP/2.0\r\n", ports[1]: b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"}
    for i in range(n):
        port = ports[i % 2]
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            if i % 4 >= 2:
                s.sendall(partial[port])
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    return held, failed


def closed_by_daemon(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        data = s.recv(4096)
        return data == b"" or b" 503 " in data
    except TimeoutError:
        return False
    except OSError:
        return True


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("connections", scales(1200, 4000))
def test_idle_connection_flood_leaves_the_unix_socket_serving(tmp_path: Path, connections: int) -> None:
    cfg = write_config(tmp_path / "agent.toml", CONFIG)
    with own_fd_limit(connections + 256):
        agent = start_limited(tmp_path / "data", cfg, NOFILE)
        held: list[socket.socket] = []
        try:
            tcp = int(re.search(r" and 127\.0\.0\.1:(\d+)", agent.ready_line).group(1))  # type: ignore[union-attr]
            http = int(re.search(r"openai on http://127\.0\.0\.1:(\d+)", agent.ready_line).group(1))  # type: ignore[union-attr]
            t0 = time.monotonic()
            held, failed = open_flood((tcp, http), connections)
            peak = fds(agent.proc.pid)
            served, slowest = 0, 0.0
            with grpc.insecure_channel(f"unix:{tmp_path / 'data' / 'a.sock'}") as ch:
                health, stub = health_pb2_grpc.HealthStub(ch), pb_grpc.EdgeAgentStub(ch)
                until = time.monotonic() + 3.0
                while time.monotonic() < until:  # bounded: 3 s of calls
                    t = time.monotonic()
                    assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
                    stub.GetStats(pb.GetStatsRequest(), timeout=5)
                    slowest = max(slowest, time.monotonic() - t)
                    served += 1
                    peak = max(peak, fds(agent.proc.pid))
            assert served >= 20 and slowest < 2.0, (served, slowest)
            token = (tmp_path / "data" / "token").read_text().strip()
            with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=5,
                              headers={"authorization": f"Bearer {token}"}) as c:
                assert c.get("/v1/models").status_code == 200  # a real client gets in during the flood
            deadline = time.monotonic() + 10
            while sum(not closed_by_daemon(s) for s in held) > len(held) // 20 and time.monotonic() < deadline:
                time.sleep(0.25)
            still_open = sum(not closed_by_daemon(s) for s in held)
            log = agent.log()
            print(f"\nflood: {len(held)} held ({failed} connects failed) in {time.monotonic() - t0:.1f} s; "
                  f"{served} unix calls served, slowest {slowest * 1000:.0f} ms; daemon fds peak {peak} of {NOFILE}; "
                  f"{still_open} still open after the timeouts; log {len(log)} bytes, {log.count(chr(10))} lines")
            assert len(held) >= connections // 2
            assert peak < NOFILE and "Too many open files" not in log
            assert still_open <= len(held) // 20, f"{still_open} of {len(held)} flood connections still open"
            assert "open-file limit (256)" in log  # the bounds were fitted to the limit, and it says so
            assert len(log.encode()) < LOG_LIMIT_BYTES and log.count("\n") < 300, log[-3000:]
            with grpc.insecure_channel(f"unix:{tmp_path / 'data' / 'a.sock'}") as ch:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        finally:
            for s in held:
                s.close()
            assert stop_service(agent) == 0, agent.log()[-3000:]


def test_unit_file_raises_the_open_file_limit() -> None:
    unit = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "edge-agent.service"
    m = re.search(r"^LimitNOFILE=(\d+)$", unit.read_text(), re.MULTILINE)
    assert m and int(m.group(1)) >= 8192
