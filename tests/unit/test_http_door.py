"""The HTTP door's guard and connection bounds, on a real uvicorn server on loopback
(in-process, no model): Host, Origin and CORS, content type, token; the connection
bound (the longest-idle connection makes room, 503 when every one is busy), the read
deadline for idle, slow-header and slow-body connections, the unix socket's peer uid."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from edge_agent.config import load_config
from edge_agent.daemon.http_door import bind_http
from edge_agent.transport.http_conn import ConnLimits, DoorServer
from edge_agent.transport.http_guard import DoorGuard, HostRule

TOKEN = "t0ken"


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """200 "ok" after reading the body; ``/slow`` answers after 1.5 s."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Door:
    """A DoorServer in a background event loop."""

    def __init__(self, *, listen: str = "127.0.0.1:0", limits: ConnLimits, origins: tuple[str, ...] = (),
                 hosts: tuple[str, ...] = (), token: bool = True) -> None:
        cfg = load_config(None, env={"EDGE_AGENT_HTTP": listen, "EDGE_AGENT_DATA_DIR": "/nonexistent"})
        sock, self.where, self.path = bind_http(cfg)
        guard = DoorGuard(_app, hosts=HostRule(hosts), origins=origins,
                          token=(lambda t: t == TOKEN.encode()) if token else None)
        self.server = DoorServer(uvicorn.Config(guard, log_config=None, access_log=False, lifespan="off"), limits)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task = asyncio.run_coroutine_threadsafe(self.server.serve(sockets=[sock]), self.loop)
        self.port = sock.getsockname()[1] if not self.path else 0

    def connections(self) -> int:
        return len(self.server.server_state.connections)

    def close(self) -> None:
        self.server.should_exit = True
        self.task.result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def door() -> Iterator[Door]:
    d = Door(limits=ConnLimits(max_connections=4, read_timeout_s=0.6), origins=("http://localhost:3000",))
    try:
        yield d
    finally:
        d.close()


def _client(d: Door) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{d.port}", timeout=5)


AUTH = {"authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}


def test_the_cross_site_attack_of_the_issue_is_refused(door: Door) -> None:
    with _client(door) as c:
        r = c.post("/v1/chat/completions", content=b"{}", headers={
            **AUTH, "host": "evil.example", "origin": "http://evil.example", "content-type": "text/plain"})
        assert r.status_code == 403 and "Host" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", content=b"{}", headers={**AUTH, **JSON, "origin": "http://evil.example"})
        assert r.status_code == 403 and "allowed_origins" in r.json()["error"]["message"]
        assert "access-control-allow-origin" not in r.headers
        r = c.post("/v1/chat/completions", content=b"{}", headers={**AUTH, "content-type": "text/plain"})
        assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", content=b"{}", headers=AUTH)
        assert r.status_code == 415
        assert c.post("/x", content=b"{}", headers={**AUTH, "content-type": "application/json; charset=utf-8"}).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:1", "[::1]:9", "LOCALHOST"])
def test_loopback_hosts_pass(door: Door, host: str) -> None:
    with _client(door) as c:
        assert c.get("/v1/models", headers={**AUTH, "host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.", "127.0.0.2", "localhost:x"])
def test_other_hosts_are_refused(door: Door, host: str) -> None:
    with _client(door) as c:
        r = c.get("/v1/models", headers={**AUTH, "host": host})
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"


def test_configured_hosts_pass() -> None:
    rule = HostRule(("myhost.local", "other.local:8080"))
    assert rule.allows("myhost.local:1234") and rule.allows("other.local:8080")
    assert not rule.allows("other.local:8081") and not rule.allows("evil.example")


def test_token_is_required_except_on_health(door: Door) -> None:
    with _client(door) as c:
        r = c.get("/v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/health").status_code == 200


def test_cors_preflight_only_for_allowed_origins_with_explicit_headers(door: Door) -> None:
    pre = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}
    with _client(door) as c:
        ok = c.options("/v1/chat/completions", headers={**pre, "origin": "http://localhost:3000"})
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "*" not in "".join(v for k, v in ok.headers.items() if k.startswith("access-control-"))
        assert ok.headers["access-control-allow-methods"] == "GET, POST"
        assert ok.headers["access-control-allow-headers"] == "authorization, content-type"
        bad = c.options("/v1/chat/completions", headers={**pre, "origin": "http://evil.example"})
        assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
        r = c.post("/x", content=b"{}", headers={**AUTH, **JSON, "origin": "http://localhost:3000"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: localhost\r\n",
                                  b"POST /x HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{"])
def test_idle_slow_header_and_slow_body_connections_are_closed(door: Door, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", door.port)) as s:
        s.sendall(sent)
        t0 = time.monotonic()
        assert _closed_by_server(s, 5)
        assert 0.4 < time.monotonic() - t0 < 3


def test_a_request_being_answered_is_not_cut_and_keep_alive_is_bounded(door: Door) -> None:
    with _client(door) as c:
        assert c.get("/slow", headers=AUTH).text == "ok"  # 1.5 s > read_timeout_s
    with socket.create_connection(("127.0.0.1", door.port)) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\nauthorization: Bearer t0ken\r\n\r\n")
        s.settimeout(3)
        assert b"200 OK" in s.recv(4096)
        assert _closed_by_server(s, 3)  # the kept-alive connection is closed after the deadline


def test_the_bound_evicts_the_longest_idle_and_refuses_when_all_are_busy(door: Door) -> None:
    idle = [socket.create_connection(("127.0.0.1", door.port)) for _ in range(4)]
    try:
        time.sleep(0.1)
        with _client(door) as c:  # a fifth, real client: the oldest idle connection makes room
            assert c.get("/x", headers=AUTH).status_code == 200
        assert _closed_by_server(idle[0], 0.3)
        assert door.connections() <= 4
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    results: list[int] = []

    def slow() -> None:
        with _client(door) as c:
            results.append(c.get("/slow", headers=AUTH).status_code)

    busy = [threading.Thread(target=slow) for _ in range(4)]
    for t in busy:
        t.start()
    time.sleep(0.5)
    with _client(door) as c:
        r = c.get("/x", headers=AUTH)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "max_connections" in r.json()["error"]["message"]
    for t in busy:
        t.join(10)
    assert results == [200] * 4


def test_unix_socket_refuses_another_uid(tmp_path: Path) -> None:
    sock_path = tmp_path / "run" / "door.sock"
    d = Door(listen=f"unix:{sock_path}", limits=ConnLimits(4, 5.0, owner_uid=os.geteuid() + 1), token=False)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
            try:
                s.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the door closed it before the request was written: refused all the same
            else:
                assert _closed_by_server(s, 3)
    finally:
        d.close()
    d = Door(listen=f"unix:{sock_path}", limits=ConnLimits(4, 5.0, owner_uid=os.geteuid()), token=False)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock_path)), base_url="http://localhost") as c:
            assert c.get("/x").text == "ok"
    finally:
        d.close()
