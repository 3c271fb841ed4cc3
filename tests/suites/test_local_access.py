"""Local access suite: another local process or a web page against the real daemon.

An unauthenticated client on the loopback TCP listener asks for personal context and
gets UNAUTHENTICATED naming the token file (a wrong token too; health stays open,
reflection does not); the HTTP door refuses the cross-site request of the issue (a
page's own Host, its Origin, ``text/plain``) and each part of it alone, answers CORS
preflights only for the configured origin, and serves the token's holder. Rotating the
token with the CLI locks the old one out within two seconds, with no restart; the CLI
itself connects over TCP with the token file.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from suite_support import (
    agent_target,
    agent_tcp,
    agent_token,
    start_agent,
    stop_service,
    tcp_channel,
    write_config,
)

pytestmark = pytest.mark.model

FAST = "[model]\nn_threads = 1\nwarmup = false\nselfcheck = false\ncalibrate = false\n"
ORIGIN = "http://localhost:3000"
SECRET = "Dentist appointment with Dr. Alvarez on Thursday; locker code 7391."


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("access")
    cfg = write_config(tmp / "agent.toml", FAST)
    svc = start_agent(tmp / "data", EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_LISTEN="127.0.0.1:0",
                      EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_ORIGINS=ORIGIN, EDGE_AGENT_CLOUD="")
    svc.data = tmp / "data"
    try:
        with grpc.insecure_channel(agent_target(svc)) as ch:  # the unix socket needs no token
            pb_grpc.EdgeAgentStub(ch).PutContext(pb.PutContextRequest(items=[
                pb.ContextItem(kind="event", title="Dentist", body=SECRET, source="t", source_id="1")]), timeout=30)
        yield svc
    finally:
        assert stop_service(svc) == 0, svc.log()[-3000:]


def _http(agent: Any) -> str:
    m = re.search(r"openai on (http://\S+)", agent.ready_line)
    assert m, agent.ready_line
    return m.group(1)


def _cli(agent: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGE_AGENT_DATA_DIR": str(agent.data), "EDGE_AGENT_SOCKET": str(agent.data / "a.sock")}
    env.pop("EDGE_AGENT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "edge_agent.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_token_file_is_private(agent: Any) -> None:
    token = agent.data / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(agent_token(agent)) >= 40


def test_unauthenticated_tcp_client_gets_no_personal_data(agent: Any) -> None:
    target = agent_tcp(agent)
    for ch in (grpc.insecure_channel(target), tcp_channel(target, "wrong-token")):
        with ch:
            with pytest.raises(grpc.RpcError) as denied:
                pb_grpc.EdgeAgentStub(ch).SearchContext(pb.SearchContextRequest(query="dentist"), timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert str(agent.data / "token") in (denied.value.details() or "")
            assert "7391" not in str(denied.value)
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=10)
            assert status.status == health_pb2.HealthCheckResponse.SERVING  # health stays open
            with pytest.raises(grpc.RpcError) as refl:
                list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
            assert refl.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with tcp_channel(target, agent_token(agent)) as ch:
        found = pb_grpc.EdgeAgentStub(ch).SearchContext(pb.SearchContextRequest(query="dentist"), timeout=10)
        assert any("7391" in h.item.body for h in found.hits)


BODY = b'{"model": "gemma-3-270m-q4_k_m", "messages": [{"role": "user", "content": "What is my locker code?"}], "max_tokens": 2, "edgecloud": {"use_context": true, "preference": "local_only"}}'


def test_cross_site_requests_are_refused(agent: Any) -> None:
    with httpx.Client(base_url=_http(agent), timeout=60) as c:
        # the page's own request: no token, its Host, its Origin, a "simple" content type
        r = c.post("/v1/chat/completions", content=BODY, headers={
            "host": "evil.example", "origin": "http://evil.example", "content-type": "text/plain"})
        assert r.status_code == 403 and "7391" not in r.text
        auth = {"authorization": f"Bearer {agent_token(agent)}"}
        for headers, status, word in (
            ({**auth, "host": "evil.example", "content-type": "application/json"}, 403, "Host"),
            ({**auth, "origin": "http://evil.example", "content-type": "application/json"}, 403, "Origin"),
            ({**auth, "content-type": "text/plain"}, 415, "Content-Type"),
            ({"content-type": "application/json"}, 401, "Authorization"),
        ):
            r = c.post("/v1/chat/completions", content=BODY, headers=headers)
            assert r.status_code == status and r.json()["error"]["message"].startswith(word), (headers, r.text)
            assert "7391" not in r.text
        pre = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}
        assert c.options("/v1/chat/completions", headers={**pre, "origin": "http://evil.example"}).status_code == 403
        ok = c.options("/v1/chat/completions", headers={**pre, "origin": ORIGIN})
        assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == ORIGIN
        r = c.post("/v1/chat/completions", content=BODY, headers={**auth, "content-type": "application/json", "origin": ORIGIN})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert c.get("/health").status_code == 200  # probes need no token
        # the Ollama routes stand behind the same guard
        ollama_body = b'{"model": "gemma-3-270m-q4_k_m", "stream": false, "messages": [{"role": "user", "content": "What is my locker code?"}]}'
        r = c.post("/api/chat", content=ollama_body, headers={"host": "evil.example", "origin": "http://evil.example",
                                                               "content-type": "text/plain"})
        assert r.status_code == 403 and "7391" not in r.text
        assert c.post("/api/chat", content=ollama_body, headers={"content-type": "application/json"}).status_code == 401
        assert c.get("/api/tags").status_code == 401 and c.get("/api/ps").status_code == 401
        assert c.get("/api/tags", headers=auth).status_code == 200


def test_cli_connects_over_tcp_with_the_token_file(agent: Any) -> None:
    out = _cli(agent, "stats", "--address", agent_tcp(agent))
    assert out.returncode == 0 and "requests by route" in out.stdout, out.stderr
    shown = _cli(agent, "token", "show")
    assert shown.returncode == 0 and shown.stdout.strip() == agent_token(agent)


def test_rotation_locks_the_old_token_out_without_a_restart(agent: Any) -> None:
    old = agent_token(agent)
    out = _cli(agent, "token", "rotate")
    assert out.returncode == 0, out.stderr
    new = agent_token(agent)
    assert new != old
    target, base = agent_tcp(agent), _http(agent)
    deadline = time.monotonic() + 5
    while True:
        with tcp_channel(target, old) as ch:
            try:
                pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                break
        assert time.monotonic() < deadline, "the old token still works 5 s after rotation"
        time.sleep(0.2)
    assert time.monotonic() < deadline - 3, "rotation took more than two seconds"
    with tcp_channel(target, new) as ch:
        pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=10)
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/v1/models", headers={"authorization": f"Bearer {old}"}).status_code == 401
        assert c.get("/v1/models", headers={"authorization": f"Bearer {new}"}).status_code == 200
    assert agent.proc.poll() is None
    assert "bearer token changed" in agent.log()


def test_a_second_user_is_refused_by_the_unix_socket_mode(agent: Any) -> None:
    """The gRPC unix socket is 0600 in a 0700 directory; the kernel refuses another
    user's connect (gRPC does not expose the connection's socket for SO_PEERCRED)."""
    sock = Path(agent_target(agent).removeprefix("unix:"))
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(agent.data.stat().st_mode) == 0o700
