"""PII detection in pure Python: candidates first, then anchored checks.

A full regex scan costs tens of microseconds per KB in CPython, so the detector scans
as little as it can: number kinds are tried only at digit clusters
(``pii_numbers``), e-mail addresses only around ``@``, contact names by substring and
word-set lookups (``pii_contacts``). Overlapping findings are resolved here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.pii_contacts import find_contacts
from orchestrator.pii_numbers import Found, find_numbers


@dataclass(frozen=True)
class PiiSpan:
    """One detected value: ``text[start:end]`` is of PII kind ``kind``."""

    kind: str
    start: int
    end: int


EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# International (+CC ...) or parenthesised/dashed national forms; 7-15 digits in all.


def _emails(text: str, out: list[PiiSpan]) -> None:
    i = text.find("@")
    done = 0
    n = len(text)
    while i != -1:
        m = EMAIL.search(text, max(done, i - 64), min(n, i + 256))
        if m and m.start() <= i < m.end():
            out.append(PiiSpan("email", m.start(), m.end()))
            done = m.end()
            i = text.find("@", done)
        else:
            i = text.find("@", i + 1)


def detect_pii(text: str, contact_names: Sequence[str] = ()) -> list[PiiSpan]:
    """All PII spans in ``text``, sorted by position; overlaps resolved (see ``_PRIORITY``)."""
    found: list[PiiSpan] = []
    if "@" in text:
        _emails(text, found)
    if any(d in text for d in "0123456789"):
        numbers: list[Found] = []
        find_numbers(text, numbers)
        found.extend(PiiSpan(kind, a, b) for a, b, kind in numbers)
    if contact_names:
        skip = {i for s in found if s.kind == "email" for i in range(s.start, s.end)}
        for a, b in find_contacts(text, tuple(contact_names), skip):
            found.append(PiiSpan("contact_name", a, b))
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
    """Keep non-overlapping spans; within each group of overlapping ones, by priority."""
    if len(spans) <= 1:
        return spans
    spans.sort(key=_span_key)
    out: list[PiiSpan] = []
    group = [spans[0]]
    group_end = spans[0].end
    for s in spans[1:]:
        if s.start < group_end:
            group.append(s)
            group_end = max(group_end, s.end)
            continue
        out.extend(group if len(group) == 1 else _best_of(group))
        group = [s]
        group_end = s.end
    out.extend(group if len(group) == 1 else _best_of(group))
    return out


def _best_of(group: list[PiiSpan]) -> list[PiiSpan]:
    ranked = sorted(group, key=lambda s: (_PRIORITY.get(s.kind, 9), s.start - s.end, s.start))
    kept: list[PiiSpan] = []
    for s in ranked:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    kept.sort(key=_span_key)
    return kept


def _span_key(s: PiiSpan) -> tuple[int, int]:
    return s.start, s.end
