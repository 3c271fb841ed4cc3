"""Table-driven routing decisions over request/policy/estimate combinations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from routing_helpers import est, req

from orchestrator.budget import Spend
from orchestrator.policy import default_policy, parse_policy
from orchestrator.router import decide
from orchestrator.types import ContextRef, Estimates, Preference, RouteRequest, Target

PERSONAL = ContextRef("n1", "personal", "Dentist on Tuesday at 9.")
SECRET = ContextRef("n2", "secret", "Door code 4471.")
PUBLIC = ContextRef("n3", "public", "The library opens at 10.")

REDACT = """
[privacy.redaction]
enabled = true
kinds = ["email", "phone", "contact_name", "person_name"]
sensitivities = ["personal"]
"""

BUDGET = """
[cost]
cloud_price_in_per_1k = 1.0
cloud_price_out_per_1k = 1.0
daily_budget = 1.0
on_budget_exhausted = "{mode}"
"""

MAIL_REDACTED = """
[[rules]]
name = "mail-redacted"
action = "cloud_redacted"
match = { app_id = ["mail"] }
"""

RULES = """
[privacy.redaction]
enabled = true
kinds = ["email"]

[[rules]]
name = "block-legal"
action = "reject"
match = { labels = ["legal"] }

[[rules]]
name = "mail-app-cloud"
action = "cloud"
match = { app_id = ["mail"] }

[[rules]]
name = "night-local"
action = "local"
match = { hours = "22:00-06:00" }

[[rules]]
name = "big-to-cloud"
action = "cloud"
match = { min_prompt_tokens = 1000 }
"""


@dataclass
class Case:
    id: str
    request: RouteRequest
    target: Target
    fired: tuple[str, ...]  # must appear in rules_fired, in this order
    policy: str | None = None
    estimates: Estimates = field(default_factory=est)
    spend: Spend | None = None
    now: datetime = datetime(2026, 11, 23, 12, 0)
    not_fired: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


SLOW_LOCAL = est(local_tokens_per_s=5.0)  # 128 tokens ~ 25.8 s
SLOW_CLOUD = est(cloud_ttft_ms=20_000.0)

CASES = [
    Case("plain-local-wins-on-cost", req(), Target.LOCAL, ("score",)),
    Case(
        "email-stays-local", req("Mail bob@example.com the agenda"), Target.LOCAL, ("privacy.pii",)
    ),
    Case(
        "personal-context-stays-local",
        req(context=(PERSONAL,)),
        Target.LOCAL,
        ("privacy.sensitive_context",),
    ),
    Case("public-context-may-leave", req(context=(PUBLIC,), deadline_ms=3000), Target.CLOUD, ()),
    Case(
        "marked-personal",
        req(marked_personal=True, deadline_ms=3000),
        Target.LOCAL,
        ("privacy.marked_personal",),
    ),
    Case(
        "local-misses-deadline-goes-cloud",
        req(deadline_ms=3000),
        Target.CLOUD,
        ("latency.local_misses_deadline",),
    ),
    Case(
        "privacy-beats-deadline",
        req("Call +44 20 7946 0958 back", deadline_ms=3000),
        Target.LOCAL,
        ("privacy.pii",),
        not_fired=("latency.local_misses_deadline",),
    ),
    Case(
        "cloud-misses-deadline-stays-local",
        req(max_tokens=2000),
        Target.LOCAL,
        ("latency.cloud_misses_deadline",),
        estimates=est(cloud_ttft_ms=20_000.0, local_tokens_per_s=200.0),
    ),
    Case(
        "quality-prefers-cloud-for-long-output",
        req(max_tokens=1500, deadline_ms=60_000),
        Target.CLOUD,
        ("quality.prefer_cloud", "score"),
    ),
    Case(
        "local-only-preference",
        req(preference=Preference.LOCAL_ONLY, deadline_ms=1000),
        Target.LOCAL,
        ("preference.local_only",),
    ),
    Case(
        "cloud-preferred",
        req(preference=Preference.CLOUD_PREFERRED),
        Target.CLOUD,
        ("preference.cloud_preferred",),
    ),
    Case(
        "cloud-preferred-cannot-loosen-privacy",
        req("ping bob@example.com", preference=Preference.CLOUD_PREFERRED),
        Target.LOCAL,
        ("privacy.pii",),
        not_fired=("preference.cloud_preferred",),
    ),
    Case(
        "cloud-unavailable",
        req(deadline_ms=3000),
        Target.LOCAL,
        ("cloud.unavailable",),
        estimates=est(cloud_available=False),
    ),
    Case(
        "max-cost-blocks-cloud",
        req(deadline_ms=3000, max_cost=0.00001),
        Target.LOCAL,
        ("cost.max_cost",),
    ),
    Case(
        "none-meets-deadline-fastest",
        req(deadline_ms=500),
        Target.CLOUD,
        ("latency.none_meets_deadline",),
    ),
    Case(
        "budget-spent-local",
        req(deadline_ms=3000),
        Target.LOCAL,
        ("budget.daily",),
        policy=BUDGET.format(mode="local"),
        spend=Spend(today=1.0, month=5.0),
    ),
    Case(
        "budget-spent-reject",
        req(deadline_ms=3000),
        Target.REJECT,
        ("latency.local_misses_deadline", "budget.daily", "budget.reject"),
        policy=BUDGET.format(mode="reject"),
        spend=Spend(today=1.0, month=5.0),
    ),
    Case(
        "budget-spent-reject-but-local-fine",
        req(),
        Target.LOCAL,
        ("score",),
        policy=BUDGET.format(mode="reject"),
        spend=Spend(today=1.0, month=5.0),
        not_fired=("budget.reject",),
    ),
    Case(
        "budget-left",
        req(deadline_ms=3000),
        Target.CLOUD,
        (),
        policy=BUDGET.format(mode="local"),
        spend=Spend(0.1, 0.1),
    ),
    Case(
        "redacted-handoff-when-local-too-slow",
        req(
            "Ask Bob Jones (bob@example.com) about the sales report",
            deadline_ms=3000,
            contact_names=("Bob Jones",),
        ),
        Target.CLOUD_REDACTED,
        ("privacy.pii", "latency.local_misses_deadline", "privacy.redaction"),
        policy=REDACT,
    ),
    Case(
        "redaction-not-for-unlisted-kind",
        req("Card 4111 1111 1111 1111 statement", deadline_ms=3000),
        Target.LOCAL,
        ("privacy.pii",),
        policy=REDACT,
    ),
    Case(
        "redaction-never-for-secret",
        req(context=(SECRET,), deadline_ms=3000),
        Target.LOCAL,
        ("privacy.sensitive_context",),
        policy=REDACT,
    ),
    Case(
        "redaction-never-for-marked-personal",
        req(marked_personal=True, deadline_ms=3000),
        Target.LOCAL,
        ("privacy.marked_personal",),
        policy=REDACT,
    ),
    Case(
        "local-keyword",
        req("What does my diagnosis mean?", deadline_ms=3000),
        Target.LOCAL,
        ("privacy.keyword",),
        policy='[privacy]\nlocal_keywords = ["diagnosis"]\n' + REDACT,
    ),
    Case("rule-reject", req(labels=("legal",)), Target.REJECT, ("rule:block-legal",), policy=RULES),
    Case("rule-cloud", req(app_id="mail"), Target.CLOUD, ("rule:mail-app-cloud",), policy=RULES),
    Case(
        "rule-cloud-becomes-redacted",
        req("forward to a@b.io", app_id="mail"),
        Target.CLOUD_REDACTED,
        ("privacy.pii", "rule:mail-app-cloud", "privacy.redaction"),
        policy=RULES,
    ),
    Case(
        "rule-cloud-blocked-by-privacy",
        req("call +44 20 7946 0958", app_id="mail"),
        Target.LOCAL,
        ("privacy.pii", "rule:mail-app-cloud"),
        policy=RULES,
    ),
    Case(
        "rule-night-local",
        req(deadline_ms=3000),
        Target.LOCAL,
        ("rule:night-local",),
        policy=RULES,
        now=datetime(2026, 11, 23, 23, 30),
    ),
    Case(
        "rule-day-skips-night",
        req(deadline_ms=3000),
        Target.CLOUD,
        ("latency.local_misses_deadline",),
        policy=RULES,
        not_fired=("rule:night-local",),
    ),
    Case(
        "first-matching-rule-decides",
        req(labels=("legal",), app_id="mail"),
        Target.REJECT,
        ("rule:block-legal",),
        policy=RULES,
        not_fired=("rule:mail-app-cloud",),
    ),
    Case(
        "rule-by-tokens",
        req(prompt_tokens=4000),
        Target.CLOUD,
        ("rule:big-to-cloud",),
        policy=RULES,
    ),
    Case(
        "rule-redacts-even-plain-requests",
        req(app_id="mail"),
        Target.CLOUD_REDACTED,
        ("rule:mail-redacted", "privacy.redaction"),
        policy=REDACT + MAIL_REDACTED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decisions(case: Case) -> None:
    policy = parse_policy(case.policy, "t.toml") if case.policy else default_policy()
    d = decide(case.request, case.estimates, policy, case.spend, now=case.now)
    assert d.target is case.target, d.explanation
    fired = list(d.rules_fired)
    positions = [fired.index(f) for f in case.fired]  # ValueError if missing
    assert positions == sorted(positions), fired
    for f in case.not_fired:
        assert f not in fired
    assert "\n" not in d.explanation and d.explanation.startswith(case.target.value)


def test_options_carry_estimates() -> None:
    d = decide(req(max_tokens=100, prompt_tokens=1000), est(), default_policy())
    by = {o.target: o for o in d.options}
    assert set(by) == {Target.LOCAL, Target.CLOUD}
    assert by[Target.LOCAL].latency_ms == pytest.approx(200 + 100 / 50 * 1000)
    assert by[Target.CLOUD].latency_ms == pytest.approx(300 + 100 / 100 * 1000)
    assert by[Target.CLOUD].cost == pytest.approx(1000 / 1000 * 0.001 + 100 / 1000 * 0.002)
    assert by[Target.LOCAL].cost == 0.0
    assert all(o.allowed for o in d.options)


def test_blocked_option_says_why() -> None:
    d = decide(req("mail a@b.io"), est(), default_policy())
    cloud = next(o for o in d.options if o.target is Target.CLOUD)
    assert not cloud.allowed and "PII (email)" in cloud.note
    assert d.pii_kinds == ("email",)


def test_policy_prices_used_when_estimates_have_none() -> None:
    policy = parse_policy("[cost]\ncloud_price_in_per_1k = 2.0\ncloud_price_out_per_1k = 4.0\n")
    e = est(cloud_price_in_per_1k=0.0, cloud_price_out_per_1k=0.0)
    d = decide(req(prompt_tokens=500, max_tokens=250), e, policy)
    cloud = next(o for o in d.options if o.target is Target.CLOUD)
    assert cloud.cost == pytest.approx(0.5 * 2.0 + 0.25 * 4.0)


def test_redacted_handoff_contents_and_restore() -> None:
    policy = parse_policy(REDACT)
    r = req(
        "Ask Bob Jones at bob@example.com about it",
        deadline_ms=3000,
        contact_names=("Bob Jones",),
        context=(PERSONAL, ContextRef("m1", "public", "Bob Jones said hi from bob@example.com")),
    )
    d = decide(r, est(), policy)
    assert d.target is Target.CLOUD_REDACTED
    assert d.redacted_prompt == "Ask [CONTACT_NAME_1] at [EMAIL_1] about it"
    assert [c.item_id for c in d.redacted_context] == ["m1"]  # personal item left out
    assert d.redacted_context[0].text == "[CONTACT_NAME_1] said hi from [EMAIL_1]"
    assert d.restore == {
        "[CONTACT_NAME_1]": "Bob Jones",
        "[EMAIL_1]": "bob@example.com",
        "[PERSONAL_CONTEXT_1]": PERSONAL.text,
    }


def test_left_out_item_embedded_in_prompt_is_scrubbed() -> None:
    note = ContextRef("n9", "personal", "Dentist appointment moved to Tuesday\nBring the X-ray")
    prompt = f"Context:\n{note.text}\n\nWhat should I bring?"
    r = req(prompt, deadline_ms=3000, context=(note,))
    d = decide(r, est(), parse_policy(REDACT))
    assert d.target is Target.CLOUD_REDACTED
    assert (
        d.redacted_prompt
        == "Context:\n[PERSONAL_CONTEXT_1]\n[PERSONAL_CONTEXT_2]\n\nWhat should I bring?"
    )
    assert d.redacted_context == ()


def test_left_out_item_reformatted_in_prompt_blocks_the_handoff() -> None:
    note = ContextRef(
        "n9", "personal", "Dentist appointment moved to Tuesday at nine in Springfield"
    )
    prompt = "Context: - dentist appointment moved to Tuesday at nine in Spring...\nWhat now?"
    d = decide(req(prompt, deadline_ms=3000, context=(note,)), est(), parse_policy(REDACT))
    assert d.target is Target.LOCAL
    blocked = next(o for o in d.options if o.target is Target.CLOUD_REDACTED)
    assert not blocked.allowed and "could not be separated" in blocked.note


def test_stop_sequences_are_outgoing_text() -> None:
    r = req("List three colours.", deadline_ms=3000, stop=("bob@example.com", "\n\n"))
    d = decide(r, est(), default_policy())
    assert d.target is Target.LOCAL and "privacy.pii" in d.rules_fired
    d = decide(r, est(), parse_policy(REDACT))
    assert d.target is Target.CLOUD_REDACTED
    assert d.redacted_stop == ("[EMAIL_1]", "\n\n")
    assert d.redacted_prompt == "List three colours."


def test_cascade_offers_escalation_only_where_privacy_allows() -> None:
    policy = parse_policy("[quality.cascade]\nenabled = true\n")
    assert decide(req(), est(), policy).escalate_to is Target.CLOUD
    assert decide(req("x a@b.io"), est(), policy).escalate_to is None
    assert decide(req(), est(), default_policy()).escalate_to is None


def test_cascade_to_the_redacted_handoff_carries_it() -> None:
    policy = parse_policy(REDACT + "[quality.cascade]\nenabled = true\n")
    d = decide(req("Reply to a@b.io please"), est(), policy)
    assert d.target is Target.LOCAL and d.escalate_to is Target.CLOUD_REDACTED
    assert d.redacted_prompt == "Reply to [EMAIL_1] please"
    assert "privacy.redaction" not in d.rules_fired


def test_truncated_left_out_item_with_a_code_blocks_the_handoff() -> None:
    # The daemon's retrieval cut the note: a short fragment with the code remains.
    note = ContextRef(
        "n9", "personal", "Gym locker\nMy gym locker code is Pelican-4471; ask Tobias"
    )
    prompt = "[note | Gym locker] …code is Pelican-4471…\n\nWhich gym locker is mine?"
    d = decide(req(prompt, deadline_ms=3000, context=(note,)), est(), parse_policy(REDACT))
    assert d.target is Target.LOCAL


def test_daemon_style_context_line_is_scrubbed() -> None:
    note = ContextRef(
        "n9", "personal", "Gym locker\nMy gym locker code is Pelican-4471; ask Tobias"
    )
    prompt = (
        "Context:\n[note 2026-11-20 | Gym locker] My gym locker code is Pelican-4471; ask Tobias"
        "\n\nWhich gym locker is mine?"
    )
    d = decide(req(prompt, deadline_ms=3000, context=(note,)), est(), parse_policy(REDACT))
    assert d.target is Target.CLOUD_REDACTED
    assert d.redacted_prompt is not None and "Pelican" not in d.redacted_prompt
    assert "Tobias" not in d.redacted_prompt
    assert d.redacted_prompt.endswith("Which gym locker is mine?")


@pytest.mark.parametrize(
    ("prompt", "hit"),
    [
        ("Please do it Step by step.", True),
        ("step\nby   step", True),
        ("a step by steps", False),
        ("footstep by step", False),
        ("step by", False),
        ("prove it", True),
        ("improve it", False),
        ("proven", False),
    ],
)
def test_quality_keywords_are_whole_words(prompt: str, hit: bool) -> None:
    policy = parse_policy('[quality]\nprefer_cloud_keywords = ["step by step", "prove"]\n')
    d = decide(req(prompt, max_tokens=10), est(), policy)
    assert ("quality.prefer_cloud" in d.rules_fired) is hit


def test_dead_local_estimate_sends_allowed_requests_to_the_cloud() -> None:
    d = decide(req(), est(local_tokens_per_s=0.0), default_policy())
    assert d.target is Target.CLOUD
    d = decide(req("mail a@b.io"), est(local_tokens_per_s=0.0), default_policy())
    assert d.target is Target.LOCAL  # privacy still wins


def test_deadline_outranks_cloud_preferred_when_only_local_meets_it() -> None:
    # Local: 200 ms + 16 tokens at 50 tok/s = 520 ms; cloud: 2000 ms + 160 ms.
    slow_cloud = est(cloud_ttft_ms=2000.0)
    tight = req(max_tokens=16, preference=Preference.CLOUD_PREFERRED, deadline_ms=1000)
    d = decide(tight, slow_cloud, default_policy())
    assert d.target is Target.LOCAL
    assert "latency.cloud_misses_deadline" in d.rules_fired
    assert "preference.cloud_preferred" not in d.rules_fired
    # With room for both, the preference wins again.
    roomy = req(max_tokens=16, preference=Preference.CLOUD_PREFERRED, deadline_ms=10_000)
    assert decide(roomy, slow_cloud, default_policy()).target is Target.CLOUD
    # When neither meets it, the preference stands (no local option is better).
    hopeless = req(max_tokens=16, preference=Preference.CLOUD_PREFERRED, deadline_ms=100)
    assert decide(hopeless, slow_cloud, default_policy()).target is Target.CLOUD
