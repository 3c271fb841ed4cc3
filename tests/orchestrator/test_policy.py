"""Policy loading: defaults, the full format, and an error for every user mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import PolicyError
from orchestrator.policy import default_policy, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]


def test_default_policy_keeps_private_data_local() -> None:
    p = default_policy()
    assert set(p.privacy.local_sensitivities) == {"personal", "secret"}
    assert "email" in p.privacy.local_pii and not p.privacy.redaction.enabled
    assert p.default_deadline_ms > 0
    assert p.cloud_price_in_per_1k == 0.0 and p.cloud_price_out_per_1k == 0.0
    assert p.rules == ()


def test_empty_file_is_the_default() -> None:
    p = parse_policy("", "empty.toml")
    assert p.privacy == default_policy().privacy and p.source == "empty.toml"


def test_full_format_parses() -> None:
    p = parse_policy(
        """
version = 1
[privacy]
local_sensitivities = ["secret"]
local_pii = ["email", "credit_card"]
local_keywords = ["diagnosis", "bank account"]
[privacy.redaction]
enabled = true
kinds = ["email"]
sensitivities = ["personal"]
[latency]
default_deadline_ms = 8000
margin = 0.5
ewma_alpha = 0.3
local = { ttft_ms = 100, ms_per_prompt_token = 0.5, tokens_per_s = 30 }
cloud = { ttft_ms = 250, ms_per_prompt_token = 0.01, tokens_per_s = 90 }
[cost]
currency = "EUR"
cloud_price_in_per_1k = 0.0005
cloud_price_out_per_1k = 0.0015
daily_budget = 1
monthly_budget = 20.5
on_budget_exhausted = "reject"
local_energy_j_per_token = 0.4
energy_price_per_kwh = 0.3
[quality]
prefer_cloud_prompt_tokens_over = 3000
prefer_cloud_max_tokens_over = 0
prefer_cloud_keywords = ["prove"]
[quality.cascade]
enabled = true
first_tokens = 8
min_mean_prob = 0.4
[weights]
latency = 2
cost = 0.5
quality = 1
[[rules]]
name = "work-hours-mail"
action = "cloud_redacted"
match = { app_id = ["mail"], hours = "09:00-17:30", pii = ["email"] }
""",
        "full.toml",
    )
    assert p.default_deadline_ms == 8000 and p.latency.local.tokens_per_s == 30.0
    assert p.cloud_price_out_per_1k == 0.0015 and p.cost.daily_budget == 1.0
    assert p.rules[0].match.hours == (9 * 60, 17 * 60 + 30)
    assert p.rules[0].match.pii == ("email",)
    assert p.weights.latency == 2.0 and p.quality.cascade.first_tokens == 8


def test_shipped_example_is_valid() -> None:
    p = load_policy(ROOT / "examples" / "policy.toml")
    assert p.rules and p.source.endswith("policy.toml")


ERRORS = [
    # (toml, key, fragment of expected)
    ("colour = 1", "colour", "unknown key"),
    ("[privacy]\nlocal_pi = []", "privacy.local_pi", "unknown key"),
    ("[latency.local]\nttft = 1", "latency.local.ttft", "unknown key"),
    ("[privacy]\nlocal_pii = 'email'", "privacy.local_pii", "an array of strings, got a string"),
    ("[privacy]\nlocal_pii = ['emial']", "privacy.local_pii[0]", "one of email"),
    (
        "[privacy]\nlocal_sensitivities = ['private']",
        "privacy.local_sensitivities[0]",
        "one of public",
    ),
    ("[privacy.redaction]\nenabled = 'yes'", "privacy.redaction.enabled", "true or false"),
    (
        "[privacy.redaction]\nsensitivities = ['secret']",
        "privacy.redaction.sensitivities[0]",
        "one of public, personal",
    ),
    ("[privacy.redaction]\nenabled = true\nkinds = []", "privacy.redaction.kinds", "at least one"),
    ("[latency]\ndefault_deadline_ms = 0", "latency.default_deadline_ms", ">= 1"),
    ("[latency]\ndefault_deadline_ms = 1.5", "latency.default_deadline_ms", "an integer"),
    ("[latency]\nmargin = -0.1", "latency.margin", ">= 0"),
    ("[latency]\newma_alpha = 0", "latency.ewma_alpha", "> 0"),
    ("[latency.cloud]\ntokens_per_s = 0", "latency.cloud.tokens_per_s", "> 0"),
    ("[cost]\ncloud_price_in_per_1k = -0.5", "cost.cloud_price_in_per_1k", ">= 0"),
    (
        "[cost]\ncloud_price_out_per_1k = true",
        "cost.cloud_price_out_per_1k",
        "a number, got a boolean",
    ),
    ("[cost]\ndaily_budget = -1", "cost.daily_budget", ">= 0"),
    ("[cost]\non_budget_exhausted = 'queue'", "cost.on_budget_exhausted", "one of local, reject"),
    ("[cost]\nenergy_price_per_kwh = nan", "cost.energy_price_per_kwh", "a finite number"),
    ("[cost]\ndaily_budget = inf", "cost.daily_budget", "a finite number"),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { marked_personal = true, sensitivity = ['public'] }",
        "rules[0].match.sensitivity",
        "never public",
    ),
    ("[quality.cascade]\nmin_mean_prob = 2", "quality.cascade.min_mean_prob", "<= 1"),
    ("[weights]\nlatency = 0\ncost = 0\nquality = 0", "weights", "at least one weight"),
    ("privacy = 3", "privacy", "a table"),
    ("version = 2", "version", "<= 1"),
    ("x = ", "<toml>", "valid TOML"),
    ("rules = [1]", "rules", "array of tables"),
    ("[[rules]]\naction = 'local'", "rules[0].name", "non-empty string"),
    ("[[rules]]\nname = 'a'", "rules[0].action", "one of local"),
    ("[[rules]]\nname = 'a'\naction = 'cloudy'", "rules[0].action", "one of local"),
    ("[[rules]]\nname = 'a'\naction = 'local'\nwhen = 1", "rules[0].when", "unknown key"),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { pii = ['ssn'] }",
        "rules[0].match.pii[0]",
        "one of email",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { pii = [] }",
        "rules[0].match.pii",
        "never match",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { size = 1 }",
        "rules[0].match.size",
        "unknown key",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { min_max_tokens = 9, max_max_tokens = 3 }",
        "rules[0].match.min_max_tokens",
        "never match",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { hours = '9-17' }",
        "rules[0].match.hours",
        "HH:MM-HH:MM",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch = { hours = '09:00-09:00' }",
        "rules[0].match.hours",
        "never matches",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\n[[rules]]\nname = 'b'\naction = 'cloud'",
        "rules[1]",
        "never matches",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'local'\nmatch={labels=['x']}\n[[rules]]\nname = 'a'\naction = 'cloud'",
        "rules[1].name",
        "unique",
    ),
    ("[[rules]]\nname = 'a'\naction = 'cloud_redacted'", "rules[0].action", "redaction.enabled"),
    (
        (
            "[[rules]]\nname='a'\naction='local'\nmatch={app_id=['m']}\n"
            "[[rules]]\nname='b'\naction='reject'\nmatch={app_id=['m']}"
        ),
        "rules[1].match",
        "same match",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'cloud'\nmatch = { pii = ['email'] }",
        "rules[0].action",
        "never applies",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'cloud'\nmatch = { sensitivity = ['secret'] }",
        "rules[0].action",
        "never applies",
    ),
    (
        "[[rules]]\nname = 'a'\naction = 'cloud'\nmatch = { marked_personal = true }",
        "rules[0].action",
        "never applies",
    ),
    (
        "[privacy]\nlocal_keywords = ['salary']\n[[rules]]\nname = 'a'\naction = 'cloud'\nmatch = { keywords = ['Salary'] }",
        "rules[0].action",
        "never applies",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "expected"), ERRORS, ids=[e[1] + ":" + e[2] for e in ERRORS]
)
def test_every_mistake_names_file_key_and_expectation(text: str, key: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "my.toml")
    err = info.value
    assert (err.file, err.key) == ("my.toml", key), str(err)
    assert expected in err.expected, str(err)
    assert str(err).startswith(f"my.toml: {key}: ")


def test_rules_that_can_apply_are_accepted() -> None:
    # The cloud action is reachable: phone is not kept local, or email is redactable.
    parse_policy(
        "[privacy]\nlocal_pii = ['email']\n[[rules]]\nname='a'\naction='cloud'\nmatch={pii=['phone']}"
    )
    parse_policy(
        "[privacy.redaction]\nenabled=true\nkinds=['email']\n"
        "[[rules]]\nname='a'\naction='cloud'\nmatch={pii=['email']}"
    )


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.toml")
    assert info.value.key == "<file>" and info.value.file.endswith("nope.toml")


def test_load_policy_reads_file(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[latency]\ndefault_deadline_ms = 1234\n", encoding="utf-8")
    p = load_policy(f)
    assert p.default_deadline_ms == 1234 and p.source == str(f)
