"""grpc.aio servicers of the EdgeAgent API and the daemon's lifecycle.

Servicers are thin: convert the message, call the service, convert back. Errors are
mapped to status codes by ``ErrorMappingInterceptor``. Lifecycle: bind (unix socket
0600, optional loopback TCP) -> health NOT_SERVING -> load model -> warm up ->
SERVING; on SIGTERM/SIGINT: NOT_SERVING -> ``server.stop(grace)`` -> close model and
databases. SIGHUP reloads the policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from orchestrator.errors import DomainError, InvalidArgument, Unavailable

from . import convert, datadir
from .app import connect_cloud
from .config import Config
from .errors_grpc import ErrorMappingInterceptor
from .metrics import StatsCollector, start_metrics_server
from .service import AgentService, Outcome

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EdgeAgent"].full_name
# Health names: LIVENESS is SERVING while the process serves at all; READINESS names
# ("" and the EdgeAgent service) are SERVING only with the model loaded and warmed up
# and not draining.
LIVENESS = "liveness"
READINESS = ("", SERVICE_NAME)


class EdgeAgentServicer(pb_grpc.EdgeAgentServicer):
    """Message conversion around ``AgentService``."""

    def __init__(self, cfg: Config) -> None:
        self._service: AgentService | None = None
        self.cfg = cfg

    @property
    def service(self) -> AgentService:
        """The request pipeline; UNAVAILABLE until the model is loaded and warm."""
        if self._service is None:
            raise Unavailable("the daemon is starting: the model is not loaded yet")
        return self._service

    def attach(self, service: AgentService) -> None:
        self._service = service

    def count_error(self) -> None:
        """Counts a request answered with an error status (all RPCs, any cause)."""
        if self._service is not None:
            self._service.stats.error()

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GenerateResponse]:
        req = convert.ask_request(request, self.cfg.limits)
        async for ev in self.service.generate(req):
            if isinstance(ev, Outcome):
                yield pb.GenerateResponse(done=convert.done(ev))
            else:
                yield pb.GenerateResponse(delta=ev)

    async def Complete(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.CompleteResponse:
        req = convert.ask_request(request, self.cfg.limits)
        parts: list[str] = []
        async for ev in self.service.generate(req):
            if isinstance(ev, Outcome):
                return pb.CompleteResponse(text="".join(parts), done=convert.done(ev))
            parts.append(ev)
        raise DomainError("generation ended without an outcome")  # pragma: no cover

    async def ExplainRoute(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.RouteDecision:
        plan = await self.service.plan(convert.ask_request(request, self.cfg.limits))
        ids = tuple(i.id for i in plan.context.items) if plan.context else ()
        return convert.route_decision(plan.decision, ids)

    async def PutContext(self, request: pb.PutContextRequest, context: grpc.aio.ServicerContext) -> pb.PutContextResponse:
        items = convert.new_items(request)
        ids = await asyncio.to_thread(self.service.store.put, items)  # type: ignore[attr-defined]
        return pb.PutContextResponse(ids=ids)

    async def SearchContext(self, request: pb.SearchContextRequest, context: grpc.aio.ServicerContext) -> pb.SearchContextResponse:
        if not request.query.strip():
            raise InvalidArgument("query", "must not be empty")
        if not 0 <= request.limit <= 100:
            raise InvalidArgument("limit", "must be in 1..100 (0 means 10)")
        since, until = convert.time_range(request.since, request.until)
        hits = await asyncio.to_thread(
            self.service.store.search,  # type: ignore[attr-defined]
            request.query,
            kinds=tuple(request.kinds),
            since=since,
            until=until,
            tags=tuple(request.tags),
            sensitivities=tuple(request.sensitivities),
            limit=request.limit or 10,
        )
        return convert.search_hits(hits)

    async def DeleteContext(self, request: pb.DeleteContextRequest, context: grpc.aio.ServicerContext) -> pb.DeleteContextResponse:
        chosen = sum([bool(request.ids), bool(request.source), bool(request.query), request.all])
        if chosen != 1:
            raise InvalidArgument("ids|source|query|all", "set exactly one of ids, source, query or all")
        n = await asyncio.to_thread(
            self.service.store.delete,  # type: ignore[attr-defined]
            ids=tuple(request.ids),
            source=request.source or None,
            query=request.query or None,
            everything=request.all,
        )
        if n:
            await self.service.forget_drafts()
        return pb.DeleteContextResponse(deleted=n)

    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.StatsResponse:
        s = self.service.stats.snapshot()
        store_stats = await asyncio.to_thread(self.service.store.stats)  # type: ignore[attr-defined]
        circuit = self.service.cloud.breaker.state if self.service.cloud else "disabled"
        return convert.stats_response(
            s, int(store_stats.get("items", 0)), circuit, self.service.runtime()
        )

    async def ReloadPolicy(self, request: pb.ReloadPolicyRequest, context: grpc.aio.ServicerContext) -> pb.ReloadPolicyResponse:
        path = await asyncio.to_thread(self.service.routing.reload)
        return pb.ReloadPolicyResponse(policy_file=path)


@dataclass
class Bound:
    """Addresses the daemon listens on."""

    socket: Path
    tcp_port: int | None
    metrics_port: int | None = None


async def serve(
    cfg: Config,
    build_service: Callable[[], AgentService],
    *,
    ready: Callable[[Bound], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT or ``stop_event``."""
    opts = [
        ("grpc.max_receive_message_length", cfg.server.max_message_bytes),
        ("grpc.max_send_message_length", cfg.server.max_message_bytes),
    ]
    servicer = EdgeAgentServicer(cfg)
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor(on_error=servicer.count_error)], options=opts)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), server)
    pb_grpc.add_EdgeAgentServicer_to_server(servicer, server)
    for name in READINESS:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)

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
            server.add_insecure_port(f"unix:{sock}")
            tcp_port = server.add_insecure_port(cfg.server.listen) if cfg.server.listen else None
            await server.start()
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
    except BaseException:
        lock.release()
        raise
    sock_id = datadir.socket_identity(sock)
    log.info("listening on unix:%s%s", sock, f" and {cfg.server.listen} (port {tcp_port})" if tcp_port else "")

    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    service: AgentService | None = None
    try:
        load = asyncio.ensure_future(asyncio.to_thread(build_service))
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({load, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not load.done():  # stopped while loading
            service = await load
            return
        waiter.cancel()
        service = load.result()
        service.cloud = connect_cloud(cfg)
        if service.cloud is not None:
            await service.cloud.fetch_info()
        if cfg.model.warmup:
            warm_ms = await _warm_up(service)
            # retry hints start from what a default-length answer costs on this host
            measured = service.runtime().get("plain_step_ms")
            step_ms = float(measured) if isinstance(measured, (int, float)) and measured > 0 else warm_ms / 2
            service.slot.seed((warm_ms + step_ms * cfg.limits.default_max_tokens) / 1000.0)

        def reload_policy() -> None:
            try:
                service.routing.reload()  # type: ignore[union-attr]
            except DomainError as exc:
                log.error("policy reload rejected, old policy stays: %s", exc.message)

        loop.add_signal_handler(signal.SIGHUP, reload_policy)
        for name in READINESS:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        servicer.attach(service)
        metrics_port = None
        if cfg.server.metrics:
            metrics_port = start_metrics_server(
                cfg.server.metrics,
                StatsCollector(service.stats.snapshot, lambda: service.cloud.breaker.state if service.cloud else "disabled", lambda: service.slot.waiting),  # type: ignore[union-attr]
            )
        log.info("ready")
        if ready:
            ready(Bound(sock, tcp_port, metrics_port))
        await stop.wait()
    finally:
        log.info("shutting down: draining")
        for name in READINESS:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.stop(cfg.server.grace_s)
        if service is not None:
            await service.close()
        datadir.release_socket(sock, sock_id)
        lock.release()
        log.info("stopped")


async def _warm_up(service: AgentService) -> float:
    """One short generation; returns its duration in ms."""
    from .engine.api import Finished, SamplingParams

    total = 0.0
    async for ev in service._run_engine("Hello", SamplingParams(max_tokens=2), ()):
        if isinstance(ev, Finished):
            total = ev.usage.total_ms
            log.info("warm-up done in %.0f ms", total)
    return total
