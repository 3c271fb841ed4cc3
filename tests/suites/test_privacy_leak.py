"""Privacy leak suite: a capturing cloud behind the real edge agent.

The cloud is the real cloud-stub server code (``run_server`` + ``CloudServicer``) on a
loopback port, its backend the real ``LlamaBackend`` wrapped in a recorder that keeps
every prompt byte it receives (and echoes the placeholders it sees, so restoration can
be checked). A personal-context store is filled with planted personal strings (names,
addresses, phone numbers, account numbers, secrets in items labelled personal or
secret); then a corpus of private and general requests runs under the default policy
and under a redaction policy. Nothing planted and no detected PII span may reach the
cloud where the policy keeps it local; under redaction, placeholders go out and the
user's answer has the originals back.
"""

from __future__ import annotations

import json
import random
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from suite_support import (
    PLACEHOLDER,
    InProcessCloud,
    Recording,
    agent_target,
    done_of,
    scales,
    start_agent,
    stop_service,
    write_config,
)

from cloud_stub.backends import LlamaBackend
from orchestrator.privacy import detect_pii

pytestmark = pytest.mark.model

CORPUS = scales(200, 1000)

# -- the planted personal data ------------------------------------------------------------

CONTACTS = [
    # (name, phone, email, street address)
    ("Marisol Quintanilla", "+44 20 7946 0958", "marisol.quintanilla@example.org", "221 Baker Street"),
    ("Tobias Wendelkamp", "+49 30 901820", "t.wendelkamp@example.net", "Lindenstraße 42"),
    ("Priyanka Oduya", "(415) 555-0198", "priyanka.oduya@example.com", "1600 Larkspur Avenue"),
]
IBAN = "DE89 3704 0044 0532 0130 00"  # a checksum-valid test IBAN
CARD = "4111 1111 1111 1111"  # a Luhn-valid test card
SECRETS = ["tangerine-octopus-7731", "Zephyr-Quokka-2290", "vault code 55-19-83"]
SSN = "219-09-9999"
LOCKER = "Pelican-4471"  # a personal (non-PII) string in a personal note


def planted() -> list[str]:
    out: list[str] = []
    for name, phone, email, street in CONTACTS:
        out += [name, name.split()[1], phone, email, street]
    return out + [IBAN, CARD, IBAN.replace(" ", ""), CARD.replace(" ", ""), *SECRETS, LOCKER, SSN]


def items() -> list[pb.ContextItem]:
    out = []
    for name, phone, email, street in CONTACTS:
        out.append(pb.ContextItem(kind="contact", title=name, body=f"{name}; phone {phone}; email {email}; lives at {street}", participants=[name], sensitivity="personal"))
    out += [
        pb.ContextItem(kind="email", title="Rent payment", body=f"Transfer the rent from account {IBAN} before Friday. Card on file {CARD}.", participants=[CONTACTS[0][0]], sensitivity="personal"),
        pb.ContextItem(kind="note", title="Vault", body=f"The vault passphrase is {SECRETS[0]} and the backup phrase is {SECRETS[1]}.", sensitivity="secret"),
        pb.ContextItem(kind="note", title="Storage unit", body=f"Storage unit {SECRETS[2]}, keep it safe.", sensitivity="secret"),
        pb.ContextItem(kind="note", title="Gym locker", body=f"My gym locker code is {LOCKER}; ask {CONTACTS[1][0]} if I forget.", sensitivity="personal"),
        pb.ContextItem(kind="event", title="Dentist appointment", body=f"Dentist with {CONTACTS[2][0]} at {CONTACTS[2][3]}, bring the card {CARD}.", starts_at=1798000000, ends_at=1798003600, sensitivity="personal"),
        pb.ContextItem(kind="message", title="Dinner", body=f"{CONTACTS[0][0]}: dinner at {CONTACTS[0][3]}, call me on {CONTACTS[0][1]}.", participants=[CONTACTS[0][0]], sensitivity="personal"),
        pb.ContextItem(kind="document", title="Library hours", body="The public library opens at nine and closes at six on weekdays.", sensitivity="public"),
        pb.ContextItem(kind="document", title="Cafeteria menu", body="The cafeteria serves lasagna on Thursdays and soup on Mondays.", sensitivity="public"),
    ]
    return out


# -- the request corpus ------------------------------------------------------------------------

GENERAL = [
    "What is the capital of France?",
    "Explain photosynthesis in one sentence.",
    "List three prime numbers.",
    "Why is the sky blue?",
    "Translate good morning into Spanish.",
    "What is the boiling point of water?",
    "Name a planet with rings.",
    "How many legs does a spider have?",
]
GENERAL_PUBLIC_CONTEXT = ["When does the library open?", "What does the cafeteria serve on Thursdays?"]
PRIVATE_CONTEXT = [
    "What is Marisol's phone number?",
    "What is my vault passphrase?",
    "When is my dentist appointment?",
    "What is the code of my gym locker?",
    "Which account do I pay the rent from?",
    "Where is dinner tonight?",
    "What is my storage unit vault code?",
    "Where does Tobias Wendelkamp live?",
]
# Private data typed by the user (no context needed to find it).
PRIVATE_PROMPT = [
    f"Write a short thank-you note to {CONTACTS[0][0]}.",
    f"Send a reminder to {CONTACTS[1][2]} about Friday.",
    f"Call {CONTACTS[2][1]} and say I am late.",
    f"Remind {CONTACTS[1][0]} at {CONTACTS[1][1]} about the party.",
    f"Is {CONTACTS[0][2]} a valid address for {CONTACTS[0][0]}?",
]
PRIVATE_HARD = [  # kinds the redaction policy does not redact
    f"Is my card {CARD} still valid?",
    f"Pay the bill from {IBAN} please.",
    f"My social security number is {SSN}, where should I keep it?",
]


POOLS = {
    "general": GENERAL,
    "general_ctx": GENERAL_PUBLIC_CONTEXT,
    "private_ctx": PRIVATE_CONTEXT,
    "private_prompt": PRIVATE_PROMPT,
    "private_hard": PRIVATE_HARD,
    "marked": GENERAL,
}


@dataclass(frozen=True)
class Req:
    kind: str  # general | general_ctx | private_ctx | private_prompt | private_hard | marked
    msg: pb.GenerateRequest


def corpus(rng: random.Random, n: int) -> list[Req]:
    """``n`` requests mixing private and general ones, most asking for the cloud."""
    out: list[Req] = []
    kinds = ["general", "general_ctx", "private_ctx", "private_prompt", "private_hard", "marked"]
    weights = [3, 1, 3, 3, 1, 1]
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        pref = rng.choice([pb.ROUTE_PREFERENCE_CLOUD_PREFERRED] * 3 + [pb.ROUTE_PREFERENCE_AUTO])
        # AUTO with a long answer: quality alone would prefer the cloud (explain only).
        max_tokens = 1500 if pref == pb.ROUTE_PREFERENCE_AUTO else 4
        routing = pb.Routing(preference=pref, personal=kind == "marked")
        pool = POOLS[kind]
        prompt = pool[rng.randrange(len(pool))]
        use_context = kind in ("general_ctx", "private_ctx") or (kind == "marked" and i % 2 == 0)
        msg = pb.GenerateRequest(
            prompt=prompt,
            params=common_pb2.GenerationParams(max_tokens=max_tokens),
            routing=routing,
            use_context=use_context,
            request_id=f"r{i}",
        )
        out.append(Req(kind, msg))
    return out


def generates(i: int, r: Req) -> bool:
    """Which requests of the corpus really generate (the rest use ExplainRoute)."""
    private = r.kind.startswith("private") or r.kind == "marked"
    return i % 10 == 0 if private else i % 4 == 0


def as_generate(r: Req) -> pb.GenerateRequest:
    m = pb.GenerateRequest()
    m.CopyFrom(r.msg)
    private = r.kind.startswith("private") or r.kind == "marked"
    m.params.max_tokens = 2 if private else 4
    if m.routing.preference == pb.ROUTE_PREFERENCE_AUTO:
        m.routing.preference = pb.ROUTE_PREFERENCE_CLOUD_PREFERRED
    return m


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture(model_path: Path) -> Iterator[tuple[InProcessCloud, Recording]]:
    backend = Recording(LlamaBackend(model_path, n_ctx=2048, n_threads=1), echo=True)
    cloud = InProcessCloud(backend, secrets.token_hex(8))
    yield cloud, backend
    cloud.stop()


REDACTION = """version = 1
[privacy.redaction]
enabled = true
kinds = ["email", "phone", "contact_name", "street_address"]
sensitivities = {sens}
"""


def run_agent(tmp: Path, cloud: InProcessCloud, policy: str | None) -> tuple[Any, grpc.Channel]:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp / "agent.toml", "[model]\nn_threads = 1\nwarmup = false\n[cloud]\nbreaker_failures = 1000\n")
    extra = {"EDGE_AGENT_CONFIG": str(cfg), "EDGE_AGENT_CLOUD": cloud.address, "EDGE_AGENT_CLOUD_TOKEN": cloud.token}
    if policy is not None:
        extra["EDGE_AGENT_POLICY"] = str(write_config(tmp / "policy.toml", policy))
    svc = start_agent(tmp / "data", **extra)
    return svc, grpc.insecure_channel(agent_target(svc))


def plant(stub: pb_grpc.EdgeAgentStub) -> None:
    ids = stub.PutContext(pb.PutContextRequest(items=items()), timeout=30).ids
    assert len(ids) == len(items())


def contact_names() -> list[str]:
    return [c[0] for c in CONTACTS]


def leaks_in(prompts: list[bytes]) -> list[tuple[str, str]]:
    """(what, how) for every planted string or PII span found in the prompts."""
    found: list[tuple[str, str]] = []
    for raw in prompts:
        text = raw.decode("utf-8").replace("\x00", "\n")
        low = " ".join(text.lower().split())
        for s in planted():
            if s.lower() in low:
                found.append((s, "planted"))
        for span in detect_pii(text, contact_names()):
            found.append((text[span.start : span.end], f"pii:{span.kind}"))
    return found


@pytest.mark.parametrize("n", CORPUS)
def test_default_policy_keeps_personal_data_on_the_device(tmp_path: Path, capture: tuple[InProcessCloud, Recording], n: int) -> None:
    cloud, rec = capture
    svc, ch = run_agent(tmp_path / "default", cloud, None)
    try:
        stub = pb_grpc.EdgeAgentStub(ch)
        plant(stub)
        before = len(rec.received())
        reqs = corpus(random.Random(1), n)
        targets: Counter[str] = Counter()
        n_generate = 0
        for i, r in enumerate(reqs):
            private = r.kind.startswith("private") or r.kind == "marked"
            if generates(i, r):
                _, done = done_of(list(stub.Generate(as_generate(r), timeout=120)))
                target = done.route.target
                assert not done.route.fallback, done.route.fallback_reason
                n_generate += 1
            else:
                target = stub.ExplainRoute(r.msg, timeout=30).target
            targets[f"{r.kind}:{pb.RouteTarget.Name(target)}"] += 1
            if private:
                assert target == pb.ROUTE_TARGET_LOCAL, (r.msg.prompt, pb.RouteTarget.Name(target))
            elif r.msg.routing.preference == pb.ROUTE_PREFERENCE_CLOUD_PREFERRED or generates(i, r):
                assert target == pb.ROUTE_TARGET_CLOUD, (r.msg.prompt, pb.RouteTarget.Name(target))
        sent = rec.received()[before:]
        leaks = leaks_in(sent)
        print(f"\nprivacy/default: {len(reqs)} requests ({n_generate} Generate, {len(reqs) - n_generate} ExplainRoute), "
              f"{len(sent)} prompts reached the cloud ({sum(map(len, sent))} bytes), leaks found: {len(leaks)}; routes {dict(sorted(targets.items()))}")
        assert len(sent) >= n_generate // 3, "the general requests must really use the cloud"
        assert leaks == []
    finally:
        ch.close()
        assert stop_service(svc) == 0, svc.log()


@dataclass
class Agent:
    svc: Any
    channel: grpc.Channel
    policy: Path


@pytest.fixture(scope="module")
def redaction_agent(tmp_path_factory: pytest.TempPathFactory, capture: tuple[InProcessCloud, Recording]) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("redact")
    svc, ch = run_agent(tmp, capture[0], REDACTION.format(sens="[]"))
    try:
        plant(pb_grpc.EdgeAgentStub(ch))
        yield Agent(svc, ch, tmp / "policy.toml")
    finally:
        ch.close()
        assert stop_service(svc) == 0, svc.log()


@pytest.mark.parametrize("n", CORPUS)
def test_redaction_sends_placeholders_and_restores_originals(redaction_agent: Agent, capture: tuple[InProcessCloud, Recording], n: int) -> None:
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(redaction_agent.channel)
    reqs = corpus(random.Random(2), n)
    targets: Counter[str] = Counter()
    restored = placeholders_sent = n_generate = 0
    sent_all: list[bytes] = []
    for i, r in enumerate(reqs):
        if generates(i, r) or (r.kind == "private_prompt" and i % 3 == 0):
            before = len(rec.received())
            text, done = done_of(list(stub.Generate(as_generate(r), timeout=120)))
            target = done.route.target
            assert not done.route.fallback, done.route.fallback_reason
            sent = rec.received()[before:]
            sent_all += sent
            n_generate += 1
            if target == pb.ROUTE_TARGET_CLOUD_REDACTED:
                assert len(sent) == 1
                phs = set(PLACEHOLDER.findall(sent[0].decode().split("\x00")[0]))
                assert phs, "a redacted hand-off without placeholders"
                placeholders_sent += len(phs)
                # The cloud echoed every placeholder; the user sees the originals.
                assert not PLACEHOLDER.search(text), text
                originals = [s for s in planted() if s in r.msg.prompt]
                for s in originals:
                    if s in text:
                        restored += 1
                assert originals and all(s in text for s in originals), (r.msg.prompt, text)
        else:
            target = stub.ExplainRoute(r.msg, timeout=30).target
        targets[f"{r.kind}:{pb.RouteTarget.Name(target)}"] += 1
        if r.kind in ("private_ctx", "private_hard", "marked"):
            assert target == pb.ROUTE_TARGET_LOCAL, (r.msg.prompt, pb.RouteTarget.Name(target))
        elif r.kind == "private_prompt" and r.msg.routing.preference == pb.ROUTE_PREFERENCE_CLOUD_PREFERRED:
            assert target == pb.ROUTE_TARGET_CLOUD_REDACTED, (r.msg.prompt, pb.RouteTarget.Name(target))
        elif r.kind == "private_prompt":
            assert target in (pb.ROUTE_TARGET_LOCAL, pb.ROUTE_TARGET_CLOUD_REDACTED)
    leaks = leaks_in(sent_all)
    print(f"\nprivacy/redaction: {len(reqs)} requests ({n_generate} Generate), {len(sent_all)} prompts reached the cloud, "
          f"{placeholders_sent} placeholders sent, {restored} originals restored in answers, leaks found: {len(leaks)}; "
          f"routes {dict(sorted(targets.items()))}")
    assert targets and any(k.endswith("CLOUD_REDACTED") for k in targets)
    assert placeholders_sent > 0 and restored > 0
    assert leaks == []


def test_left_out_personal_items_never_reach_the_cloud(redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]) -> None:
    """With ``sensitivities = ["personal"]`` personal items are left out of the hand-off:
    none of their text (PII or not, e.g. a locker code) may reach the cloud."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(redaction_agent.channel)
    original = redaction_agent.policy.read_text()
    redaction_agent.policy.write_text(REDACTION.format(sens='["personal"]'))
    try:
        assert stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30).policy_file
        before = len(rec.received())
        targets: Counter[str] = Counter()
        for q in ["Which gym locker is mine?", "Where is dinner tonight?", "Is my gym locker in the basement?"] * 2:
            msg = pb.GenerateRequest(
                prompt=q,
                params=common_pb2.GenerationParams(max_tokens=4),
                routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
                use_context=True,
            )
            _, done = done_of(list(stub.Generate(msg, timeout=120)))
            targets[pb.RouteTarget.Name(done.route.target)] += 1
        sent = rec.received()[before:]
        leaks = leaks_in(sent)
        print(f"\nprivacy/left-out items: 6 requests, routes {dict(targets)}, {len(sent)} prompts reached the cloud, leaks found: {len(leaks)} {sorted(set(leaks))[:5]}")
        # The requests really went out (redacted), so the check above means something.
        assert targets["ROUTE_TARGET_CLOUD_REDACTED"] >= 2, targets
        assert leaks == []
    finally:
        redaction_agent.policy.write_text(original)
        stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30)


def test_stop_sequences_do_not_carry_personal_data_to_the_cloud(redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]) -> None:
    """Stop sequences are text too: an address or a name in them must not reach the cloud."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(redaction_agent.channel)
    before = len(rec.received())
    name, _, email, _ = CONTACTS[0]
    for prompt, stop in [("List three colours.", [email]), (f"Write a short thank-you note to {name}.", [name.split()[0], "\n\n"])]:
        msg = pb.GenerateRequest(
            prompt=prompt,
            params=common_pb2.GenerationParams(max_tokens=4, stop=stop),
            routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
        )
        done_of(list(stub.Generate(msg, timeout=120)))
    sent = rec.received()[before:]
    leaks = leaks_in(sent)
    print(f"\nprivacy/stop sequences: 2 requests, {len(sent)} reached the cloud, leaks found: {len(leaks)} {sorted(set(leaks))}")
    assert len(sent) == 2, "both requests must really go to the cloud (redacted)"
    assert leaks == []


# Scoring always prefers the local model (the cloud costs, the local model does not);
# only the cascade can send a request out.
CASCADE = """
[quality.cascade]
enabled = true
first_tokens = 2
min_mean_prob = 1.0
[cost]
cloud_price_in_per_1k = 1.0
cloud_price_out_per_1k = 1.0
[weights]
latency = 0.0
cost = 1.0
quality = 0.0
"""


def test_cascade_escalates_general_requests_and_never_private_ones(redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]) -> None:
    """With min_mean_prob = 1.0 every local answer is unsure: a general request must be
    escalated to the cloud, a private one never."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(redaction_agent.channel)
    original = redaction_agent.policy.read_text()
    redaction_agent.policy.write_text(original + CASCADE)
    try:
        assert stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30).policy_file
        private = pb.GenerateRequest(prompt="What is my vault passphrase?", params=common_pb2.GenerationParams(max_tokens=4), use_context=True)
        general = pb.GenerateRequest(prompt="Why is the sky blue?", params=common_pb2.GenerationParams(max_tokens=4))
        assert stub.ExplainRoute(general, timeout=30).target == pb.ROUTE_TARGET_LOCAL
        before = len(rec.received())
        _, kept = done_of(list(stub.Generate(private, timeout=120)))
        assert leaks_in(rec.received()[before:]) == []
        assert len(rec.received()) == before, "a private request reached the cloud"
        assert kept.route.target == pb.ROUTE_TARGET_LOCAL and "cascade.escalated" not in kept.route.rules_fired
        text, done = done_of(list(stub.Generate(general, timeout=120)))
        assert done.route.target in (pb.ROUTE_TARGET_CLOUD, pb.ROUTE_TARGET_CLOUD_REDACTED)
        assert "cascade.escalated" in done.route.rules_fired and "escalated" in done.route.explanation
        assert text and done.usage.completion_tokens > 0
        sent = rec.received()[before:]
        print(f"\nprivacy/cascade: {len(sent)} escalations reached the cloud")
        assert len(sent) == 1 and b"sky" in sent[0], "the unsure local answer was not escalated"
    finally:
        redaction_agent.policy.write_text(original)
        stub.ReloadPolicy(pb.ReloadPolicyRequest(), timeout=30)


# -- typed-in PII in every spelling, under a policy that redacts every kind ----------------

MAX_REDACTION = """version = 1
[privacy.redaction]
enabled = true
kinds = [{kinds}]
sensitivities = []
"""
TYPED = scales(64, 456)

# (kind, spellings): one value each, the first spelling as a user types it first.
SPELLINGS: list[tuple[str, list[str]]] = [
    ("name", ["Halvard Quennell", "halvard quennell", "HALVARD QUENNELL", "Halvard  Quennell"]),
    ("name", ["Dr. Ingrid Voskuijlen", "Dr Ingrid Voskuijlen"]),
    ("street", ["18 Wrenfield Crescent", "18 wrenfield crescent", "18  Wrenfield Crescent"]),
    ("postcode", ["HG2 9QT", "hg2 9qt", "HG29QT"]),
    ("phone", ["+44 7700 900417", "07700 900417", "7700 900417", "+44 7700-900-417"]),
    ("iban", ["NL91 ABNA 0417 1643 00", "nl91 abna 0417 1643 00", "NL91ABNA0417164300"]),
    ("email", ["Halvard.Quennell@example.org", "halvard.quennell@example.org"]),
    ("card", ["5555 5555 5555 4444", "5555-5555-5555-4444", "5555555555554444"]),
    ("ssn", ["078-05-1120", "078 05 1120"]),
    ("nl_postcode", ["1012 AB Amsterdam"]),
    ("de_postcode", ["10115 Berlin"]),
    ("us_zip", ["Springfield, IL 62704"]),
]
TEMPLATES = {
    "name": "Please write a short note to {0}; {1} asked for it.",
    "street": "The parcel goes to {0}; the courier wrote {1} on the label.",
    "postcode": "I live at 18 Wrenfield Crescent, Harrogate {0}, and the form says {1}.",
    "phone": "Call me on {0} or {1} after six.",
    "iban": "Pay the invoice into {0} (the bank printed {1}).",
    "email": "Forward the minutes to {0}, cc {1}.",
    "card": "Is the card {0} still valid? The receipt shows {1}.",
    "ssn": "My social security number is {0}; the old form has {1}.",
    "nl_postcode": "Our office moved to {0}; summarise what that means.",
    "de_postcode": "Lieferadresse: Lindenstraße 42, {0}. Translate this.",
    "us_zip": "Mail the cheque to 500 Oak Avenue, {0}.",
}


def _squash(text: str) -> str:
    """Lower case without spaces and number separators: every spelling of a value alike."""
    return "".join(ch for ch in text.lower() if ch not in " \t\n-.()/+")


def typed_prompts(rng: random.Random, n: int) -> list[tuple[str, list[str]]]:
    """``n`` prompts, each typing one or two values in two spellings (case, spacing,
    format), with the spellings whose text must not reach the cloud."""
    out: list[tuple[str, list[str]]] = []
    for i in range(n):
        kind, spellings = SPELLINGS[i % len(SPELLINGS)]
        # A name is recognised capitalised; its other spellings as repeats of it.
        a = spellings[0] if kind == "name" or rng.random() < 0.5 else rng.choice(spellings)
        b = rng.choice(spellings)
        prompt = TEMPLATES[kind].format(a, b)
        originals = [a, b]
        if kind == "name":
            originals += [a.split()[-1]]  # the surname alone is personal too
        if kind == "postcode":
            originals += ["18 Wrenfield Crescent"]
        if kind == "us_zip":
            originals = ["62704", "500 Oak Avenue"]
        elif kind == "nl_postcode":
            originals = ["1012 AB"]
        elif kind == "de_postcode":
            originals = ["10115", "Lindenstraße 42"]
        out.append((prompt, originals))
    return out


@pytest.fixture(scope="module")
def max_redaction_agent(tmp_path_factory: pytest.TempPathFactory, capture: tuple[InProcessCloud, Recording]) -> Iterator[Agent]:
    from orchestrator.kinds import PII_KINDS

    tmp = tmp_path_factory.mktemp("maxredact")
    svc, ch = run_agent(tmp, capture[0], MAX_REDACTION.format(kinds=", ".join(f'"{k}"' for k in PII_KINDS)))
    try:
        yield Agent(svc, ch, tmp / "policy.toml")
    finally:
        ch.close()
        assert stop_service(svc) == 0, svc.log()


@pytest.mark.parametrize("n", TYPED)
def test_typed_in_pii_in_any_spelling_never_reaches_the_cloud(max_redaction_agent: Agent, capture: tuple[InProcessCloud, Recording], n: int) -> None:
    """Typed-in PII (names outside the contacts, postcodes, national phone formats,
    lower-case IBANs and addresses, repeats in another spelling) under a policy that
    redacts every kind: each request goes out redacted and no spelling of any value
    reaches the cloud."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(max_redaction_agent.channel)
    leaks: list[tuple[str, str]] = []
    routes: Counter[str] = Counter()
    for i, (prompt, originals) in enumerate(typed_prompts(random.Random(3), n)):
        before = len(rec.received())
        msg = pb.GenerateRequest(
            prompt=prompt,
            params=common_pb2.GenerationParams(max_tokens=2),
            routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
            request_id=f"typed-{i}",
        )
        _, done = done_of(list(stub.Generate(msg, timeout=120)))
        routes[pb.RouteTarget.Name(done.route.target)] += 1
        assert done.route.target == pb.ROUTE_TARGET_CLOUD_REDACTED, (prompt, done.route.explanation)
        sent = rec.received()[before:]
        assert len(sent) == 1
        upstream = _squash(sent[0].decode("utf-8"))
        leaks += [(o, prompt) for o in originals if _squash(o) in upstream]
    print(f"\nprivacy/typed-in PII: {n} requests, routes {dict(routes)}, originals found upstream: {len(leaks)}")
    assert leaks == []


# -- names without cues, the JSON schema, values of stored secrets ---------------------------

NAMES_WITHOUT_CUES = {
    "Is Okonkwo joining?": ["Okonkwo"],
    "Hope said the report is ready.": ["Hope"],
    "Fatou and Mamadou will host the party.": ["Fatou", "Mamadou"],
    "Send Mehmet Yilmaz the slides.": ["Mehmet", "Yilmaz"],
    "Did Chidinma get the invoice?": ["Chidinma"],
    "Kwame wants the budget by noon.": ["Kwame"],
    "Our neighbour Yael Cohen found the cat.": ["Yael", "Cohen"],
    "Zhang Min and Liu Yang are moving to Shenzhen.": ["Zhang", "Min", "Liu", "Yang"],
    "Łukasz is the best man.": ["Łukasz"],
    "tell mehmet the meeting moved": ["mehmet"],
}


def _upstream_words(raw: bytes) -> set[str]:
    return {w.strip(".,;:!?'\"()[]{}").lower() for w in raw.decode("utf-8").replace("\x00", " ").split()}


def test_names_without_cues_never_reach_the_cloud(max_redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]) -> None:
    """Names with no cue around them (the bug report's probes and more) under a policy
    that redacts every kind: every request goes out redacted, no name with it."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(max_redaction_agent.channel)
    leaks: list[tuple[str, str]] = []
    for i, (prompt, names) in enumerate(NAMES_WITHOUT_CUES.items()):
        before = len(rec.received())
        msg = pb.GenerateRequest(
            prompt=prompt,
            params=common_pb2.GenerationParams(max_tokens=2),
            routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
            request_id=f"names-{i}",
        )
        _, done = done_of(list(stub.Generate(msg, timeout=120)))
        assert done.route.target == pb.ROUTE_TARGET_CLOUD_REDACTED, (prompt, done.route.explanation)
        assert "person_name" in done.route.pii_kinds, (prompt, list(done.route.pii_kinds))
        (sent,) = rec.received()[before:]
        leaks += [(n, prompt) for n in names if n.lower() in _upstream_words(sent)]
    print(f"\nprivacy/names without cues: {len(NAMES_WITHOUT_CUES)} requests, names found upstream: {len(leaks)} {leaks}")
    assert leaks == []


def test_a_contacts_double_surname_in_lower_case_never_reaches_the_cloud(
    max_redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]
) -> None:
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(max_redaction_agent.channel)
    contact = pb.ContextItem(kind="contact", title="Liisa Belvedere-Kask", body="Liisa Belvedere-Kask; phone +372 5123 4567", sensitivity="personal")
    stub.PutContext(pb.PutContextRequest(items=[contact]), timeout=30)  # (a write refreshes the contact list)
    before = len(rec.received())
    for prompt in ("did belvedere kask answer?", "Ask BELVEDERE-KASK about the lease.", "is belvedere  kask free?"):
        msg = pb.GenerateRequest(prompt=prompt, params=common_pb2.GenerationParams(max_tokens=2),
                                 routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED))
        _, done = done_of(list(stub.Generate(msg, timeout=120)))
        assert done.route.target == pb.ROUTE_TARGET_CLOUD_REDACTED, (prompt, done.route.explanation)
    sent = rec.received()[before:]
    found = [w for raw in sent for w in _upstream_words(raw) if "belvedere" in w or "kask" in w]
    print(f"\nprivacy/contact spellings: 3 requests, {len(sent)} reached the cloud, contact name parts upstream: {found}")
    assert len(sent) == 3 and found == []


SCHEMA_WITH_PII = json.dumps({
    "type": "object",
    "title": "Reply for Marisol Quintanilla",
    "properties": {
        "who": {"enum": ["Halvard Quennell", "halvard.quennell@example.org"], "description": "PIN 7391, account DE89 3704 0044 0532 0130 00"},
        "note": {"type": "string", "maxLength": 20, "default": "call +44 20 7946 0958"},
    },
    "required": ["who"],
})


def test_the_json_schema_goes_out_redacted(max_redaction_agent: Agent, capture: tuple[InProcessCloud, Recording]) -> None:
    """Enum values, titles, descriptions and defaults leave with the request: redacted,
    listed in the route's PII kinds."""
    _, rec = capture
    stub = pb_grpc.EdgeAgentStub(max_redaction_agent.channel)
    before = len(rec.received())
    msg = pb.GenerateRequest(
        prompt="Pick who should answer.",
        params=common_pb2.GenerationParams(max_tokens=24, json_schema=SCHEMA_WITH_PII),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
    )
    _, done = done_of(list(stub.Generate(msg, timeout=120)))
    assert done.route.target == pb.ROUTE_TARGET_CLOUD_REDACTED, done.route.explanation
    assert {"email", "iban", "phone", "person_name"} <= set(done.route.pii_kinds), list(done.route.pii_kinds)
    (sent,) = rec.received()[before:]
    upstream = sent.decode("utf-8")
    assert "\x00{" in upstream, "the schema must really go out"
    leaks = [v for v in ("Marisol", "Quintanilla", "Halvard", "Quennell", "halvard.quennell", "DE89", "7946") if v.lower() in upstream.lower()]
    print(f"\nprivacy/json schema: {len(upstream)} bytes upstream, values found: {leaks}")
    assert leaks == []


STORED_SECRETS = [
    pb.ContextItem(kind="note", title="Bank PIN", body="The PIN of my bank card is 7391.", sensitivity="secret"),
    pb.ContextItem(kind="note", title="Mail password", body="Mail password: Qz8!vRt2", sensitivity="secret"),
    pb.ContextItem(kind="document", title="Court", body="Family court case number 2026-FC-0193.", sensitivity="personal"),
]
STORED_PROBES = ["Is 7391 a good PIN?", "Is Qz8!vRt2 a strong password?", "Summarise case 2026-FC-0193.", "What is case 2026 fc 0193 about?"]


@pytest.mark.parametrize("policy", ["default", "redaction", "max_redaction"])
def test_values_of_stored_secrets_stay_local_with_context_off(
    policy: str, tmp_path: Path, capture: tuple[InProcessCloud, Recording]
) -> None:
    """A PIN, a password and a case number that are items in the store, typed into a
    request with use_context = false: they never reach the cloud, under any policy."""
    from orchestrator.kinds import PII_KINDS

    cloud, rec = capture
    text = {"default": None, "redaction": REDACTION.format(sens="[]"),
            "max_redaction": MAX_REDACTION.format(kinds=", ".join(f'"{k}"' for k in PII_KINDS))}[policy]
    svc, ch = run_agent(tmp_path / policy, cloud, text)
    try:
        stub = pb_grpc.EdgeAgentStub(ch)
        stub.PutContext(pb.PutContextRequest(items=STORED_SECRETS), timeout=30)
        before = len(rec.received())
        for prompt in STORED_PROBES:
            msg = pb.GenerateRequest(prompt=prompt, params=common_pb2.GenerationParams(max_tokens=2),
                                     routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED), use_context=False)
            _, done = done_of(list(stub.Generate(msg, timeout=120)))
            assert done.route.target == pb.ROUTE_TARGET_LOCAL, (policy, prompt, done.route.explanation)
        sent = rec.received()[before:]
        squashed = [_squash(raw.decode("utf-8")) for raw in sent]
        leaks = [v for v in ("7391", "qz8!vrt2", "2026fc0193") for s in squashed if v in s]
        print(f"\nprivacy/stored values ({policy}): {len(STORED_PROBES)} requests, {len(sent)} reached the cloud, values upstream: {leaks}")
        assert sent == [] and leaks == []
    finally:
        ch.close()
        assert stop_service(svc) == 0, svc.log()
