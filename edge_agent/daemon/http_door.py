"""The OpenAI-compatible HTTP door as the daemon runs it: bound here (a 0600 unix socket
or loopback TCP), served by uvicorn on the daemon's event loop behind its guard (Host,
Origin, token, content type) and its connection bounds, stopped with the grace time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import uvicorn

from common.errors import ConfigError
from edge_agent import datadir
from edge_agent.config import Config
from edge_agent.modeldir import catalog
from edge_agent.pipeline.readiness import Readiness
from edge_agent.transport.auth import TokenCheck
from edge_agent.transport.http_conn import ConnLimits, DoorServer
from edge_agent.transport.http_guard import DoorGuard, HostRule
from edge_agent.transport.openai_http import OpenAIFrontDoor

log = logging.getLogger(__name__)


class HttpDoor:
    """The OpenAI-compatible front door on a socket bound here (0600 unix socket or
    loopback TCP), served by uvicorn on the daemon's event loop behind its guard (Host,
    Origin, token, content type) and its connection bounds."""

    def __init__(self, server: DoorServer, sock: socket.socket, where: str, path: Path | None, auth: str) -> None:
        self.where = where
        self.auth = auth
        self._server = server
        self._path = path
        self._identity = datadir.socket_identity(path) if path else None
        self._task = asyncio.ensure_future(server.serve(sockets=[sock]))

    @classmethod
    def start(cls, cfg: Config, readiness: Readiness, tokens: TokenCheck, max_connections: int) -> HttpDoor:
        app = OpenAIFrontDoor(
            readiness, model_name=catalog.Catalog(cfg).active().name, limits=cfg.limits,
            max_body_bytes=cfg.server.max_message_bytes, alias=cfg.model.alias,
        )
        unix = cfg.http_socket_path is not None
        if cfg.http.token:
            fixed = TokenCheck(None, fixed=cfg.http.token)
            check, auth = fixed.accepts, "bearer token from http.token"
        elif unix:
            check, auth = None, "unix socket 0600, same user only"
        else:
            check, auth = tokens.accepts, f"bearer token from {tokens.path}"
        guard = DoorGuard(app, hosts=HostRule(cfg.http.allowed_hosts), origins=cfg.http.allowed_origins, token=check)
        limits = ConnLimits(max_connections, cfg.http.read_timeout_s, os.geteuid() if unix else None)
        server = DoorServer(uvicorn.Config(
            guard, log_config=None, access_log=False, lifespan="off", server_header=False,
            timeout_keep_alive=max(1, int(cfg.http.read_timeout_s)),
            timeout_graceful_shutdown=max(1, int(cfg.server.grace_s)),
        ), limits)
        sock, where, path = bind_http(cfg)
        return cls(server, sock, where, path, auth)

    async def stop(self) -> None:
        """Stop accepting, let running requests finish (the grace time), close."""
        self._server.should_exit = True
        try:
            await self._task
        except Exception:
            log.exception("HTTP server stopped with an error")
        if self._path is not None:
            datadir.release_socket(self._path, self._identity)


def bind_http(cfg: Config) -> tuple[socket.socket, str, Path | None]:
    """The HTTP front door's listening socket: a 0600 unix socket or loopback TCP;
    (socket, where it listens, the unix socket's path)."""
    path = cfg.http_socket_path
    if path is not None:
        if not path.parent.exists():
            datadir.make_private(path.parent)
        datadir.claim_socket(path, "http.listen")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        where = f"unix:{path}"
    else:
        host, _, port = cfg.http.listen.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto named: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
        # is IPPROTO_TCP, and with it on, a kept-alive connection's response body waits
        # ~40 ms behind its headers for the client's delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            sock.close()
            raise ConfigError("edge-agent serve", "http.listen", f"an address this host can listen on (got "
                              f"{cfg.http.listen!r}: {exc.strerror or exc}; also set by EDGE_AGENT_HTTP)") from None
        bound = sock.getsockname()[1]
        where = f"http://{'[' + host + ']' if family == socket.AF_INET6 else host}:{bound}"
    sock.listen(128)
    sock.setblocking(False)
    return sock, where, path
