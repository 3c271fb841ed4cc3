"""The request pipeline: validate -> retrieve -> route -> run -> record.

Pure asyncio and domain types; the gRPC servicers in ``server.py`` only convert
messages. Blocking model work runs in one worker thread; a cancelled request stops
the decoder within one step (``cancelled`` is polled between steps) before the model
is handed to the next request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.cascade import check_confidence
from orchestrator.errors import OutOfRange, PermissionDenied, Unavailable
from orchestrator.types import ContextRef, Decision, Preference, RouteRequest, Target

from .cloud import CloudClient, CloudDone, CloudFailure
from .context.api import Retrieved
from .engine.api import Engine, Finished, SamplingParams, TextDelta
from .engine.text import TextStream, partial_suffix
from .routing import RoutingState
from .slot import ModelSlot
from .stats import Stats

log = logging.getLogger(__name__)

CONTEXT_HEADER = "Notes from the user's own data:\n"
# With context the prompt becomes a question over the notes, so that a base (not
# instruction-tuned) model answers it instead of continuing the user's text.
QUESTION, ANSWER = "Question: ", "\nAnswer:"


@dataclass(frozen=True)
class AskRequest:
    """A validated generation request."""

    prompt: str
    params: SamplingParams
    request_id: str = ""
    preference: Preference = Preference.AUTO
    deadline_ms: int | None = None
    max_cost: float | None = None
    personal: bool = False
    labels: tuple[str, ...] = ()
    app_id: str = ""
    use_context: bool = False


@dataclass(frozen=True)
class Plan:
    """What will run: the route and the exact prompt text."""

    request_id: str
    decision: Decision
    prompt: str
    prompt_tokens: int
    context: Retrieved | None
    started: float = field(default_factory=time.perf_counter)  # perf_counter at request start


@dataclass
class Outcome:
    """Figures of a finished request, for the final stream message."""

    request_id: str
    decision: Decision
    context_ids: tuple[str, ...]
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    tokens_per_s: float = 0.0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    verify_steps: int = 0
    queue_wait_ms: float = 0.0
    cost: float = 0.0
    fallback: bool = False
    fallback_reason: str = ""
    cloud_chars: int = 0
    answered_by: list[str] = field(default_factory=list)


Event = str | Outcome


def compose_prompt(prompt: str, context: Retrieved | None) -> str:
    """The text the model sees: retrieved context (if any) above the user's prompt."""
    if context is None or not context.text:
        return prompt
    return f"{CONTEXT_HEADER}{context.text}\n\n{QUESTION}{prompt}{ANSWER}"


class AgentService:
    """Everything the daemon does for one request, transport-free."""

    def __init__(
        self,
        engine: Engine,
        store: object,
        routing: RoutingState,
        *,
        cloud: CloudClient | None = None,
        queue_depth: int = 16,
        context_token_budget: int = 512,
        runtime: dict[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.runtime_static = dict(runtime or {})  # build variant, system info, self-check
        self.store = store
        self.routing = routing
        self.cloud = cloud
        self.slot = ModelSlot(queue_depth)
        self.stats = Stats()
        self._context_budget = context_token_budget
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    def runtime(self) -> dict[str, object]:
        """The runtime's build and self-check with the engine's live figures."""
        live = getattr(self.engine, "runtime_state", None)
        return {**self.runtime_static, **(live() if callable(live) else {})}

    # -- planning ---------------------------------------------------------------------
    def _gather(self, req: AskRequest) -> tuple[Retrieved | None, tuple[str, ...]]:
        """Blocking store reads for a plan: context for the prompt, contact names for PII."""
        store: Any = self.store
        retrieved = None
        if req.use_context:
            retrieved = store.retrieve(req.prompt, token_budget=self._context_budget, count_tokens=self.engine.count_tokens)
        return retrieved, tuple(store.contact_names())

    async def plan(self, req: AskRequest) -> Plan:
        """Retrieve context and decide the route (no generation)."""
        started = time.perf_counter()
        request_id = req.request_id or uuid.uuid4().hex[:16]
        retrieved, contacts = await asyncio.to_thread(self._gather, req)
        prompt = compose_prompt(req.prompt, retrieved)
        prompt_tokens = self.engine.count_tokens(prompt)
        refs = tuple(
            ContextRef(item_id=i.id, sensitivity=i.sensitivity, text=f"{i.title}\n{i.body}", kind=i.kind)
            for i in (retrieved.items if retrieved else ())
        )
        route_req = RouteRequest(
            prompt=prompt,
            prompt_tokens=prompt_tokens,
            max_tokens=req.params.max_tokens,
            preference=req.preference,
            deadline_ms=req.deadline_ms,
            max_cost=req.max_cost,
            marked_personal=req.personal,
            labels=req.labels,
            app_id=req.app_id,
            context=refs,
            contact_names=contacts,
        )
        cloud_ok = self.cloud is not None and self.cloud.available
        decision = self.routing.decide(route_req, cloud_available=cloud_ok, cloud=self.cloud)
        n_ctx = self.engine.n_ctx
        if decision.target is Target.LOCAL and prompt_tokens + 1 >= n_ctx:  # +1: BOS
            # the same check the engine applies, so a dry run (ExplainRoute) says it too
            raise OutOfRange("prompt", f"{prompt_tokens + 1} tokens do not fit the context of {n_ctx}")
        return Plan(request_id, decision, prompt, prompt_tokens, retrieved, started)

    # -- running ----------------------------------------------------------------------
    async def generate(self, req: AskRequest) -> AsyncIterator[Event]:
        """Stream text deltas, then one Outcome."""
        t0 = time.perf_counter()
        plan = await self.plan(req)
        d = plan.decision
        out = Outcome(plan.request_id, d, tuple(i.id for i in plan.context.items) if plan.context else ())
        if d.target == Target.REJECT:
            raise PermissionDenied(f"policy rejected the request: {d.explanation}")
        first: list[float] = []

        def mark() -> None:
            if not first:
                first.append((time.perf_counter() - t0) * 1000)

        if d.target in (Target.CLOUD, Target.CLOUD_REDACTED):
            run = self._cloud_then_local(req, plan, out)
        elif d.escalate_to is not None and self.cloud is not None and self.cloud.available:
            run = self._cascade(req, plan, out)
        else:
            run = self._local(plan.prompt, req.params, plan, out)
        try:
            async for ev in run:
                mark()
                yield ev
        except (asyncio.CancelledError, GeneratorExit):
            log.info(
                "request id=%s route=%s rules=%s finish=cancelled after %.0f ms",
                out.request_id, d.target.value, ",".join(d.rules_fired), (time.perf_counter() - t0) * 1000,
            )
            self.stats.cancelled()
            raise
        out.ttft_ms = first[0] if first else (time.perf_counter() - t0) * 1000
        out.total_ms = (time.perf_counter() - t0) * 1000
        d = out.decision  # a cascade may have escalated
        cloud_name = "cloud_redacted" if d.target is Target.CLOUD_REDACTED else "cloud"
        sides = [cloud_name if s == "cloud" else s for s in out.answered_by]
        route = "+".join(sides) or d.target.value
        self.stats.record(
            route=route,
            ttft_ms=out.ttft_ms,
            local_tps=out.tokens_per_s if "local" in out.answered_by else None,
            drafted=out.drafted_tokens,
            accepted=out.accepted_tokens,
            cost=out.cost,
            fallback=out.fallback,
        )
        log.info(
            "request id=%s route=%s rules=%s fallback=%s prompt_tokens=%d completion_tokens=%d ttft_ms=%.1f tok_s=%.1f finish=%s",
            out.request_id, route, ",".join(d.rules_fired), out.fallback, out.prompt_tokens,
            out.completion_tokens, out.ttft_ms, out.tokens_per_s, out.finish_reason,
        )
        yield out

    async def _local(
        self, prompt: str, params: SamplingParams, plan: Plan, out: Outcome, probs: list[float] | None = None, n_probs: int = 0
    ) -> AsyncGenerator[str, None]:
        """Answer with the local model; ``probs`` collects the first ``n_probs`` token probabilities."""
        drafts: Sequence[str] = tuple(i.body for i in plan.context.items) if plan.context else ()
        async with self.slot.hold() as waited_s:
            out.queue_wait_ms += waited_s * 1000
            async for ev in self._run_engine(prompt, params, drafts, n_probs):
                if isinstance(ev, TextDelta):
                    if probs is not None:
                        probs.extend(ev.token_probs)
                    yield ev.text
                    continue
                u = ev.usage
                out.answered_by.append("local")
                out.finish_reason = ev.finish_reason
                out.prompt_tokens = max(out.prompt_tokens, u.prompt_tokens)
                out.completion_tokens += u.completion_tokens
                out.tokens_per_s = u.tokens_per_s
                out.drafted_tokens += u.drafted_tokens
                out.accepted_tokens += u.accepted_tokens
                out.verify_steps += u.verify_steps
                self.routing.estimators.observe_local(u.prompt_tokens, u.ttft_ms, u.completion_tokens, u.tokens_per_s)

    async def _run_engine(
        self, prompt: str, params: SamplingParams, drafts: Sequence[str], n_probs: int = 0
    ) -> AsyncIterator[TextDelta | Finished]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        end = object()

        def work() -> None:
            try:
                for ev in self.engine.generate(prompt, params, draft_texts=drafts, cancelled=stop.is_set, token_probs=n_probs):
                    loop.call_soon_threadsafe(queue.put_nowait, ev)
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, end)

        fut = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                # Deltas that piled up while the last one was being sent go out as one
                # message: fewer, larger messages when the client or loop is slower.
                while isinstance(item, TextDelta) and not queue.empty():
                    nxt = queue.get_nowait()
                    if not isinstance(nxt, TextDelta):
                        yield item
                        item = nxt
                        break
                    item = TextDelta(item.text + nxt.text, item.token_probs + nxt.token_probs)
                if item is end:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.shield(fut)

    async def _cascade(self, req: AskRequest, plan: Plan, out: Outcome) -> AsyncIterator[str]:
        """Start locally; hold the first tokens back until their mean probability is
        known, then either release them and go on, or escalate to the cloud target the
        router allowed (the local run is cancelled before the cloud is called)."""
        d = plan.decision
        assert d.escalate_to is not None
        cascade = self.routing.policy.quality.cascade
        probs: list[float] = []
        held: list[str] = []
        verdict = None
        local = self._local(plan.prompt, req.params, plan, out, probs, cascade.first_tokens)
        try:
            async for text in local:
                if verdict is None:
                    held.append(text)
                    verdict = check_confidence(cascade, probs)
                    if verdict is None:
                        continue
                    if verdict.escalate:
                        break
                    text, held = "".join(held), []
                yield text
        finally:
            await local.aclose()
        if verdict is None or not verdict.escalate:  # confident, or done within the window
            if held:
                yield "".join(held)
            if verdict is not None:
                out.decision = replace(d, rules_fired=(*d.rules_fired, "cascade.confident"), explanation=f"{d.explanation}; {verdict.reason}")
            return
        out.decision = replace(
            d, target=d.escalate_to, rules_fired=(*d.rules_fired, "cascade.escalated"), explanation=f"{d.explanation}; {verdict.reason}"
        )
        log.info("request id=%s %s", plan.request_id, verdict.reason)
        async for text in self._cloud_then_local(req, replace(plan, decision=out.decision), out):
            yield text

    async def _cloud_then_local(self, req: AskRequest, plan: Plan, out: Outcome) -> AsyncIterator[str]:
        """Stream the cloud's answer; on failure the local model answers or continues.

        Stop sequences never leave the device: they are applied here to the (restored)
        cloud text, and the cloud call is cancelled once one appears.
        """
        assert self.cloud is not None
        d = plan.decision
        redacted = d.target == Target.CLOUD_REDACTED
        send = d.redacted_prompt if redacted and d.redacted_prompt is not None else plan.prompt
        restorer = Restorer(d.restore if redacted else {})
        stops = TextStream(req.params.stop)
        received: list[str] = []
        arrivals: list[float] = []  # when each delta arrived, for tokens/s measured here
        # The cloud gets what is left of the request's deadline.
        t0 = time.perf_counter()
        deadline = plan.started + (req.deadline_ms or self.routing.default_deadline_ms) / 1000
        attempt = 0
        while True:
            attempt += 1
            failure = None
            timeout = max(0.05, deadline - time.perf_counter())
            stream = self.cloud.generate(plan.request_id, send, replace(req.params, stop=()), timeout_s=timeout)
            done: CloudDone | None = None
            try:
                async for ev in stream:
                    if isinstance(ev, CloudDone):
                        done = ev
                        break
                    received.append(ev)
                    arrivals.append(time.perf_counter())
                    text = stops.feed(restorer.feed(ev).encode())
                    if text:
                        yield text
                    if stops.stopped:  # a stop sequence: the rest of the cloud's answer is not wanted
                        self._cloud_answered(plan, out, send, 0, len(received), "stop", attempt)
                        out.tokens_per_s = _rate(arrivals)
                        return
            except CloudFailure as exc:
                failure = exc
            except (asyncio.CancelledError, GeneratorExit):  # the caller went away mid-call
                self._cloud_failed(plan, send, len(received), attempt, "cancelled")
                raise
            finally:
                await stream.aclose()
            if failure is None:
                if done is None:  # pragma: no cover - generate() ends with CloudDone or raises
                    raise Unavailable("cloud stream ended early")
                u = done.usage
                self._cloud_answered(plan, out, send, u.prompt_tokens, u.completion_tokens, done.finish_reason, attempt)
                ttft = u.ttft_ms or (time.perf_counter() - t0) * 1000
                self.routing.estimators.observe_cloud(ttft, u.completion_tokens, u.tokens_per_s)
                out.tokens_per_s = u.tokens_per_s or _rate(arrivals)
                tail = stops.feed(restorer.flush().encode()) + stops.flush()
                if tail:
                    yield tail
                return
            retry = (
                failure.retryable
                and attempt < self.cloud.max_attempts
                and self.cloud.available
                and deadline - time.perf_counter() > 0.2
            )
            outcome = "failed_mid_stream" if failure.started else "failed_before_answer"
            self._cloud_failed(plan, send, len(received), attempt, "retried" if retry else outcome)
            if not retry:
                break
            await asyncio.sleep(min(0.1 * 2 ** (attempt - 1), 1.0))
        assert failure is not None
        # Fallback: the local model answers, or continues the partial cloud answer.
        partial = stops.feed(restorer.flush().encode()) + stops.flush()
        if partial:
            yield partial
        shown = restore_text("".join(received), d.restore if redacted else {})
        out.fallback = True
        out.cloud_chars = len(shown)
        how = "local model continued the answer" if failure.started else "answered locally"
        out.fallback_reason = f"{failure.reason}; {how}"
        if failure.started:
            out.answered_by.append("cloud")
            out.completion_tokens += len(received)  # one delta per token from the cloud
        log.warning("request id=%s cloud failed (%s): %s", plan.request_id, failure.reason, how)
        async for text in self._local(plan.prompt + shown, _remaining(req.params, len(received)), plan, out):
            yield text

    def _cloud_answered(
        self, plan: Plan, out: Outcome, sent: str, prompt_tokens: int, completion_tokens: int, finish: str, attempt: int
    ) -> None:
        """Record a cloud answer: figures for the client, cost in the egress ledger."""
        out.answered_by.append("cloud")
        out.finish_reason = finish
        out.prompt_tokens = prompt_tokens or plan.prompt_tokens
        out.completion_tokens = completion_tokens
        out.cost += self.routing.record_cloud_call(
            plan, sent_text=sent, prompt_tokens=out.prompt_tokens, completion_tokens=completion_tokens,
            cloud=self.cloud, attempt=attempt,
        )

    def _cloud_failed(self, plan: Plan, sent: str, received: int, attempt: int, outcome: str) -> None:
        """An attempt that sent the request but did not answer: its row in the ledger.

        The request's bytes left the device, so it is counted (and priced as sent: a
        cloud may bill the input of a call that failed)."""
        self.routing.record_cloud_call(
            plan, sent_text=sent, prompt_tokens=plan.prompt_tokens, completion_tokens=received,
            cloud=self.cloud, attempt=attempt, outcome=outcome,
        )

    async def forget_drafts(self) -> None:
        """After a delete: drop the engine's draft corpus, between two generations (the
        model's single worker thread runs it), so forgotten text is not kept for drafting."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.forget_drafts)

    async def close(self) -> None:
        """Free the model and close the store, the ledger and the cloud channel."""
        self._executor.shutdown(wait=True)
        self.engine.close()
        self.store.close()  # type: ignore[attr-defined]
        if self.routing.ledger is not None:
            self.routing.ledger.close()
        if self.cloud is not None:
            await self.cloud.close()


def _rate(arrivals: list[float]) -> float:
    """Tokens per second after the first, from delta arrival times (one token each)."""
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def _remaining(params: SamplingParams, used: int) -> SamplingParams:
    return replace(params, max_tokens=max(1, params.max_tokens - used))


def restore_text(text: str, mapping: dict[str, str]) -> str:
    for placeholder, original in mapping.items():
        text = text.replace(placeholder, original)
    return text


class Restorer:
    """Puts originals back in place of placeholders in a stream whose deltas may split them."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._mapping = mapping
        self._buf = ""

    def feed(self, delta: str) -> str:
        if not self._mapping:
            return delta
        self._buf = restore_text(self._buf + delta, self._mapping)
        hold = partial_suffix(self._buf, self._mapping)
        ready, self._buf = self._buf[: len(self._buf) - hold], self._buf[len(self._buf) - hold :]
        return ready

    def flush(self) -> str:
        out, self._buf = restore_text(self._buf, self._mapping), ""
        return out

