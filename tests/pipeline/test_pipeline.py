"""The request path on fakes behind its ports: routing outcome, cascade, cloud fallback
before and after the first token, placeholder restore across deltas, queue refusal and
cancellation — each in milliseconds, no model, no sockets."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from common.errors import PermissionDenied, ResourceExhausted
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.fakes import (
    MemoryLedger,
    MemoryStore,
    Script,
    ScriptedCloud,
    ScriptedEngine,
)
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.service import AgentService
from edge_agent.pipeline.types import AskRequest, Outcome
from orchestrator.types import Preference

PRICES = "[cost]\ncloud_price_in_per_1k = 1.0\ncloud_price_out_per_1k = 1.0\n"
REDACT = '[privacy.redaction]\nenabled = true\nkinds = ["email"]\n'
CASCADE = "[quality.cascade]\nenabled = true\nfirst_tokens = 2\nmin_mean_prob = {p}\n" + PRICES


def make(
    tmp_path: Path,
    policy: str = "",
    *,
    cloud: ScriptedCloud | None = None,
    engine: ScriptedEngine | None = None,
    queue_depth: int = 16,
) -> tuple[AgentService, ScriptedEngine, MemoryLedger]:
    path = ""
    if policy:
        (tmp_path / "policy.toml").write_text(policy)
        path = str(tmp_path / "policy.toml")
    ledger = MemoryLedger()
    engine = engine or ScriptedEngine()
    svc = AgentService(engine, MemoryStore(), RoutingState(path, ledger=ledger), cloud=cloud, queue_depth=queue_depth)
    return svc, engine, ledger


def ask(prompt: str, preference: Preference = Preference.AUTO, max_tokens: int = 8) -> AskRequest:
    return AskRequest(prompt, SamplingParams(max_tokens=max_tokens), preference=preference)


async def collect(svc: AgentService, req: AskRequest) -> tuple[str, Outcome]:
    text: list[str] = []
    async for ev in svc.generate(req):
        if isinstance(ev, Outcome):
            return "".join(text), ev
        text.append(ev)
    raise AssertionError("no outcome")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# -- routing outcome ---------------------------------------------------------------------


def test_cloud_preferred_general_request_is_answered_by_the_cloud_and_recorded(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, engine, ledger = make(tmp_path, cloud=cloud)
    text, out = run(collect(svc, ask("Why is the sky blue?", Preference.CLOUD_PREFERRED)))
    assert text == "a cloud answer" and out.route == "cloud" and not out.fallback
    assert engine.prompts == [] and cloud.sent == ["Why is the sky blue?"]
    assert [r["outcome"] for r in ledger.rows] == ["answered"]
    assert out.usage.cost > 0 and svc.stats.snapshot().requests_by_route == {"cloud": 1}


def test_pii_keeps_the_request_on_the_device(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, engine, ledger = make(tmp_path, cloud=cloud)
    text, out = run(collect(svc, ask("Email bob@example.com the minutes", Preference.CLOUD_PREFERRED)))
    assert out.route == "local" and text == "a local answer " and len(engine.prompts) == 1
    assert cloud.sent == [] and ledger.rows == []
    assert "privacy.pii" in out.decision.rules_fired


def test_a_rejecting_rule_is_permission_denied(tmp_path: Path) -> None:
    svc, _, _ = make(tmp_path, '[[rules]]\nname = "no"\naction = "reject"\nmatch = { keywords = ["forbidden"] }\n')
    with pytest.raises(PermissionDenied, match="policy rejected"):
        run(collect(svc, ask("something forbidden")))


# -- cascade -----------------------------------------------------------------------------


def test_cascade_escalates_an_unsure_start_and_drops_the_local_text(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, engine, _ = make(tmp_path, CASCADE.format(p=0.95), cloud=cloud, engine=ScriptedEngine(prob=0.5))
    text, out = run(collect(svc, ask("Why is the sky blue?")))
    assert "cascade.escalated" in out.decision.rules_fired
    assert text == "a cloud answer" and out.route == "cloud"
    assert len(engine.prompts) == 1 and cloud.sent == ["Why is the sky blue?"]


def test_cascade_keeps_a_confident_start(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, _, _ = make(tmp_path, CASCADE.format(p=0.5), cloud=cloud, engine=ScriptedEngine(prob=0.9))
    text, out = run(collect(svc, ask("Why is the sky blue?")))
    assert "cascade.confident" in out.decision.rules_fired
    assert text == "a local answer " and out.route == "local" and cloud.sent == []


# -- cloud failures ----------------------------------------------------------------------


def test_cloud_failing_before_any_text_falls_back_to_the_local_model(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=(), fail="cloud unavailable"), max_attempts=1)
    svc, _, ledger = make(tmp_path, cloud=cloud)
    text, out = run(collect(svc, ask("Why is the sky blue?", Preference.CLOUD_PREFERRED)))
    assert text == "a local answer " and out.route == "local"
    assert out.fallback and out.fallback_reason == "cloud unavailable; answered locally"
    assert [r["outcome"] for r in ledger.rows] == ["failed_before_answer"]


def test_an_unreachable_cloud_is_tried_again_and_every_attempt_is_a_row(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=(), fail="unavailable", retryable=True), Script(), max_attempts=2)
    svc, _, ledger = make(tmp_path, cloud=cloud)
    text, out = run(collect(svc, ask("Why is the sky blue?", Preference.CLOUD_PREFERRED)))
    assert text == "a cloud answer" and not out.fallback
    assert [(r["attempt"], r["outcome"]) for r in ledger.rows] == [(1, "retried"), (2, "answered")]


def test_cloud_cut_mid_answer_is_continued_by_the_local_model(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=("The sky ", "is "), fail="stream dropped"))
    svc, engine, ledger = make(tmp_path, cloud=cloud)
    text, out = run(collect(svc, ask("Why is the sky blue?", Preference.CLOUD_PREFERRED)))
    assert text == "The sky is a local answer "
    assert out.route == "cloud+local" and out.cloud_chars == len("The sky is ")
    assert engine.prompts == ["Why is the sky blue?The sky is "]  # the local model continues
    assert out.usage.completion_tokens == 2 + 3
    assert [r["outcome"] for r in ledger.rows] == ["failed_mid_stream"]


# -- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(1, len("[EMAIL_1]")))
def test_placeholders_are_restored_across_delta_boundaries(tmp_path: Path, cut: int) -> None:
    ph = "[EMAIL_1]"
    cloud = ScriptedCloud(Script(deltas=("Write to ", ph[:cut], ph[cut:] + " today")))
    svc, _, ledger = make(tmp_path, REDACT, cloud=cloud)
    text, out = run(collect(svc, ask("Draft a note to bob@example.com", Preference.CLOUD_PREFERRED)))
    assert out.route == "cloud_redacted"
    assert cloud.sent == [f"Draft a note to {ph}"]
    assert text == "Write to bob@example.com today"
    assert ledger.rows[0]["pii_kinds_redacted"] == ("email",)


def test_stop_sequences_apply_to_the_restored_text_and_never_leave(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=("one ", "two ", "three")))
    svc, _, _ = make(tmp_path, cloud=cloud)
    req = AskRequest("Count to three", SamplingParams(max_tokens=8, stop=("two",)), preference=Preference.CLOUD_PREFERRED)
    text, out = run(collect(svc, req))
    assert text == "one " and out.finish_reason == "stop"


# -- the model slot ----------------------------------------------------------------------


def test_a_full_queue_refuses_at_once_with_a_retry_hint(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    engine.gate = threading.Event()
    svc, _, _ = make(tmp_path, engine=engine, queue_depth=1)

    async def main() -> None:
        first = asyncio.ensure_future(collect(svc, ask("hello there")))
        while not engine.prompts:
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(collect(svc, ask("hello again")))
        while svc.slot.waiting < 1:
            await asyncio.sleep(0.001)
        with pytest.raises(ResourceExhausted) as exc:
            await collect(svc, ask("one more"))
        assert exc.value.retry_after_s is not None and exc.value.retry_after_s > 0
        engine.gate.set()
        assert (await first)[1].route == "local" and (await second)[1].route == "local"

    run(main())


def test_cancelling_a_request_stops_the_engine_and_frees_the_model(tmp_path: Path) -> None:
    engine = ScriptedEngine("many words in a long answer")
    engine.gate = threading.Event()
    svc, _, _ = make(tmp_path, engine=engine)

    async def main() -> None:
        task = asyncio.ensure_future(collect(svc, ask("hello there")))
        while not engine.prompts:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.cancelled_runs == 1  # the decoder stopped within one step
        assert svc.stats.snapshot().cancelled == 1
        engine.gate.set()
        text, out = await asyncio.wait_for(collect(svc, ask("next")), 5)  # the slot is free again
        assert out.route == "local" and text.startswith("many")

    run(main())


def test_forgetting_context_drops_the_draft_corpus(tmp_path: Path) -> None:
    from edge_agent.context.api import NewItem
    from edge_agent.pipeline.types import ForgetSelector

    svc, engine, _ = make(tmp_path)

    async def main() -> None:
        ids = await svc.put_context([NewItem("note", "the locker code is 1234")])
        assert await svc.delete_context(ForgetSelector(ids=tuple(ids))) == 1
        assert await svc.delete_context(ForgetSelector(ids=tuple(ids))) == 0

    run(main())
    assert engine.forgot == 1


# -- conversations -----------------------------------------------------------------------

from common.chat import Message


def chat(*turns: tuple[str, str], preference: Preference = Preference.AUTO) -> AskRequest:
    return AskRequest("", SamplingParams(max_tokens=8), messages=tuple(Message(r, c) for r, c in turns), preference=preference)


def test_a_conversation_is_rendered_for_the_local_model_and_earlier_turns_feed_the_drafter(tmp_path: Path) -> None:
    svc, engine, _ = make(tmp_path)
    req = chat(("system", "Be brief."), ("user", "Name a colour."), ("assistant", "Blue."), ("user", "Another one?"))
    text, out = run(collect(svc, req))
    assert out.route == "local" and text == "a local answer "
    assert engine.prompts == ["System: Be brief.\n\nUser: Name a colour.\nAssistant: Blue.\nUser: Another one?\nAssistant:"]
    plan = run(svc.plan(req))
    assert plan.draft_texts == ("Be brief.", "Name a colour.", "Blue.")


def test_pii_in_an_earlier_message_keeps_the_conversation_local(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, _, _ = make(tmp_path, cloud=cloud)
    req = chat(("user", "My mail is bob@example.com."), ("assistant", "Noted."), ("user", "Why is the sky blue?"),
               preference=Preference.CLOUD_PREFERRED)
    _, out = run(collect(svc, req))
    assert out.route == "local" and cloud.sent == [] and "privacy.pii" in out.decision.rules_fired


def test_a_redacted_conversation_goes_out_as_messages_and_comes_back_restored(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=("I wrote to [EMA", "IL_1].")))
    svc, _, ledger = make(tmp_path, REDACT, cloud=cloud)
    req = chat(("user", "Write to bob@example.com about Friday."), ("assistant", "Done."), ("user", "And again?"),
               preference=Preference.CLOUD_PREFERRED)
    text, out = run(collect(svc, req))
    assert out.route == "cloud_redacted" and text == "I wrote to bob@example.com."
    (sent,) = cloud.sent
    assert sent == (Message("user", "Write to [EMAIL_1] about Friday."), Message("assistant", "Done."), Message("user", "And again?"))
    import hashlib
    import json

    digest = json.dumps([{"role": m.role, "content": m.content} for m in sent], ensure_ascii=False, separators=(",", ":"))
    assert ledger.rows[0]["text_sha256"] == hashlib.sha256(digest.encode()).hexdigest()


def test_context_goes_into_the_conversation_as_a_system_message(tmp_path: Path) -> None:
    from edge_agent.context.api import NewItem

    svc, engine, _ = make(tmp_path)
    run(svc.put_context([NewItem("note", "The dentist is on Tuesday", sensitivity="public")]))
    req = AskRequest("", SamplingParams(max_tokens=4), messages=(Message("user", "When is the dentist?"),), use_context=True)
    run(collect(svc, req))
    assert engine.prompts[0].startswith("System: Notes from the user's own data:\n[note] The dentist is on Tuesday\n\nUser: When is the dentist?")
