"""What the cloud may see, at the routing brain: names without cues, contacts in any
spelling, phone numbers with a 00 prefix, the JSON schema's strings, and values of the
user's sensitive store items (see also tests/pipeline/test_egress.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from orchestrator.kinds import PII_KINDS
from orchestrator.policy import parse_policy
from orchestrator.privacy import detect_pii, redact, restore
from orchestrator.router import decide
from orchestrator.stored_values import find_stored
from orchestrator.types import Estimates, Preference, RouteRequest, StoredValue, Target

ROOT = Path(__file__).resolve().parents[2]
EST = Estimates(local_ttft_ms=150, local_tokens_per_s=20, cloud_ttft_ms=300, cloud_tokens_per_s=60, cloud_available=True)
MAX_REDACTION = parse_policy(
    "[privacy.redaction]\nenabled = true\nkinds = [{}]\n".format(", ".join(f'"{k}"' for k in PII_KINDS)), "<t>"
)
PERSONAL_LEFT_OUT = parse_policy(
    "[privacy.redaction]\nenabled = true\nkinds = [{}]\nsensitivities = [\"personal\"]\n".format(
        ", ".join(f'"{k}"' for k in PII_KINDS)
    ),
    "<t>",
)


def names_in(text: str, contacts: tuple[str, ...] = ()) -> list[str]:
    return [text[s.start : s.end] for s in detect_pii(text, contacts) if s.kind in ("person_name", "contact_name")]


def ask(prompt: str, **kw: object) -> RouteRequest:
    return RouteRequest(prompt=prompt, prompt_tokens=10, max_tokens=16, preference=Preference.CLOUD_PREFERRED, **kw)  # type: ignore[arg-type]


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Is Okonkwo joining?", ["Okonkwo"]),
        ("Hope said the report is ready.", ["Hope"]),
        ("Fatou and Mamadou will host the party.", ["Fatou", "Mamadou"]),
        ("Send Mehmet Yilmaz the slides.", ["Mehmet Yilmaz"]),  # not "Send Mehmet Yilmaz"
        ("Cheyenne Running Bear gave the keynote.", ["Cheyenne Running Bear"]),
        ("Hiroshi's flight lands at six.", ["Hiroshi"]),
        ("tell mehmet the meeting moved", ["mehmet"]),
        ("Ask Dr. Ingrid Voskuijlen for the results.", ["Ingrid Voskuijlen"]),
    ],
)
def test_names_without_cues_are_found(text: str, names: list[str]) -> None:
    assert names_in(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "Hope you are well.",
        "Will the train be on time?",
        "Mark the invoice as paid.",
        "We stayed in Rome and Paris last April.",
        "New York and San Francisco are expensive cities.",
        "Can you translate this paragraph into German?",
        "The Eiffel Tower is closed on Tuesday.",
        "What is the capital of France?",
        "Explain the difference between TCP and UDP.",
    ],
)
def test_everyday_capitalised_words_are_not_names(text: str) -> None:
    assert names_in(text) == []


@pytest.mark.parametrize(
    "text",
    ["did belvedere kask answer?", "BELVEDERE-KASK sent it", "ask belvedere  kask", "Liisa Belvedere Kask is here"],
)
def test_a_contacts_double_surname_matches_in_any_case_and_spacing(text: str) -> None:
    found = [s for s in detect_pii(text, ("Liisa Belvedere-Kask",)) if s.kind == "contact_name"]
    covered = "".join(text[s.start : s.end] for s in found).lower()
    assert "belvedere" in covered and "kask" in covered, (text, found)


def _names_eval():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("names_eval", ROOT / "benchmarks" / "names_eval.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["names_eval"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6"])
def test_person_name_recall_on_the_held_out_sets(which: str) -> None:
    """Recall first: redaction is reversible, a missed name leaks (see
    benchmarks/names/ and benchmarks/names_eval.py for the sets and the figures)."""
    ev = _names_eval()
    score = ev.score(ev.load(ev.SETS[which]))
    assert score.recall >= 0.98, score.misses
    assert score.precision >= 0.9, score.false_alarms


# -- phone numbers with the 00 international prefix ------------------------------------------


def test_a_00_prefixed_number_is_one_value_and_restores_as_written() -> None:
    text = "My number is 0044 7700 900417."
    spans = detect_pii(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [("phone", "0044 7700 900417")]
    redacted, mapping = redact(text, spans)
    assert redacted == "My number is [PHONE_1]." and restore(redacted, mapping) == text
    both = "Call 0044 7700 900417 or +44 7700 900417."
    redacted, mapping = redact(both, detect_pii(both))
    assert redacted == "Call [PHONE_1] or [PHONE_1]." and "0044 +44" not in restore(redacted, mapping)


# -- the JSON schema's strings -------------------------------------------------------------------


def test_pii_in_schema_strings_is_in_the_route_and_redacted_in_the_hand_off() -> None:
    strings = ("type", "object", "enum", "Alice Martin", "bob@example.com", "description", "PIN for DE89 3704 0044 0532 0130 00")
    plain = decide(ask("Fill in the form.", schema_strings=strings), EST, parse_policy("", "<t>"))
    assert plain.target is Target.LOCAL and {"email", "iban"} <= set(plain.pii_kinds)
    d = decide(ask("Fill in the form.", schema_strings=strings), EST, MAX_REDACTION)
    assert d.target is Target.CLOUD_REDACTED
    assert {"email", "iban", "person_name"} <= set(d.pii_kinds)
    out = d.redacted_schema_strings
    assert len(out) == len(strings) and out[:3] == ("type", "object", "enum")
    assert not any(v in " ".join(out) for v in ("Alice", "Martin", "bob@example.com", "DE89"))
    assert restore(" ".join(out), d.restore) == " ".join(strings)


# -- values of sensitive store items ----------------------------------------------------------------

VALUES = (StoredValue("7391", "secret"), StoredValue("Qz8!vRt2", "secret"), StoredValue("2026-FC-0193", "personal"))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("my pin is 7391", "7391"),
        ("is QZ8!VRT2 strong?", "QZ8!VRT2"),
        ("is qz8vrt2 strong?", "qz8vrt2"),
        ("case 2026 fc 0193 please", "2026 fc 0193"),
        ("case 2026FC0193", "2026FC0193"),
    ],
)
def test_stored_values_are_found_as_written_and_normalised(text: str, found: str) -> None:
    assert [text[s.start : s.end] for s, _ in find_stored(text, VALUES)] == [found]


def test_stored_values_are_not_found_inside_other_numbers() -> None:
    assert find_stored("order 73910 and 17391", VALUES) == []


def test_a_secret_value_keeps_the_request_local_under_every_policy() -> None:
    for policy in (parse_policy("", "<t>"), MAX_REDACTION, PERSONAL_LEFT_OUT):
        d = decide(ask("Is 7391 a safe PIN?", stored_values=VALUES[:1]), EST, policy)
        assert d.target is Target.LOCAL and "privacy.stored_value" in d.rules_fired, d.explanation


def test_a_personal_value_is_replaced_when_personal_items_may_be_left_out() -> None:
    req = ask("Summarise case 2026-FC-0193.", stored_values=VALUES[2:])
    assert decide(req, EST, MAX_REDACTION).target is Target.LOCAL
    d = decide(req, EST, PERSONAL_LEFT_OUT)
    assert d.target is Target.CLOUD_REDACTED and d.redacted_prompt is not None
    assert "0193" not in d.redacted_prompt and restore(d.redacted_prompt, d.restore) == req.prompt


def test_a_stored_value_that_is_pii_of_a_kind_follows_that_kinds_rules() -> None:
    """A contact's phone number typed in is a phone number: redacted as one, not kept
    local as a value of a personal item."""
    req = ask("Call +49 30 901820 about the party.", stored_values=(StoredValue("901820", "personal"),))
    d = decide(req, EST, MAX_REDACTION)
    assert d.target is Target.CLOUD_REDACTED and "privacy.stored_value" not in d.rules_fired
    assert d.redacted_prompt == "Call [PHONE_1] about the party."
