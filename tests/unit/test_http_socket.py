"""The HTTP front door's TCP socket turns Nagle off on every accepted connection.

With Nagle on, a kept-alive connection's response body waits behind its headers for
the client's delayed ACK (about 40 ms a request on Linux)."""

from __future__ import annotations

import asyncio
import socket

from edge_agent.config import load_config
from edge_agent.daemon.http_door import bind_http


def test_accepted_tcp_connections_have_nodelay() -> None:
    cfg = load_config(None, env={"EDGE_AGENT_HTTP": "127.0.0.1:0"})
    sock, where, path = bind_http(cfg)
    assert path is None and where.startswith("http://127.0.0.1:")
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def run() -> None:
        accepted = asyncio.Event()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            seen.append(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            accepted.set()
            writer.close()

        server = await asyncio.start_server(on_client, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(accepted.wait(), 10)
            writer.close()

    asyncio.run(run())
    assert seen and seen[0] != 0


def test_a_unix_socket_is_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "run" / "openai.sock"
    cfg = load_config(None, env={"EDGE_AGENT_HTTP": f"unix:{target}"})
    sock, where, path = bind_http(cfg)
    try:
        assert path == target and where == f"unix:{target}"
        assert target.stat().st_mode & 0o777 == 0o600
        assert target.parent.stat().st_mode & 0o777 == 0o700
    finally:
        sock.close()


def test_a_live_socket_in_the_way_is_named_by_its_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from common.errors import ConfigError

    target = tmp_path / "openai.sock"
    cfg = load_config(None, env={"EDGE_AGENT_HTTP": f"unix:{target}"})
    sock, _, _ = bind_http(cfg)
    sock.listen(1)
    try:
        with pytest.raises(ConfigError) as info:
            bind_http(cfg)
        assert info.value.key == "http.listen" and "live process" in info.value.expected
    finally:
        sock.close()
