"""PII detection (kinds, checksums, contacts) and reversible redaction."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.pii_numbers import iban_ok, luhn_ok
from orchestrator.privacy import PiiSpan, detect_pii, redact, redact_many, restore


def kinds_and_values(text: str, contacts: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in detect_pii(text, contacts)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+x@mail.example.org today", [("email", "jane.doe+x@mail.example.org")]),
        ("call +44 20 7946 0958 now", [("phone", "+44 20 7946 0958")]),
        ("call (555) 123-4567", [("phone", "(555) 123-4567")]),
        ("call 555-123-4567", [("phone", "555-123-4567")]),
        ("card 4111 1111 1111 1111 ok", [("credit_card", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1112 bad luhn", []),
        ("IBAN DE89 3704 0044 0532 0130 00.", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("IBAN DE88 3704 0044 0532 0130 00 bad check", []),
        ("ssn 123-45-6789", [("national_id", "123-45-6789")]),
        ("ssn 000-45-6789 is invalid", []),
        ("NI AB 12 34 56 C", [("national_id", "AB 12 34 56 C")]),
        ("at 221 Baker Street in London", [("street_address", "221 Baker Street")]),
        ("wohnt Hauptstraße 12 in Berlin", [("street_address", "Hauptstraße 12")]),
        ("on 2024-01-15 at 10:30, order 1234567890123, version 3.11.7", []),
        ("price $1,299.99 for 3 items", []),
        ("call 1-800-555-0199 now", [("phone", "1-800-555-0199")]),
        ("text 07700 900123", [("phone", "07700 900123")]),
        ("tracking 9400 1000 0000 0000 0000 00", []),
        (
            "card 4111 1111 1111 1111 221 Baker Street",
            [("credit_card", "4111 1111 1111 1111"), ("street_address", "221 Baker Street")],
        ),
        (
            "at Flat 3, 27 Old Gloucester Street",
            [("street_address", "Flat 3, 27 Old Gloucester Street")],
        ),
        ("go 3 Blocks Street-wise", []),
        ("my passport number is X12345678.", [("national_id", "X12345678")]),
        ("order X12345678 shipped", []),
        ("8 rue de la Paix, Paris", [("street_address", "8 rue de la Paix")]),
        ("IBAN: NL91ABNA0417164300", [("iban", "NL91ABNA0417164300")]),
    ],
)
def test_detects_kinds(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds_and_values(text) == expected


def test_contact_names_full_names_and_parts() -> None:
    text = "Ask alice martin, then Martin and martin; will and Will too"
    got = kinds_and_values(text, ("Alice Martin", "Will Turner"))
    assert got == [
        ("contact_name", "alice martin"),
        ("contact_name", "Martin"),
        ("contact_name", "martin"),
        ("contact_name", "Will"),  # an everyday word: only capitalised
    ]


def test_contact_part_followed_by_another_surname_is_someone_else() -> None:
    got = kinds_and_values("Bob Dylan and Jones Street, but Bob I trust", ("Bob Jones",))
    assert [v for v in got if v[0] == "contact_name"] == [("contact_name", "Bob")]
    # the other people are names all the same (recall first), never half of one
    assert ("person_name", "Bob Dylan") in got
    assert kinds_and_values("Bob Jones", ("Bob Jones",)) == [("contact_name", "Bob Jones")]


def test_many_contacts_use_the_word_set_path() -> None:
    names = tuple(f"Person{i} Family{i}" for i in range(100)) + ("Dana Okafor",)
    got = kinds_and_values("Lunch with dana okafor and Family7.", names)
    assert got == [("contact_name", "dana okafor"), ("contact_name", "Family7")]


def test_overlap_keeps_stronger_kind() -> None:
    text = "mail Alice.Martin@example.com"
    assert kinds_and_values(text, ("Alice Martin", "Alice")) == [
        ("email", "Alice.Martin@example.com")
    ]


def test_spans_sorted_and_within_text() -> None:
    text = "a@b.io 4111111111111111 +33 1 23 45 67 89"
    spans = detect_pii(text)
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    assert [s.kind for s in spans] == ["email", "credit_card", "phone"]
    assert all(0 <= s.start < s.end <= len(text) for s in spans)


def test_redact_roundtrip_and_same_value_same_placeholder() -> None:
    text = "a@b.io wrote to c@d.io and a@b.io again"
    out, mapping = redact(text, detect_pii(text))
    assert out == "[EMAIL_1] wrote to [EMAIL_2] and [EMAIL_1] again"
    assert restore(out, mapping) == text


def test_redact_many_shares_placeholders_and_avoids_collisions() -> None:
    texts = [("x a@b.io [EMAIL_1]", [PiiSpan("email", 2, 8)]), ("also a@b.io", [])]
    out, mapping = redact_many(texts)
    assert out == ["x [EMAIL_2] [EMAIL_1]", "also [EMAIL_2]"]
    assert mapping == {"[EMAIL_2]": "a@b.io"}


def test_restore_without_map_is_identity() -> None:
    assert restore("nothing [EMAIL_1]", {}) == "nothing [EMAIL_1]"


def _luhn_reference(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_luhn_matches_the_textbook_definition(digits: str) -> None:
    assert luhn_ok(digits) is _luhn_reference(digits)


def test_luhn_rejects_non_digits() -> None:
    assert not luhn_ok("") and not luhn_ok("4111 1111") and not luhn_ok("٤١١١")


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82 WEST 1234 5698 7654 32", True),
        ("FR1420041010050500013M02606", True),
        ("gb82 west 1234 5698 7654 32", True),
        ("DE88 3704 0044 0532 0130 00", False),
        ("DE89 3704", False),
        ("DE89-3704-0044-0532-0130-00", False),
    ],
)
def test_iban_checksum(iban: str, ok: bool) -> None:
    assert iban_ok(iban) is ok


# -- typed-in values a careful user writes: formats, case, spacing, names outside contacts --

PLACEHOLDER_RE = re.compile(r"\[[A-Z_]+_\d+\]")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("[STREET_ADDRESS_1], Harrowgate HG2 9QT", "postcode", "HG2 9QT"),
        ("Pay into nl91 abna 0417 1643 00 by Monday.", "iban", "nl91 abna 0417 1643 00"),
        ("I live at 18 wrenfield crescent, near the park", "street_address", "18 wrenfield crescent"),
        ("Please email Halvard Quennell the draft.", "person_name", "Halvard Quennell"),
        ("Ask Dr. Ingrid Voskuijlen for the results.", "person_name", "Ingrid Voskuijlen"),
        ("Our manager, Dana Okafor, will coordinate.", "person_name", "Dana Okafor"),
        ("Kind regards,\nTheodora Lindgren", "person_name", "Theodora Lindgren"),
        ("From: Rosalind Achebe <r.achebe@example.net>", "person_name", "Rosalind Achebe"),
        ("Office: 1012 AB Amsterdam", "postcode", "1012 AB"),
        ("Lindenstraße 42, 10115 Berlin", "postcode", "10115"),
        ("12 rue de la Paix, 75002 Paris", "postcode", "75002"),
        ("Springfield, IL 62704", "postcode", "62704"),
        ("Kerkstraat 5, 3511 LX Utrecht", "street_address", "Kerkstraat 5"),
        ("My number is 415 555 2671.", "phone", "415 555 2671"),
        ("or just 7700 900417", "phone", "7700 900417"),
    ],
)
def test_detects_typed_in_variants(text: str, kind: str, value: str) -> None:
    assert (kind, value) in kinds_and_values(text)


@pytest.mark.parametrize(
    "text",
    [
        "The order 55231 shipped with 12000 items.",
        "We moved 2048 MB of logs in 1500 KB chunks.",
        "It takes 3 more ways to go wrong.",
        "Is Visual Studio faster than Sublime Text?",
        "I flew from New York to San Francisco last week.",
        "Hi Team, the build is green.",
        "Invoice 48213 is overdue by 30 days.",
    ],
)
def test_no_pii_in_look_alikes(text: str) -> None:
    assert kinds_and_values(text) == []


@pytest.mark.parametrize(
    ("text", "placeholders"),
    [
        ("Call +44 7700 900417 or 7700 900417, or 07700 900417.", {"[PHONE_1]": 3}),
        ("DE89370400440532013000 and de89 3704 0044 0532 0130 00", {"[IBAN_1]": 2}),
        ("Halvard Quennell called; later halvard quennell called again.", {"[PERSON_NAME_1]": 2}),
        ("18 Wrenfield Crescent, Harrogate HG29QT; the form says hg2 9qt.", {"[POSTCODE_1]": 2, "[STREET_ADDRESS_1]": 1}),
        ("The SSN is 078-05-1120, on the form as 078 05 1120.", {"[NATIONAL_ID_1]": 2}),
    ],
)
def test_every_spelling_of_a_value_gets_its_placeholder(text: str, placeholders: dict[str, int]) -> None:
    (out,), _ = redact_many([(text, detect_pii(text))])
    for ph, count in placeholders.items():
        assert out.count(ph) == count, out
    assert not any(ch.isdigit() for ch in PLACEHOLDER_RE.sub("", out)), out


def test_a_surname_alone_gets_its_own_placeholder_and_restores_exactly() -> None:
    text = "Please email Halvard Quennell about it; Quennell knows."
    (out,), mapping = redact_many([(text, detect_pii(text))])
    assert "Quennell" not in out and "Halvard" not in out
    assert restore(out, mapping) == text


def test_a_value_in_another_text_is_found_in_its_other_spelling() -> None:
    prompt, context = "Call +44 7700 900417 today.", "Her mobile: 07700 900417."
    (p, c), _ = redact_many([(prompt, detect_pii(prompt)), (context, [])])
    assert "900417" not in p and "900417" not in c, (p, c)
