"""Everything that leaves besides the prompt, on the fakes: the JSON schema and stop
sequences are detected and (where they leave) redacted, in the route's PII kinds and in
the ledger's hash; values of sensitive store items stay local with context off; names
without cues are redacted; an attempt that could not connect is recorded as not sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from edge_agent.context.api import NewItem
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.egress import schema_strings, sent_digest_text, with_schema_strings
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
from orchestrator.kinds import PII_KINDS
from orchestrator.types import Preference

MAX_REDACTION = "[privacy.redaction]\nenabled = true\nkinds = [{}]\n".format(", ".join(f'"{k}"' for k in PII_KINDS))
PERSONAL_LEFT_OUT = MAX_REDACTION + 'sensitivities = ["personal"]\n'
SCHEMA = json.dumps(
    {
        "type": "object",
        "title": "Reply for Marisol Quintanilla",
        "properties": {
            "who": {"enum": ["Halvard Quennell", "bob.jones@example.com"], "description": "PIN 7391, account DE89 3704 0044 0532 0130 00"},
            "note": {"type": "string", "default": "call +44 20 7946 0958", "examples": ["Dear Okonkwo"]},
        },
        "required": ["who"],
    }
)
SECRETS_IN_SCHEMA = ["Marisol", "Quintanilla", "Halvard", "Quennell", "bob.jones@example.com", "DE89", "7946 0958", "Okonkwo"]


def make(tmp_path: Path, policy: str = "", *, cloud: ScriptedCloud | None = None, store: MemoryStore | None = None) -> tuple[AgentService, MemoryLedger]:
    path = ""
    if policy:
        (tmp_path / "policy.toml").write_text(policy)
        path = str(tmp_path / "policy.toml")
    ledger = MemoryLedger()
    svc = AgentService(ScriptedEngine(), store or MemoryStore(), RoutingState(path, ledger=ledger), cloud=cloud)
    return svc, ledger


def run(svc: AgentService, req: AskRequest) -> tuple[str, Outcome]:
    async def main() -> tuple[str, Outcome]:
        text: list[str] = []
        async for ev in svc.generate(req):
            if isinstance(ev, Outcome):
                return "".join(text), ev
            text.append(ev)
        raise AssertionError("no outcome")

    return asyncio.run(main())


def cloud_ask(prompt: str, **params: object) -> AskRequest:
    return AskRequest(prompt, SamplingParams(max_tokens=8, **params), preference=Preference.CLOUD_PREFERRED)  # type: ignore[arg-type]


# -- the JSON schema ---------------------------------------------------------------------


def test_schema_strings_round_trip_in_document_order() -> None:
    strings = schema_strings(SCHEMA)
    assert strings[:3] == ("type", "object", "title") and "Halvard Quennell" in strings
    assert json.loads(with_schema_strings(SCHEMA, strings)) == json.loads(SCHEMA)
    upper = with_schema_strings(SCHEMA, [s.upper() for s in strings])
    assert json.loads(upper)["PROPERTIES"]["WHO"]["ENUM"] == ["HALVARD QUENNELL", "BOB.JONES@EXAMPLE.COM"]


def test_pii_in_the_schema_keeps_a_plain_request_local_and_is_in_the_route(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, ledger = make(tmp_path, cloud=cloud)
    _, out = run(svc, cloud_ask("Fill in the form.", json_schema=SCHEMA))
    assert out.route == "local" and cloud.sent == [] and ledger.rows == []
    # (names are looked for only when something may leave: see orchestrator.router.decide)
    assert {"email", "iban", "phone"} <= set(out.decision.pii_kinds)


def test_the_schema_goes_out_redacted_hashed_and_the_answer_comes_back_restored(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=('{"who": "[EMA', 'IL_1]"}')))
    svc, ledger = make(tmp_path, MAX_REDACTION, cloud=cloud)
    text, out = run(svc, cloud_ask("Fill in the form.", json_schema=SCHEMA))
    assert out.route == "cloud_redacted" and not out.fallback, out.fallback_reason
    (params,) = cloud.params
    sent_schema = params.json_schema
    for secret in SECRETS_IN_SCHEMA:
        assert secret not in sent_schema, secret
    assert json.loads(sent_schema)["required"] == ["who"]  # structure kept
    assert json.loads(text) == {"who": "bob.jones@example.com"}  # restored, valid against the original
    assert {"email", "iban", "phone", "person_name"} <= set(out.decision.pii_kinds)
    (row,) = ledger.rows
    (sent,) = cloud.sent
    digest = sent_digest_text(sent, sent_schema)
    assert json.loads(digest)["json_schema"] == sent_schema
    assert row["text_sha256"] == hashlib.sha256(digest.encode()).hexdigest()
    assert {"email", "person_name"} <= set(row["pii_kinds_redacted"])  # type: ignore[arg-type]


# -- stop sequences --------------------------------------------------------------------------


def test_pii_in_a_stop_sequence_is_detected_and_the_stop_never_leaves(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, _ = make(tmp_path, cloud=cloud)
    _, out = run(svc, cloud_ask("List three colours.", stop=("bob.jones@example.com",)))
    assert out.route == "local" and "email" in out.decision.pii_kinds and cloud.sent == []
    svc, _ = make(tmp_path, MAX_REDACTION, cloud=cloud)
    _, out = run(svc, cloud_ask("List three colours.", stop=("bob.jones@example.com",)))
    assert out.route == "cloud_redacted" and "email" in out.decision.pii_kinds
    assert out.decision.redacted_stop == ("[EMAIL_1]",)
    assert [p.stop for p in cloud.params] == [()]  # applied on the device, never sent


# -- values of sensitive store items, context off ----------------------------------------------

STORE_ITEMS = [
    NewItem("note", "My bank card PIN is 7391.", title="PIN", sensitivity="secret"),
    NewItem("note", "Mail password: Qz8!vRt2", title="Password", sensitivity="secret"),
    NewItem("document", "Family court case number 2026-FC-0193, hearing in May.", title="Court", sensitivity="personal"),
]


def store() -> MemoryStore:
    s = MemoryStore()
    s.put(STORE_ITEMS)
    return s


def test_values_of_sensitive_items_keep_the_request_local_with_context_off(tmp_path: Path) -> None:
    for policy in ("", MAX_REDACTION, PERSONAL_LEFT_OUT):
        for prompt in ("Is 7391 a safe PIN?", "Is Qz8!vRt2 a strong password?", "What does QZ8-VRT2 mean?",
                       "Summarise case 2026-FC-0193 for me.", "Summarise case 2026 fc 0193."):
            if policy == PERSONAL_LEFT_OUT and "0193" in prompt:
                continue  # a personal item that may be left out: see the next test
            cloud = ScriptedCloud()
            svc, _ = make(tmp_path, policy, cloud=cloud, store=store())
            _, out = run(svc, cloud_ask(prompt))
            assert out.route == "local" and cloud.sent == [], (policy, prompt, out.decision.explanation)
            assert "privacy.stored_value" in out.decision.rules_fired


def test_a_personal_value_is_replaced_where_the_policy_leaves_personal_items_out(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=("About [PERSONAL_CON", "TEXT_1]: ok",)))
    svc, _ = make(tmp_path, PERSONAL_LEFT_OUT, cloud=cloud, store=store())
    text, out = run(svc, cloud_ask("Summarise case 2026-FC-0193 for me."))
    assert out.route == "cloud_redacted"
    (sent,) = cloud.sent
    assert isinstance(sent, str) and "0193" not in sent and "[PERSONAL_CONTEXT_1]" in sent
    assert text == "About 2026-FC-0193: ok"


def test_general_requests_with_numbers_still_go_out(tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    svc, _ = make(tmp_path, cloud=cloud, store=store())
    _, out = run(svc, cloud_ask("What is 7392 times 2?"))
    assert out.route == "cloud" and cloud.sent == ["What is 7392 times 2?"]


# -- names without cues ----------------------------------------------------------------------


def test_names_without_cues_never_reach_the_cloud_under_redaction(tmp_path: Path) -> None:
    prompts = {
        "Is Okonkwo joining?": ["Okonkwo"],
        "Hope said the report is ready.": ["Hope"],
        "Fatou and Mamadou will host the party.": ["Fatou", "Mamadou"],
        "Send Mehmet Yilmaz the slides.": ["Mehmet", "Yilmaz"],
    }
    for prompt, names in prompts.items():
        cloud = ScriptedCloud()
        svc, _ = make(tmp_path, MAX_REDACTION, cloud=cloud)
        _, out = run(svc, cloud_ask(prompt))
        assert out.route == "cloud_redacted", (prompt, out.decision.explanation)
        (sent,) = cloud.sent
        assert isinstance(sent, str) and not [n for n in names if n in sent], sent
    cloud = ScriptedCloud()
    svc, _ = make(tmp_path, MAX_REDACTION, cloud=cloud)
    svc.store.contacts.append("Liisa Belvedere-Kask")  # type: ignore[attr-defined]
    _, out = run(svc, cloud_ask("did belvedere kask answer?"))
    (sent,) = cloud.sent
    assert isinstance(sent, str) and "belvedere" not in sent.lower() and "kask" not in sent.lower(), sent


# -- the ledger ---------------------------------------------------------------------------------


def test_an_attempt_that_could_not_connect_is_recorded_as_not_sent(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(fail="cloud unavailable: not connected", retryable=True, sent=False))
    svc, ledger = make(tmp_path, cloud=cloud)
    _, out = run(svc, cloud_ask("Why is the sky blue?"))
    assert out.fallback and cloud.sent == []
    assert [(r["outcome"], r["cost"], r["prompt_tokens"]) for r in ledger.rows] == [("not_sent", 0.0, 0)] * 2
