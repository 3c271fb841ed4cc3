"""The gRPC server lifecycle both servers share: health (per-name readiness),
reflection, and the drain on shutdown (readiness off, then ``server.stop(grace)``)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection


class Lifecycle:
    """Health and reflection on ``server``; ``names`` are the readiness names."""

    def __init__(self, server: grpc.aio.Server, service_names: Sequence[str], readiness: Sequence[str]) -> None:
        self.server = server
        self.health = health.aio.HealthServicer()
        self.readiness = tuple(readiness)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection((*service_names, reflection.SERVICE_NAME, health.SERVICE_NAME), server)

    async def set(self, names: Sequence[str], serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in names:
            await self.health.set(name, status)

    async def ready(self, serving: bool) -> None:
        await self.set(self.readiness, serving)

    async def drain(self, grace_s: float) -> None:
        """Readiness off, then stop: calls in flight get ``grace_s`` to finish."""
        await self.ready(False)
        await self.server.stop(grace_s)
