"""PII detection in pure Python: candidates first, then anchored checks.

A full regex scan costs tens of microseconds per KB in CPython, so the detector scans
as little as it can: number kinds are tried only at digit clusters
(``pii_numbers``), e-mail addresses only around ``@``, contact names by substring and
word-set lookups (``pii_contacts``), other person names by capitalised runs with evidence
(``pii_names``). Overlapping findings are resolved here, and ``same_value_spans``
finds the other spellings of a value already found (``+44 7700 900417`` and
``7700 900417``, an IBAN in lower case, a name in lower case).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.pii_contacts import find_contacts
from orchestrator.pii_names import find_person_names
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


def detect_pii(
    text: str, contact_names: Sequence[str] = (), *, person_names: bool = True
) -> list[PiiSpan]:
    """All PII spans in ``text``, sorted by position; overlaps resolved (see ``_PRIORITY``).

    ``person_names=False`` leaves out names that are not contacts, the expensive part
    (word lists for every capitalised word): the router's quick first look."""
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
    if person_names:
        for a, b in find_person_names(text):
            found.append(PiiSpan("person_name", a, b))
    return _resolve_overlaps(_join_names(found))


def _join_names(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Overlapping name spans become their union (a contact if any of them is one), so
    no part of a name is left out ("Bob" a contact's part inside "Bob Dylan")."""
    names = sorted((s for s in spans if s.kind in _NAME_KINDS), key=_span_key)
    if len(names) <= 1:
        return spans
    joined: list[PiiSpan] = []
    for s in names:
        last = joined[-1] if joined else None
        if last is not None and s.start < last.end:
            kind = "contact_name" if "contact_name" in (last.kind, s.kind) else last.kind
            joined[-1] = PiiSpan(kind, last.start, max(last.end, s.end))
        else:
            joined.append(s)
    return [s for s in spans if s.kind not in _NAME_KINDS] + joined


# -- one value, several spellings --------------------------------------------------------

_NUMBER_KINDS = frozenset({"phone", "credit_card", "iban", "national_id"})
_NAME_KINDS = frozenset({"contact_name", "person_name"})
# Spelled again in another case or spacing (other kinds, e.g. left-out context lines,
# are replaced as written).
_TEXT_KINDS = _NAME_KINDS | {"email", "street_address", "postcode"}
_DIGIT_RUN = re.compile(r"\+?[0-9](?:[0-9 .()/-]*[0-9])?")
_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def canonical(kind: str, value: str) -> str:
    """The identity of a value across spellings: what gets one placeholder."""
    if kind == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        return "phone:" + digits[-9:]  # the subscriber part, without country or trunk prefix
    if kind in _NUMBER_KINDS or kind == "postcode":
        return f"{kind}:" + _ALNUM.sub("", value).upper()
    if kind in _NAME_KINDS:
        value = value.replace("-", " ")
    return f"{kind}:" + " ".join(value.lower().split())


def same_value_spans(
    text: str, known: Sequence[tuple[str, str]], taken: Sequence[PiiSpan]
) -> list[tuple[PiiSpan, str]]:
    """Other spellings in ``text`` of the ``(kind, value)`` pairs in ``known`` (found in
    any text of a hand-off) that do not overlap ``taken``, each with the canonical key of
    the value it spells: phone numbers with or without country code, trunk 0 and
    separators; other numbers in any spacing; e-mail addresses, street addresses,
    postcodes and names in any case and spacing, and a name's surname or given name
    on its own."""
    out: list[tuple[PiiSpan, str]] = []
    busy = [(s.start, s.end) for s in taken]

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in busy)

    def add(kind: str, a: int, b: int, key: str) -> None:
        if free(a, b):
            out.append((PiiSpan(kind, a, b), key))
            busy.append((a, b))

    phones: dict[str, str] = {}
    exact: dict[str, tuple[str, str]] = {}
    words: dict[str, tuple[str, str]] = {}
    loose: dict[str, tuple[str, str]] = {}  # pattern -> (kind, key): any case, any inner space
    for kind, value in known:
        key = canonical(kind, value)
        digits = "".join(ch for ch in value if ch.isdigit())
        if kind == "phone":
            phones[digits.lstrip("0")] = key
        elif kind in ("credit_card", "national_id") and len(digits) >= 6:
            exact[digits] = (kind, key)
        elif kind == "iban":
            pass  # every spelling of an IBAN passes its checksum: detection finds it
        elif kind == "postcode":
            compact = _ALNUM.sub("", value)
            loose[r"[ \t]?".join(re.escape(ch) for ch in compact)] = (kind, key)
        elif kind in _TEXT_KINDS:
            spelled = value.replace("-", " ") if kind in _NAME_KINDS else value
            words[" ".join(spelled.lower().split())] = (kind, key)
            if kind in _NAME_KINDS:
                # A surname or given name on its own: a value of its own (restored as is).
                for part in spelled.split():
                    part = part.strip(".,'’")
                    if len(part) >= 4 and part.lower() not in _COMMON_NAME_WORDS:
                        words.setdefault(part.lower(), (kind, canonical(kind, part)))
    if (phones or exact) and any(ch.isdigit() for ch in text):
        for m in _DIGIT_RUN.finditer(text):
            _number_variants(text, m, phones, exact, add)
    for pattern, (kind, key) in loose.items():
        for m in re.finditer(rf"(?<![0-9A-Za-z]){pattern}(?![0-9A-Za-z])", text, re.IGNORECASE):
            add(kind, m.start(), m.end(), key)
    if words:
        lowered = text.lower()
        for phrase, (kind, key) in words.items():
            first = phrase.split()[0]
            i = lowered.find(first)
            while i != -1:
                stop = _phrase_at(text, i, phrase)
                if stop is not None:
                    add(kind, i, stop, key)
                i = lowered.find(first, i + 1)
    return out


_COMMON_NAME_WORDS = frozenset(
    ["street", "road", "avenue", "lane", "drive", "court", "place", "crescent", "close"]
)


def _phrase_at(text: str, i: int, phrase: str) -> int | None:
    """End of ``phrase`` matched at ``i`` in any case and any whitespace, as whole words."""
    if i > 0 and (text[i - 1].isalnum() or text[i - 1] in "@._%+-"):
        return None
    pos = i
    for n, word in enumerate(phrase.split()):
        if n:
            j = pos
            while j < len(text) and (text[j].isspace() or text[j] == "-"):
                j += 1
            if j == pos:
                return None
            pos = j
        if text[pos : pos + len(word)].lower() != word:
            return None
        pos += len(word)
    if pos < len(text) and (text[pos].isalnum() or text[pos] == "@"):
        return None
    return pos


def _number_variants(
    text: str,
    m: re.Match[str],
    phones: dict[str, str],
    exact: dict[str, tuple[str, str]],
    add: Callable[[str, int, int, str], None],
) -> None:
    """Whole-group sub-runs of one digit run that spell a known number."""
    groups = [
        (m.start() + g.start(), m.start() + g.end()) for g in _DIGITS_ONLY.finditer(m.group())
    ]
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            a = groups[i][0] - (1 if groups[i][0] > 0 and text[groups[i][0] - 1] in "+(" else 0)
            b = groups[j][1]
            if digits in exact:
                kind, key = exact[digits]
                add(kind, a, b, key)
                return
            core = digits.lstrip("0")
            if len(core) >= 7:
                for known, key in phones.items():
                    if known.endswith(core) or core.endswith(known[-9:]):
                        add("phone", a, b, key)
                        return


_DIGITS_ONLY = re.compile(r"[0-9]+")
# On overlaps, stronger evidence wins (checksummed numbers first), then longer spans.
_PRIORITY = {
    "iban": 0,
    "credit_card": 1,
    "email": 2,
    "national_id": 3,
    "phone": 4,
    "street_address": 5,
    "postcode": 6,
    "contact_name": 7,
    "person_name": 8,
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
