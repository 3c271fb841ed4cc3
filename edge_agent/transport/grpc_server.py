"""The grpc.aio servicer of the EdgeAgent API: every method converts the message,
makes one service call and converts back. Errors become status codes through
``common.grpc_status.ErrorMappingInterceptor``.

A request with a JSON schema is converted in a worker thread: checking the schema and
building its grammar takes milliseconds, which the event loop (health checks, other
streams) must not wait for. Its size is checked first, here, on its bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from common import tools as toolfmt
from common.errors import DomainError, FailedPrecondition, NotFound
from common.schema_limits import check_schema_bytes
from edge_agent.config import LimitsConfig
from edge_agent.modeldir.catalog import check_name
from edge_agent.pipeline.readiness import Readiness
from edge_agent.pipeline.service import AgentService
from edge_agent.pipeline.types import AskRequest, Outcome
from edge_agent.transport import convert

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EdgeAgent"].full_name


class EdgeAgentServicer(pb_grpc.EdgeAgentServicer):
    """Message conversion around ``AgentService``, read through ``ready`` (UNAVAILABLE
    until the model is loaded and warm)."""

    max_message_bytes = convert.DEFAULT_MAX_MESSAGE_BYTES  # the server's send limit ([server] max_message_bytes)

    def __init__(self, limits: LimitsConfig, ready: Readiness,
                 switch: Callable[[str], Awaitable[tuple[str, str, float]]] | None = None) -> None:
        self._limits = limits
        self._ready = ready
        self._switch = switch  # edge_agent.daemon.wiring.switch_model, bound to the config

    @property
    def service(self) -> AgentService:
        return self._ready.service

    async def _ask(self, request: pb.GenerateRequest) -> AskRequest:
        """The checked request; one with a JSON schema is checked in a worker thread."""
        if not request.params.json_schema and not request.tools.tools:
            return convert.ask_request(request, self._limits)
        check_schema_bytes(request.params.json_schema, "params.json_schema")
        return await asyncio.to_thread(convert.ask_request, request, self._limits)

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GenerateResponse]:
        req = await self._ask(request)
        held: list[str] = []  # an answer in the tool-call format, shown once it is whole
        async for ev in self.service.generate(req):
            if isinstance(ev, Outcome) and req.tools is not None:
                content, calls = toolfmt.parse_answer("".join(held))
                if content:
                    yield pb.GenerateResponse(delta=content)
                yield pb.GenerateResponse(done=convert.done(ev, calls))
            elif isinstance(ev, Outcome):
                yield pb.GenerateResponse(done=convert.done(ev))
            elif req.tools is not None:
                held.append(ev)
            else:
                yield pb.GenerateResponse(delta=ev)

    async def Complete(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.CompleteResponse:
        req = await self._ask(request)
        parts: list[str] = []
        async for ev in self.service.generate(req):
            if isinstance(ev, Outcome) and req.tools is not None:
                content, calls = toolfmt.parse_answer("".join(parts))
                return pb.CompleteResponse(text=content or "", done=convert.done(ev, calls))
            if isinstance(ev, Outcome):
                return pb.CompleteResponse(text="".join(parts), done=convert.done(ev))
            parts.append(ev)
        raise DomainError("generation ended without an outcome")  # pragma: no cover

    async def ExplainRoute(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.RouteDecision:
        service = self.service
        plan = await service.plan(await self._ask(request))
        return convert.route_decision(plan.decision, plan.context_ids)

    async def PutContext(self, request: pb.PutContextRequest, context: grpc.aio.ServicerContext) -> pb.PutContextResponse:
        ids = await self.service.put_context(convert.new_items(request))
        return pb.PutContextResponse(ids=ids)

    async def SearchContext(self, request: pb.SearchContextRequest, context: grpc.aio.ServicerContext) -> pb.SearchContextResponse:
        hits = await self.service.search_context(convert.search_query(request))
        return convert.search_hits(hits, self.max_message_bytes)  # what does not fit is counted in ``omitted``

    async def DeleteContext(self, request: pb.DeleteContextRequest, context: grpc.aio.ServicerContext) -> pb.DeleteContextResponse:
        n = await self.service.delete_context(convert.delete_selector(request))
        return pb.DeleteContextResponse(deleted=n)

    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.StatsResponse:
        snapshot, items = await self.service.stats_snapshot()
        return convert.stats_response(
            snapshot, items, self.service.circuit(), self.service.runtime(), self.service.model_state()
        )

    async def ReloadPolicy(self, request: pb.ReloadPolicyRequest, context: grpc.aio.ServicerContext) -> pb.ReloadPolicyResponse:
        return pb.ReloadPolicyResponse(policy_file=await self.service.reload_policy())

    async def UseModel(self, request: pb.UseModelRequest, context: grpc.aio.ServicerContext) -> pb.UseModelResponse:
        if self._switch is None:
            raise FailedPrecondition("this server cannot switch models")
        self._ready.service  # noqa: B018 - UNAVAILABLE until the first model is ready
        previous, model, seconds = await self._switch(check_name(request.name))
        return pb.UseModelResponse(previous=previous, model=model, seconds=seconds)

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        texts, app_id, model = convert.embed_request(request, self._limits)
        dedicated = self.service.embedding_names()
        if model and model not in dedicated and model != self.service.model_state()["name"]:
            known = ", ".join([str(self.service.model_state()["name"]), *dedicated])
            raise NotFound(f"model: no model named {model[:64]!r} (known: {known})")
        return convert.embed_response(await self.service.embed(texts, app_id, model if model in dedicated else ""))

