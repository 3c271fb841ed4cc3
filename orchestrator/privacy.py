"""PII detection and reversible redaction, in pure Python (stdlib ``re`` only).

Detected kinds: see ``orchestrator.kinds.PII_KINDS``. Numbers that carry a checksum
are verified (credit cards by Luhn, IBANs by ISO 7064 mod 97) so order numbers and
timestamps do not count as PII. Contact names come from the user's own contacts.

``redact`` replaces every detected value with a placeholder such as ``[EMAIL_1]``
(the same value always gets the same placeholder); ``restore`` puts the originals
back into the cloud's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class PiiSpan:
    """One detected value: ``text[start:end]`` is of PII kind ``kind``."""

    start: int
    end: int
    kind: str


_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# International (+CC ...) or parenthesised/dashed national forms; 7-15 digits in all.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|0[1-9]\d{0,3}[ .-]\d{2,4}(?:[ .-]\d{2,4}){1,3}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r")(?![\w])"
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")
_NATIONAL_ID = re.compile(
    r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"  # US SSN
    r"|(?<![\w])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])"  # UK National Insurance number
)
_STREET_WORDS = (
    r"Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?"
    r"|Court|Ct\.?|Way|Place|Pl\.?|Terrace|Square|Sq\.?|Crescent|Close|Parkway"
)
_STREET = re.compile(
    r"(?<![\w])\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'-]+\s+){1,3}(?:" + _STREET_WORDS + r")(?![\w])"
    r"|(?<![\w])[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring)"
    r"\s+\d{1,4}[a-z]?(?![\w])"
    r"|(?<![\w])\d{1,4}(?:bis|ter)?,?\s+(?:rue|avenue|boulevard|place|chemin|impasse|allée)"
    r"\s+(?:(?:de|du|des|la|le|l'|d')\s*)*[A-ZÉÈ][\w'-]+(?:\s+[A-ZÉÈ][\w'-]+){0,2}"
)
_NON_DIGIT = re.compile(r"\D")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_DIGIT_GROUP = re.compile(r"\d+")


def _card_in(raw: str) -> tuple[int, int] | None:
    """Longest run of whole digit groups in ``raw`` that is a Luhn-valid card number.

    The pattern is greedy, so "4111 1111 1111 1111 221" must still yield the card.
    """
    digits = _NON_DIGIT.sub("", raw)
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return 0, len(raw)
    groups = [(g.start(), g.end()) for g in _DIGIT_GROUP.finditer(raw)]
    best: tuple[int, int] | None = None
    for i in range(len(groups)):
        n = 0
        for j in range(i, len(groups)):
            n += groups[j][1] - groups[j][0]
            if n > 19:
                break
            a, b = groups[i][0], groups[j][1]
            if n >= 13 and (best is None or b - a > best[1] - best[0]):
                if _luhn_ok(_NON_DIGIT.sub("", raw[a:b])):
                    best = (a, b)
    return best


def _iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(ch, 36)) for ch in moved)
    return int(num) % 97 == 1


def _phone_ok(raw: str) -> bool:
    n = len(_NON_DIGIT.sub("", raw))
    return 7 <= n <= 15


@lru_cache(maxsize=256)
def _contact_patterns(names: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(full names, case-insensitive; single name parts, capitalised only)."""
    full = sorted({n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True)
    parts = sorted(
        {p for n in full for p in n.split() if len(p) >= 3 and p[0].isupper()} - set(full),
        key=len,
        reverse=True,
    )
    full_re = (
        re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in full) + r")(?![\w])", re.I)
        if full
        else None
    )
    part_re = (
        re.compile(r"(?<![\w])(?:" + "|".join(re.escape(p) for p in parts) + r")(?![\w])")
        if parts
        else None
    )
    return full_re, part_re


def detect_pii(text: str, contact_names: Sequence[str] = ()) -> list[PiiSpan]:
    """All PII spans in ``text``, sorted by position; overlaps resolved longest-first."""
    found: list[PiiSpan] = []
    add = found.append
    for m in _EMAIL.finditer(text):
        add(PiiSpan(m.start(), m.end(), "email"))
    if any(ch.isdigit() for ch in text):
        iban_shaped: list[tuple[int, int]] = []
        for m in _IBAN.finditer(text):
            iban_shaped.append(m.span())
            if _iban_ok(m.group()):
                add(PiiSpan(m.start(), m.end(), "iban"))
        for m in _CARD.finditer(text):
            card = _card_in(m.group())
            if card is not None:
                add(PiiSpan(m.start() + card[0], m.start() + card[1], "credit_card"))
        for m in _NATIONAL_ID.finditer(text):
            add(PiiSpan(m.start(), m.end(), "national_id"))
        for m in _PHONE.finditer(text):
            # Digit groups inside an IBAN-shaped string (even a mistyped one) are not
            # a phone number.
            inside = any(a <= m.start() < b for a, b in iban_shaped)
            if not inside and _phone_ok(m.group()):
                add(PiiSpan(m.start(), m.end(), "phone"))
        for m in _STREET.finditer(text):
            add(PiiSpan(m.start(), m.end(), "street_address"))
    if contact_names:
        full_re, part_re = _contact_patterns(tuple(contact_names))
        for rx in (full_re, part_re):
            if rx is not None:
                for m in rx.finditer(text):
                    add(PiiSpan(m.start(), m.end(), "contact_name"))
    return _resolve_overlaps(found)


# On overlaps, stronger evidence wins (checksummed numbers first), then longer spans.
_PRIORITY = {
    "iban": 0,
    "credit_card": 1,
    "email": 2,
    "national_id": 3,
    "phone": 4,
    "street_address": 5,
    "contact_name": 6,
}


def _resolve_overlaps(spans: list[PiiSpan]) -> list[PiiSpan]:
    if len(spans) <= 1:
        return spans
    ranked = sorted(spans, key=lambda s: (_PRIORITY.get(s.kind, 9), s.start - s.end, s.start))
    kept: list[PiiSpan] = []
    for s in ranked:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    kept.sort()
    return kept


def redact(
    text: str,
    spans: Iterable[PiiSpan],
    restore_map: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Replace each span's value (every occurrence of it) by a placeholder.

    Returns ``(redacted_text, restore_map)`` with ``placeholder -> original``. Pass the
    map of an earlier call to keep placeholders consistent across several texts.
    """
    (out,), mapping = redact_many([(text, spans)], restore_map)
    return out, mapping


def redact_many(
    items: Sequence[tuple[str, Iterable[PiiSpan]]],
    restore_map: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Redact several texts together: a value detected in one is replaced in all."""
    mapping: dict[str, str] = {} if restore_map is None else restore_map
    kinds: dict[str, str] = {}
    for text, spans in items:
        for s in spans:
            value = text[s.start : s.end]
            if value and value not in kinds:
                kinds[value] = s.kind
    by_value = {v: k for k, v in mapping.items()}
    if not kinds and not by_value:
        return [t for t, _ in items], mapping
    counters: dict[str, int] = {}
    texts = [t for t, _ in items]
    for value, kind in kinds.items():
        if value in by_value:
            continue
        tag = kind.upper()
        n = counters.get(tag, 0) + 1
        ph = f"[{tag}_{n}]"
        while ph in mapping or any(ph in t for t in texts):
            n += 1
            ph = f"[{tag}_{n}]"
        counters[tag] = n
        mapping[ph] = value
        by_value[value] = ph
    rx = re.compile("|".join(re.escape(v) for v in sorted(by_value, key=len, reverse=True)))
    return [rx.sub(lambda m: by_value[m.group()], t) for t in texts], mapping


def restore(text: str, restore_map: dict[str, str]) -> str:
    """Put the original values back where the placeholders of ``restore_map`` appear."""
    if not restore_map:
        return text
    rx = re.compile("|".join(re.escape(p) for p in sorted(restore_map, key=len, reverse=True)))
    return rx.sub(lambda m: restore_map[m.group()], text)
