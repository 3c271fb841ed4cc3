"""The request path: plan (retrieve, decide), run (one runner), finish (figures, stats,
log line). Transport-free: the gRPC servicers and any other front door convert their
messages and call one method here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace

from common.chat import Prompt, as_text
from common.errors import OutOfRange, PermissionDenied
from edge_agent.context.api import Hit, NewItem, Retrieved
from edge_agent.context.vectors import Vector
from edge_agent.engine.api import Embeddings
from edge_agent.pipeline.egress import schema_strings, stored_values
from edge_agent.pipeline.indexing import ThreadEmbedder, VectorSearch
from edge_agent.pipeline.local import AsyncEngine
from edge_agent.pipeline.ports import CloudLink, ContextStore, Engine
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.runners import Runners, Step
from edge_agent.pipeline.slot import ModelSlot
from edge_agent.pipeline.stats import Stats, StatsSnapshot
from edge_agent.pipeline.types import (
    AskRequest,
    ContextQuery,
    Event,
    ForgetSelector,
    Outcome,
    Plan,
    Run,
    compose_messages,
    compose_prompt,
)
from orchestrator.pii_lexicon import lexicon
from orchestrator.types import ContextRef, RouteRequest, StoredValue, Target

log = logging.getLogger(__name__)


class AgentService:
    """Everything the daemon does, for any front door."""

    def __init__(
        self,
        engine: Engine,
        store: ContextStore,
        routing: RoutingState,
        *,
        cloud: CloudLink | None = None,
        queue_depth: int = 16,
        per_app: int = 0,
        context_token_budget: int = 512,
        runtime: dict[str, str] | None = None,
        keep_alive_s: float | None = None,
    ) -> None:
        self.engine = AsyncEngine(engine, keep_alive_s=keep_alive_s)
        self.store = store
        self.routing = routing
        self.cloud = cloud
        self.slot = ModelSlot(queue_depth, capacity=self.engine.parallel, per_app=per_app)
        self.stats = Stats()
        self.runners = Runners(self.engine, self.slot, routing, cloud)
        self._runtime_static = dict(runtime or {})  # build variant, system info, self-check
        self._context_budget = context_token_budget
        #: hybrid retrieval's vectors ([context] retrieval = "hybrid"), set by the wiring
        self.vectors: VectorSearch | None = None
        #: the embedding GGUF ([context] embedding_model), which apps may name as well
        self.embedding_model: ThreadEmbedder | None = None

    # -- generation -------------------------------------------------------------------
    async def plan(self, req: AskRequest) -> Plan:
        """Retrieve context and decide the route (no generation)."""
        started = time.perf_counter()
        schema = schema_strings(req.params.json_schema)
        vector = None
        if req.use_context and self.vectors is not None:
            vector = await self.vectors.query_vector(_query_text(req))
        retrieved, contacts, stored = await asyncio.to_thread(self._gather, req, schema, vector)
        outgoing: Prompt
        if req.messages:
            outgoing = compose_messages(req.messages, retrieved)
            prompt = self.engine.chat_prompt(outgoing)
        else:
            outgoing = prompt = compose_prompt(req.prompt, retrieved)
        prompt_tokens = self.engine.count_tokens(prompt)
        route_req = RouteRequest(
            prompt=as_text(outgoing),  # every message is checked (PII, keywords) and redacted
            prompt_tokens=prompt_tokens,
            max_tokens=req.params.max_tokens,
            preference=req.preference,
            deadline_ms=req.deadline_ms,
            max_cost=req.max_cost,
            marked_personal=req.personal,
            labels=req.labels,
            app_id=req.app_id,
            context=_refs(retrieved),
            contact_names=contacts,
            stop=req.params.stop,  # applied on the device, but checked like the prompt
            schema_strings=schema,  # the JSON schema leaves with the prompt
            stored_values=stored,
        )
        cloud_ok = self.cloud is not None and self.cloud.available
        # In a worker thread: finding names in a long prompt and a schema's strings takes
        # milliseconds, and the event loop serves every other request meanwhile.
        decision = await asyncio.to_thread(
            self.routing.decide, route_req, cloud_available=cloud_ok, cloud=self.cloud.info if self.cloud else None
        )
        n_ctx = self.engine.n_ctx
        if decision.target is Target.LOCAL and prompt_tokens + 1 >= n_ctx:  # +1: BOS
            # the same check the engine applies, so a dry run (ExplainRoute) says it too
            raise OutOfRange("prompt", f"{prompt_tokens + 1} tokens do not fit the context of {n_ctx}")
        deadline = started + (req.deadline_ms or self.routing.default_deadline_ms) / 1000
        request_id = req.request_id or uuid.uuid4().hex[:16]
        return Plan(request_id, req, decision, prompt, prompt_tokens, retrieved, started, deadline, outgoing)

    def _gather(
        self, req: AskRequest, schema: tuple[str, ...], vector: tuple[Vector, str] | None = None
    ) -> tuple[Retrieved | None, tuple[str, ...], tuple[StoredValue, ...]]:
        """Blocking store reads for a plan: context for the prompt (hybrid with the
        prompt's ``vector`` and its model), contact names for PII, and the values of
        sensitive items the request spells (with context on or off)."""
        retrieved = None
        if req.use_context:
            vec, model = vector if vector is not None else (None, "")
            retrieved = self.store.retrieve(
                _query_text(req), token_budget=self._context_budget,
                count_tokens=self.engine.count_tokens, vector=vec, vector_model=model,
            )
        own = [m.content for m in req.messages] if req.messages else [req.prompt]
        stored = stored_values(self.store, [*own, *req.params.stop, *schema])
        return retrieved, tuple(self.store.contact_names()), stored

    async def generate(self, req: AskRequest) -> AsyncIterator[Event]:
        """Stream text deltas, then one Outcome."""
        async for ev in self.execute(await self.plan(req)):
            yield ev

    async def execute(self, plan: Plan) -> AsyncGenerator[Event, None]:
        """Run a plan: text deltas, then one Outcome. A front door that must answer
        with the route before the first token (an HTTP header) plans first."""
        if plan.decision.target is Target.REJECT:
            raise PermissionDenied(f"policy rejected the request: {plan.decision.explanation}")
        first_ms: float | None = None
        run: Run | None = None
        try:
            async for step in self._runner(plan):
                if isinstance(step, Run):
                    run = step
                    continue
                if first_ms is None:
                    first_ms = self._ms_since(plan)
                yield step
        except (asyncio.CancelledError, GeneratorExit):
            d = plan.decision
            log.info(
                "request id=%s route=%s rules=%s finish=cancelled after %.0f ms",
                plan.request_id, d.target.value, ",".join(d.rules_fired), self._ms_since(plan),
            )
            self.stats.cancelled()
            raise
        assert run is not None, "a runner ends with its Run"
        total_ms = self._ms_since(plan)
        yield self._finish(Outcome.of(plan, run, ttft_ms=first_ms if first_ms is not None else total_ms, total_ms=total_ms))

    def _runner(self, plan: Plan) -> AsyncIterator[Step]:
        d = plan.decision
        if d.target in (Target.CLOUD, Target.CLOUD_REDACTED):
            return self.runners.cloud_with_fallback(plan)
        if d.escalate_to is not None and self.cloud is not None and self.cloud.available:
            return self.runners.cascade(plan)
        return self.runners.local(plan)

    def _finish(self, out: Outcome) -> Outcome:
        u = out.usage
        self.stats.record(out.route, u, local="local" in out.route.split("+"), fallback=out.fallback)
        if u.energy_j > 0 and u.prompt_tokens + u.completion_tokens > 0:
            self.routing.estimators.observe_energy(u.energy_j / (u.prompt_tokens + u.completion_tokens))
        log.info(
            "request id=%s route=%s rules=%s fallback=%s prompt_tokens=%d completion_tokens=%d ttft_ms=%.1f tok_s=%.1f finish=%s",
            out.request_id, out.route, ",".join(out.decision.rules_fired), out.fallback, u.prompt_tokens,
            u.completion_tokens, u.ttft_ms, u.tokens_per_s, out.finish_reason,
        )
        return out

    @staticmethod
    def _ms_since(plan: Plan) -> float:
        return (time.perf_counter() - plan.started) * 1000

    # -- personal context ------------------------------------------------------------
    def embedding_names(self) -> tuple[str, ...]:
        """Models besides the generating one that embed on request (by name)."""
        return () if self.embedding_model is None else (self.embedding_model.name,)

    async def embed(self, texts: Sequence[str], app_id: str = "", model: str = "") -> Embeddings:
        """Vectors of ``texts``, always computed on the device and nothing of them leaves
        (no route, no ledger row): by the embedding model when ``model`` names it (see
        ``embedding_names``), else by the local model."""
        t0 = time.perf_counter()
        dedicated = self.embedding_model if model and model in self.embedding_names() else None
        out = await (dedicated.embeddings(texts) if dedicated is not None else self.engine.embed(texts))
        log.info("embeddings app=%s inputs=%d model=%s prompt_tokens=%d ms=%.1f", app_id or "-",
                 len(texts), dedicated.name if dedicated else "local", out.prompt_tokens,
                 (time.perf_counter() - t0) * 1000)
        return out

    async def put_context(self, items: Sequence[NewItem]) -> list[str]:
        ids = await asyncio.to_thread(self.store.put, items)
        if self.vectors is not None:
            self.vectors.written()
        return ids

    async def search_context(self, q: ContextQuery) -> list[Hit]:
        return await asyncio.to_thread(
            self.store.search, q.text, kinds=q.kinds, since=q.since, until=q.until,
            tags=q.tags, sensitivities=q.sensitivities, limit=q.limit,
        )

    async def delete_context(self, which: ForgetSelector) -> int:
        """Forget items; the engine's draft corpus is dropped too, so forgotten text is
        not kept for drafting."""
        n = await asyncio.to_thread(
            self.store.delete, ids=which.ids, source=which.source, query=which.query, everything=which.everything
        )
        if n:
            await self.engine.forget_drafts()
        return n

    # -- the daemon -------------------------------------------------------------------
    def circuit(self) -> str:
        return self.cloud.circuit if self.cloud is not None else "disabled"

    async def stats_snapshot(self) -> tuple[StatsSnapshot, int]:
        """Request figures and the number of items in the store."""
        store = await asyncio.to_thread(self.store.stats)
        items = store.get("items", 0)
        return self.figures(), int(items) if isinstance(items, (int, float)) else 0

    def figures(self) -> StatsSnapshot:
        """The request figures; cloud spend counts every attempt, as the ledger does."""
        return replace(self.stats.snapshot(), cloud_spend=self.routing.spent)

    def runtime(self) -> dict[str, object]:
        """The runtime's build and self-check with the engine's live figures."""
        return {**self._runtime_static, **self.engine.runtime_state()}

    def model_state(self) -> dict[str, object]:
        """The local model's residency: name, state, keep-alive, loads and unloads."""
        e = self.engine
        expires = e.expires_in_s()
        return {
            "name": self.engine.engine.model_name,
            "state": e.state,
            "keep_alive_s": -1.0 if e.keep_alive_s is None else e.keep_alive_s,
            "expires_in_s": -1.0 if expires is None else expires,
            "loads": e.loads,
            "unloads": e.unloads,
            "active": self.slot.active,
            "waiting": self.slot.waiting,
            "queue_depth": self.slot.depth,
        }

    async def switch_engine(self, engine: Engine) -> str:
        """Serve with ``engine`` from now on (``edge-agent model use`` on a running
        daemon): new requests wait while the running ones finish, then the engines are
        swapped and the waiting requests run on the new one. Returns the old model's name."""
        async with self.slot.exclusive():
            old = await self.engine.swap(engine)
        log.info("model switched live: %s -> %s", old.model_name, engine.model_name)
        return str(old.model_name)

    async def reload_policy(self) -> str:
        return await asyncio.to_thread(self.routing.reload)

    async def warm_up(self, default_max_tokens: int) -> float:
        """One short generation; seeds the queue's retry hints from what a request and a
        step cost on this host. The person-name lists are loaded meanwhile (else the
        first request that may leave the device loads them). Returns the warm-up's
        duration in ms."""
        names = asyncio.ensure_future(asyncio.to_thread(lexicon))
        warm_ms = await self.engine.warm_up()
        await names
        log.info("warm-up done in %.0f ms", warm_ms)
        measured = self.runtime().get("plain_step_ms")
        step_ms = float(measured) if isinstance(measured, (int, float)) and measured > 0 else warm_ms / 2
        self.slot.seed(warm_ms / 1000.0, step_ms / 1000.0)
        return warm_ms

    def idle(self) -> bool:
        """No request is running or waiting for the model."""
        return self.slot.active == 0 and self.slot.waiting == 0

    def start_indexing(self) -> None:
        """Start embedding the store's items in the background (hybrid retrieval)."""
        if self.vectors is not None:
            self.vectors.start()

    async def close(self) -> None:
        """Free the model and close the store, the ledger and the cloud channel."""
        if self.vectors is not None:
            await self.vectors.stop()
        self.engine.close()
        self.store.close()
        if self.routing.ledger is not None:
            self.routing.ledger.close()
        if self.cloud is not None:
            await self.cloud.close()


def _query_text(req: AskRequest) -> str:
    """What context is retrieved for: the last message, or the prompt."""
    return req.messages[-1].content if req.messages else req.prompt


def _refs(retrieved: Retrieved | None) -> tuple[ContextRef, ...]:
    return tuple(
        ContextRef(item_id=i.id, sensitivity=i.sensitivity, text=f"{i.title}\n{i.body}", kind=i.kind)
        for i in (retrieved.items if retrieved else ())
    )
