"""The three ways a planned request runs. Each streams text and ends with one ``Run``.

* ``local``: the local model answers (waiting for the model slot);
* ``cascade``: the local model starts; its first tokens are held back until their mean
  probability is known, then released, or the request escalates to the cloud;
* ``cloud``: the cloud answers; if it fails before or during its answer, the local
  model answers or continues it. Every attempt is a ledger row; one that could not
  connect says ``not_sent``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace

from common.chat import Prompt, with_contents
from common.errors import Unavailable
from common.params import schema_errors
from edge_agent.engine.api import SamplingParams, TextDelta, Usage
from edge_agent.engine.text import TextStream
from edge_agent.pipeline.egress import sent_digest_text, with_schema_strings
from edge_agent.pipeline.local import AsyncEngine
from edge_agent.pipeline.ports import CloudDone, CloudFailure, CloudLink
from edge_agent.pipeline.restore import Restorer, restore_text
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.slot import BACKGROUND_LABEL, ModelSlot
from edge_agent.pipeline.types import Plan, Run, cloud_side
from orchestrator.cascade import check_confidence
from orchestrator.types import Target

log = logging.getLogger(__name__)

Step = str | Run  # what a runner yields: text, then one Run
RETRY_MARGIN_S = 0.2  # no new cloud attempt with less of the deadline left


@dataclass
class Runners:
    engine: AsyncEngine
    slot: ModelSlot
    routing: RoutingState
    cloud: CloudLink | None = None

    # -- local ----------------------------------------------------------------------
    async def local(self, plan: Plan, prompt: str | None = None, params: SamplingParams | None = None) -> AsyncIterator[Step]:
        """The local model answers ``prompt`` (default: the planned prompt)."""
        async for ev in self._local(plan, prompt or plan.prompt, params or plan.request.params, 0):
            yield ev.text if isinstance(ev, TextDelta) else ev

    async def _local(self, plan: Plan, prompt: str, params: SamplingParams, n_probs: int) -> AsyncGenerator[TextDelta | Run, None]:
        if plan.request.messages:  # a chat answer ends where the model would start the next turn
            params = replace(params, stop=(*params.stop, *self.engine.chat_stops()))
        background = BACKGROUND_LABEL in plan.request.labels
        async with self.slot.hold(plan.request.app_id, background, params.max_tokens) as waited_s:
            async for ev in self.engine.stream(
                prompt, params, plan.draft_texts, n_probs, app=plan.request.app_id, background=background
            ):
                if isinstance(ev, TextDelta):
                    yield ev
                    continue
                u = ev.usage
                self.routing.estimators.observe_local(u.prompt_tokens, u.ttft_ms, u.completion_tokens, u.tokens_per_s)
                yield Run(plan.decision, ("local",), ev.finish_reason, replace(u, queue_wait_ms=waited_s * 1000))

    # -- cascade --------------------------------------------------------------------
    async def cascade(self, plan: Plan) -> AsyncIterator[Step]:
        """Local first; escalate to ``plan.decision.escalate_to`` when the start is unsure
        (the local run is cancelled before the cloud is called)."""
        d = plan.decision
        escalate_to = d.escalate_to
        assert escalate_to is not None
        policy = self.routing.policy.quality.cascade
        probs: list[float] = []
        held: list[str] = []
        verdict = None
        local: Run | None = None
        stream = self._local(plan, plan.prompt, plan.request.params, policy.first_tokens)
        try:
            async for ev in stream:
                if isinstance(ev, Run):
                    local = ev
                    break
                probs.extend(ev.token_probs)
                text = ev.text
                if verdict is None:
                    held.append(text)
                    verdict = check_confidence(policy, probs)
                    if verdict is None:
                        continue
                    if verdict.escalate:
                        break
                    text, held = "".join(held), []
                yield text
        finally:
            await stream.aclose()
        if verdict is None or not verdict.escalate:  # confident, or done within the window
            if held:
                yield "".join(held)
            assert local is not None
            if verdict is not None:
                d = replace(d, rules_fired=(*d.rules_fired, "cascade.confident"), explanation=f"{d.explanation}; {verdict.reason}")
            yield replace(local, decision=d)
            return
        escalated = replace(
            d, target=escalate_to, rules_fired=(*d.rules_fired, "cascade.escalated"), explanation=f"{d.explanation}; {verdict.reason}"
        )
        log.info("request id=%s %s", plan.request_id, verdict.reason)
        async for step in self.cloud_with_fallback(replace(plan, decision=escalated)):
            yield step

    # -- cloud, with the local model behind it ---------------------------------------
    async def cloud_with_fallback(self, plan: Plan) -> AsyncIterator[Step]:
        """The cloud's answer; on failure the local model answers or continues it.

        Stop sequences never leave the device: they are applied here to the (restored)
        cloud text, and the call is cancelled once one appears. Under a JSON schema the
        answer is held back until it is complete and valid; an invalid one is a cloud
        failure, and the local model answers under the schema's grammar."""
        assert self.cloud is not None
        cloud = self.cloud
        d = plan.decision
        redacted = d.target is Target.CLOUD_REDACTED
        send = _outgoing(plan)
        sent_schema = _outgoing_schema(plan)
        mapping = d.restore if redacted else {}
        restorer, stops = Restorer(mapping), TextStream(plan.request.params.stop)
        schema = plan.request.params.json_schema
        held: list[str] | None = [] if schema else None  # text kept back until validated
        received: list[str] = []
        arrivals: list[float] = []  # when each delta arrived, for tokens/s measured here
        attempt = 0
        while True:
            attempt += 1
            failure: CloudFailure | None = None
            t0 = time.perf_counter()
            timeout = max(0.05, plan.deadline - t0)
            sent_params = replace(plan.request.params, stop=(), json_schema=sent_schema)
            stream = cloud.generate(plan.request_id, send, sent_params, timeout_s=timeout)
            done: CloudDone | None = None
            try:
                async for ev in stream:
                    if isinstance(ev, CloudDone):
                        done = ev
                        break
                    received.append(ev)
                    arrivals.append(time.perf_counter())
                    text = stops.feed(restorer.feed(ev).encode())
                    if text and held is not None:
                        held.append(text)
                    elif text:
                        yield text
                    if stops.stopped:  # the rest of the cloud's answer is not wanted
                        break
            except CloudFailure as exc:
                failure = exc
            except (asyncio.CancelledError, GeneratorExit):  # the caller went away mid-call
                self._record(plan, send, plan.prompt_tokens, len(received), attempt, "cancelled")
                raise
            finally:
                await stream.aclose()
            if failure is None:
                if done is None and not stops.stopped:  # pragma: no cover - generate() ends with CloudDone or raises
                    raise Unavailable("cloud stream ended early")
                tail = stops.feed(restorer.flush().encode()) + stops.flush()
                if held is not None:  # the whole answer, validated before anything is shown
                    tail = "".join(held) + tail
                    # off the event loop: a schema's `pattern` runs a backtracking regex
                    # over a whole answer, and other requests stream meanwhile
                    why = await asyncio.to_thread(schema_errors, schema, tail)
                    if why:
                        failure = CloudFailure(f"the cloud's answer does not match the JSON schema ({why})", started=False)
                        self._record(plan, send, plan.prompt_tokens, len(received), attempt, "answer_invalid")
                        break
                if tail:
                    yield tail
                yield self._finished(plan, send, done, attempt, len(received), (time.perf_counter() - t0) * 1000, _rate(arrivals))
                return
            retry = self._may_retry(plan, failure, attempt)
            self._record_failure(plan, send, failure, attempt, len(received), retry)
            if not retry:
                break
            await asyncio.sleep(min(0.1 * 2 ** (attempt - 1), 1.0))
        assert failure is not None
        if held is not None:  # nothing was shown: the local model answers from the start
            async for step in self._fallback(plan, CloudFailure(failure.reason, started=False), "", 0):
                yield step
            return
        partial = stops.feed(restorer.flush().encode()) + stops.flush()
        if partial:
            yield partial
        async for step in self._fallback(plan, failure, restore_text("".join(received), mapping), len(received)):
            yield step

    async def _fallback(self, plan: Plan, failure: CloudFailure, shown: str, received: int) -> AsyncIterator[Step]:
        """The local model answers, or continues the partial cloud answer ``shown``."""
        how = "local model continued the answer" if failure.started else "answered locally"
        log.warning("request id=%s cloud failed (%s): %s", plan.request_id, failure.reason, how)
        params = replace(plan.request.params, max_tokens=max(1, plan.request.params.max_tokens - received))
        async for step in self.local(plan, plan.prompt + shown, params):
            if not isinstance(step, Run):
                yield step
                continue
            before = Run(plan.decision, (cloud_side(plan.decision.target),), usage=Usage(completion_tokens=received)) if failure.started else None
            run = step.after(before) if before else step
            yield replace(run, fallback_reason=f"{failure.reason}; {how}", cloud_chars=len(shown))

    def _may_retry(self, plan: Plan, failure: CloudFailure, attempt: int) -> bool:
        """Only a call the cloud never received is tried again, within the attempts
        allowed and the deadline."""
        assert self.cloud is not None
        return (
            failure.retryable
            and attempt < self.cloud.max_attempts
            and self.cloud.available
            and plan.deadline - time.perf_counter() > RETRY_MARGIN_S
        )

    def _finished(self, plan: Plan, sent: Prompt, done: CloudDone | None, attempt: int, received: int,
                  elapsed_ms: float, measured_tps: float) -> Run:
        """An attempt that answered: to its end (``done``), or to a stop sequence (None)."""
        if done is not None:
            return self._done(plan, sent, done, attempt, elapsed_ms, measured_tps)
        cost = self._record(plan, sent, plan.prompt_tokens, received, attempt, "answered")
        return self._answered(plan, "stop", plan.prompt_tokens, received, measured_tps, cost)

    def _record_failure(self, plan: Plan, sent: Prompt, failure: CloudFailure, attempt: int, received: int, retry: bool) -> None:
        """A failed attempt's ledger row: one that never left is recorded as not sent."""
        if not failure.sent:  # no connection was up: nothing left, nothing to bill
            self._record(plan, sent, 0, 0, attempt, "not_sent")
            return
        outcome = "retried" if retry else "failed_mid_stream" if failure.started else "failed_before_answer"
        self._record(plan, sent, plan.prompt_tokens, received, attempt, outcome)

    def _done(self, plan: Plan, sent: Prompt, done: CloudDone, attempt: int, elapsed_ms: float, measured_tps: float) -> Run:
        """An answered attempt: its ledger row, the estimators, its Run."""
        u = done.usage
        prompt_tokens = u.prompt_tokens or plan.prompt_tokens
        cost = self._record(plan, sent, prompt_tokens, u.completion_tokens, attempt, "answered")
        self.routing.estimators.observe_cloud(u.ttft_ms or elapsed_ms, u.completion_tokens, u.tokens_per_s)
        return self._answered(plan, done.finish_reason, prompt_tokens, u.completion_tokens, u.tokens_per_s or measured_tps, cost)

    def _answered(self, plan: Plan, finish: str, prompt_tokens: int, completion_tokens: int, tps: float, cost: float) -> Run:
        side = cloud_side(plan.decision.target)
        return Run(plan.decision, (side,), finish, Usage(prompt_tokens, completion_tokens, tokens_per_s=tps, cost=cost))

    def _record(self, plan: Plan, sent: Prompt, prompt_tokens: int, completion_tokens: int, attempt: int, outcome: str) -> float:
        """One cloud attempt's ledger row; its cost. A failed attempt is counted too: its
        bytes left the device (and a cloud may bill the input of a call that failed)."""
        assert self.cloud is not None
        digest = sent_digest_text(sent, _outgoing_schema(plan))
        return self.routing.record_cloud_call(
            plan.request_id, plan.decision, sent_text=digest, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, cloud=self.cloud.info, attempt=attempt, outcome=outcome,
            app_id=plan.request.app_id,
        )


def _outgoing(plan: Plan) -> Prompt:
    """What goes to the cloud: the planned prompt or conversation, or its redacted copy
    (a conversation's redacted text is split back into its messages)."""
    d = plan.decision
    if d.target is not Target.CLOUD_REDACTED or d.redacted_prompt is None:
        return plan.outgoing or plan.prompt
    if isinstance(plan.outgoing, tuple) and plan.outgoing:
        return with_contents(plan.outgoing, d.redacted_prompt)
    return d.redacted_prompt


def _outgoing_schema(plan: Plan) -> str:
    """The JSON schema sent with the request: as given, or with its strings redacted."""
    d, schema = plan.decision, plan.request.params.json_schema
    if d.target is Target.CLOUD_REDACTED and d.redacted_schema_strings:
        return with_schema_strings(schema, d.redacted_schema_strings)
    return schema


def _rate(arrivals: list[float]) -> float:
    """Tokens per second after the first, from delta arrival times (one token each)."""
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
