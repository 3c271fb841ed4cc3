"""The daemon's lifecycle around its front doors.

bind (unix socket 0600 in a private data directory held by a single-instance lock;
optional loopback TCP, which needs the bearer token; the optional OpenAI-compatible
HTTP front door on its own unix socket or loopback port) -> health NOT_SERVING -> open
the service (self-check, model, stores, cloud) -> warm up -> SERVING; SIGTERM/SIGINT:
NOT_SERVING -> drain (``server.stop(grace)``, the HTTP server finishing its requests)
-> close the service, the metrics server, the socket and the lock. SIGHUP reloads the
policy.

The unix socket and TCP are two gRPC servers sharing one servicer and one health
service, so that each has its own connection bound (``doors``): a flood of TCP
connections cannot take the file handles the unix socket needs. Both doors, gRPC and
HTTP, are handed one ``Readiness``: the service once it is loaded and warm, and the
error counter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from common.errors import ConfigError, DomainError
from common.grpc_status import ErrorMappingInterceptor
from common.rpc import BearerInterceptor, Lifecycle
from edge_agent import datadir
from edge_agent.adapters.metrics import MetricsServer, StatsCollector
from edge_agent.config import Config
from edge_agent.daemon import doors
from edge_agent.daemon.http_door import HttpDoor
from edge_agent.pipeline.readiness import Readiness
from edge_agent.pipeline.service import AgentService
from edge_agent.transport.auth import TokenCheck
from edge_agent.transport.grpc_server import SERVICE_NAME, EdgeAgentServicer

log = logging.getLogger(__name__)

# Health names: LIVENESS is SERVING while the process serves at all; READINESS names
# ("" and the EdgeAgent service) are SERVING only with the model loaded and warmed up
# and not draining.
LIVENESS = "liveness"
READINESS = ("", SERVICE_NAME)


@dataclass
class Bound:
    """Addresses the daemon listens on."""

    socket: Path
    tcp_port: int | None
    metrics_port: int | None = None
    http: str = ""  # the OpenAI front door: "unix:PATH" or "http://127.0.0.1:PORT"


async def serve(
    cfg: Config,
    open_service: Callable[[], Awaitable[AgentService]],
    *,
    ready: Callable[[Bound], None] | None = None,
    stop_event: asyncio.Event | None = None,
    switch_model: Callable[[AgentService, str], Awaitable[tuple[str, str, float]]] | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT or ``stop_event``."""
    caps = doors.connection_caps(cfg, doors.raise_fd_limit())
    datadir.make_private(cfg.data_path)
    tokens = TokenCheck(cfg.token_path)  # made at the first start: `edge-agent token show`
    readiness = Readiness()
    switch = None if switch_model is None else (lambda name: switch_model(readiness.service, name))
    servers = _grpc_servers(cfg, readiness, tokens, caps, switch)
    lifecycle = Lifecycle(servers, (SERVICE_NAME,), READINESS)
    await lifecycle.ready(False)
    await lifecycle.set((LIVENESS,), True)

    lock, sock, tcp_port = await _bind(cfg, servers)
    sock_id = datadir.socket_identity(sock)
    log.info("listening on unix:%s%s", sock, f" and {cfg.server.listen} (port {tcp_port}, bearer token)" if tcp_port else "")
    http: HttpDoor | None = None
    if cfg.http.listen:
        try:
            http = HttpDoor.start(cfg, readiness, tokens, caps.http)
        except BaseException:
            await asyncio.gather(*(server.stop(0) for server in servers))
            datadir.release_socket(sock, sock_id)
            lock.release()
            raise
        log.info("OpenAI-compatible HTTP on %s (%s)", http.where, http.auth)

    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    service: AgentService | None = None
    metrics: MetricsServer | None = None
    try:
        opening = asyncio.ensure_future(open_service())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({opening, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not opening.done():  # stopped while loading
            service = await opening
            return
        waiter.cancel()
        service = opening.result()
        if cfg.model.warmup:
            await service.warm_up(cfg.limits.default_max_tokens)
        loop.add_signal_handler(signal.SIGHUP, _reloader(service))
        readiness.attach(service)  # before gRPC says SERVING, so both doors agree
        await lifecycle.ready(True)
        service.start_indexing()
        if cfg.server.metrics:
            metrics = MetricsServer(cfg.server.metrics, StatsCollector(
                service.figures, service.circuit, lambda: service.slot.waiting,
                runtime=service.engine.runtime_state, active=lambda: service.slot.active,
            ), tokens.accepts)
        log.info("ready")
        if ready:
            ready(Bound(sock, tcp_port, metrics.port if metrics else None, http.where if http else ""))
        await stop.wait()
    finally:
        log.info("shutting down: draining")
        await asyncio.gather(lifecycle.drain(cfg.server.grace_s), http.stop() if http else asyncio.sleep(0))
        if metrics is not None:
            metrics.stop()
        if service is not None:
            await service.close()
        datadir.release_socket(sock, sock_id)
        lock.release()
        log.info("stopped")


def _grpc_servers(cfg: Config, readiness: Readiness, tokens: TokenCheck, caps: doors.Caps,
                  switch: Callable[[str], Awaitable[tuple[str, str, float]]] | None) -> list[grpc.aio.Server]:
    """One server for the unix socket and, with ``server.listen``, one for TCP that
    needs the bearer token; each with its own connection bound."""
    servicer = EdgeAgentServicer(cfg.limits, readiness, switch=switch)
    servicer.max_message_bytes = cfg.server.max_message_bytes
    errors = ErrorMappingInterceptor(on_error=readiness.count_error)
    servers = [grpc.aio.server(interceptors=[errors], options=doors.grpc_options(cfg, caps.grpc_unix))]
    if cfg.server.listen:
        denied = (f"authorization: a bearer token is required on TCP ('authorization: Bearer <token>'; "
                  f"the token is in {cfg.token_path}: `edge-agent token show`)")
        servers.append(grpc.aio.server(
            interceptors=[BearerInterceptor(tokens.accepts, denied), errors],
            options=doors.grpc_options(cfg, caps.grpc_tcp),
        ))
    for server in servers:
        pb_grpc.add_EdgeAgentServicer_to_server(servicer, server)
    return servers


async def _bind(cfg: Config, servers: list[grpc.aio.Server]) -> tuple[datadir.InstanceLock, Path, int | None]:
    """Lock the data directory and listen: the socket is 0600, a stale one is replaced,
    a live one (another daemon) or anything that is not a socket is refused."""
    datadir.make_private(cfg.data_path)
    lock = datadir.InstanceLock(cfg.data_path)
    lock.acquire()  # a second daemon on this directory stops here, naming the holder
    sock = cfg.socket_path
    try:
        if not sock.parent.exists():  # a directory of its own: made 0700 (an existing one is left)
            datadir.make_private(sock.parent)
        datadir.claim_socket(sock)
        old_umask = os.umask(0o177)  # the socket is created 0600
        try:
            servers[0].add_insecure_port(f"unix:{sock}")
            tcp_port = _listen_tcp(cfg, servers[1]) if len(servers) > 1 else None
            for server in servers:
                await server.start()
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
    except BaseException:
        lock.release()
        raise
    return lock, sock, tcp_port


def _listen_tcp(cfg: Config, server: grpc.aio.Server) -> int:
    try:
        return int(server.add_insecure_port(cfg.server.listen))
    except RuntimeError:
        raise ConfigError("edge-agent serve", "server.listen", f"an address this host can listen on (got {cfg.server.listen!r}: "
                          "in use, or not an address of this host; also set by EDGE_AGENT_LISTEN)") from None


def _reloader(service: AgentService) -> Callable[[], None]:
    def reload_policy() -> None:
        try:
            service.routing.reload()
        except DomainError as exc:
            log.error("policy reload rejected, old policy stays: %s", exc.message)

    return reload_policy
