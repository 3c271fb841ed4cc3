"""PII detection in pure Python: candidates first, then anchored checks.

A full regex scan costs tens of microseconds per KB in CPython, so the detector scans
as little as it can: it finds digit clusters with one cheap pattern (skipped when the
text has no digit), tries the number kinds anchored at each cluster, looks for e-mail
addresses only around ``@``, and finds contact names with substring search. Numbers
that carry a checksum are verified (credit cards by Luhn, IBANs by ISO 7064 mod 97).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, order=True)
class PiiSpan:
    """One detected value: ``text[start:end]`` is of PII kind ``kind``."""

    start: int
    end: int
    kind: str


EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# International (+CC ...) or parenthesised/dashed national forms; 7-15 digits in all.
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|0[1-9]\d{0,3}[ .-]\d{2,4}(?:[ .-]\d{2,4}){1,3}"
    r"|0[1-9]\d{2,4}[ .-]\d{5,8}"
    r"|1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r")(?![\w])"
)
CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")
SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
NINO = re.compile(
    r"(?<![\w])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])"
)
_STREET_WORDS = (
    r"Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?"
    r"|Court|Ct\.?|Way|Place|Pl\.?|Terrace|Square|Sq\.?|Crescent|Close|Parkway"
)
STREET_EN = re.compile(
    r"(?<![\w])\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'-]+\s+){1,3}(?:" + _STREET_WORDS + r")(?![\w-])"
)
# "Flat 3, " / "Apt 4B " before a street address belongs to it.
_UNIT_BEFORE = re.compile(r"(?<![\w])(?:Flat|Apt\.?|Apartment|Unit|Suite)\s+\w{1,5},?\s+$")
# Document numbers have no fixed shape; they count only right after a naming keyword.
_ID_KEYWORDS = (
    "passport",
    "licence",
    "license",
    "id number",
    "id card",
    "identity card",
    "personalausweis",
    "carte d'identité",
    "tax id",
    "national id",
)
_ID_TOKEN = re.compile(r"[A-Z0-9]{0,3}[0-9]{5,12}[A-Z0-9]{0,2}(?![\w])")
STREET_FR = re.compile(
    r"(?<![\w])\d{1,4}(?:bis|ter)?,?\s+(?:rue|avenue|boulevard|place|chemin|impasse|allée)"
    r"\s+(?:(?:de|du|des|la|le|l'|d')\s*)*[A-ZÉÈ][\w'-]+(?:\s+[A-ZÉÈ][\w'-]+){0,2}"
)
_DE_NAME = re.compile(r"[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring)\s+$")
_DE_NUMBER = re.compile(r"\d{1,4}[a-z]?(?![\w])")

# ASCII digits only: a leading "+" or "(" is looked at by the phone check itself.
_CLUSTER = re.compile(r"[0-9](?:[0-9 \-.()/]*[0-9])?")
_DIGITS = re.compile(r"[0-9]+")
_NON_DIGIT = re.compile(r"\D")
_ASCII_UPPER = frozenset(string.ascii_uppercase)
_PUNCT = string.punctuation + "‘’“”«»–—…"
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys(_PUNCT, " "))


_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")  # 2d, minus 9 when > 9


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a string of ASCII digits."""
    if not digits.isascii() or not digits.isdigit():
        return False
    doubled = digits[-2::-2].translate(_LUHN_DOUBLE)
    return sum(map(int, digits[-1::-2] + doubled)) % 10 == 0


def iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1
    except ValueError:
        return False


def _card_in(raw: str) -> tuple[int, int] | None:
    """Longest run of whole digit groups in ``raw`` that is a Luhn-valid card number."""
    if raw.startswith("0"):  # no card number starts with 0
        return None
    digits = _NON_DIGIT.sub("", raw)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return 0, len(raw)
    # A card followed by another number ("... 1111 221 Baker Street"): longest prefix.
    best: tuple[int, int] | None = None
    n = 0
    for g in _DIGITS.finditer(raw):
        n += g.end() - g.start()
        if n > 19:
            break
        if n >= 13 and luhn_ok(_NON_DIGIT.sub("", raw[: g.end()])):
            best = (0, g.end())
    return best


def _upper2(text: str, i: int) -> bool:
    return i >= 0 and text[i] in _ASCII_UPPER and text[i + 1] in _ASCII_UPPER


def _at_digit_group(text: str, s: int, digits_left: int, last: bool, out: list[PiiSpan]) -> int:
    """Try the number kinds at the digit group starting at ``s``; return the end used.

    ``digits_left``: digits from ``s`` to the end of its cluster; ``last``: whether the
    group is the cluster's last (only then can words such as "Baker Street" follow).
    """
    end = s
    # Letter-prefixed kinds: IBAN ("DE89 ...") and UK NINO ("QQ 12 34 56 C").
    for back in (2, 3):
        p = s - back
        if p < 0 or not _upper2(text, p) or (back == 3 and text[s - 1] != " "):
            continue
        m = IBAN.match(text, p) if back == 2 else None
        if m:
            if iban_ok(m.group()):
                out.append(PiiSpan(p, m.end(), "iban"))
            return m.end()  # IBAN-shaped, even if mistyped: not a phone or card
        m = NINO.match(text, p)
        if m:
            out.append(PiiSpan(p, m.end(), "national_id"))
            return m.end()
    if digits_left >= 13:
        m = CARD.match(text, s)
        if m:
            card = _card_in(m.group())
            if card is not None:
                out.append(PiiSpan(s + card[0], s + card[1], "credit_card"))
                end = max(end, s + card[1])
    if digits_left >= 9 and text.startswith("-", s + 3):
        m = SSN.match(text, s)
        if m:
            out.append(PiiSpan(s, m.end(), "national_id"))
            end = max(end, m.end())
    if digits_left >= 7 and end == s:
        p = s - 1 if s > 0 and text[s - 1] in "+(" else s
        m = PHONE.match(text, p)
        if m and 7 <= len(_NON_DIGIT.sub("", m.group())) <= 15:
            out.append(PiiSpan(p, m.end(), "phone"))
            end = max(end, m.end())
    if last and digits_left <= 5 and end == s:
        m = STREET_EN.match(text, s) or STREET_FR.match(text, s)
        if m:
            unit = _UNIT_BEFORE.search(text, max(0, s - 24), s)
            out.append(PiiSpan(unit.start() if unit else s, m.end(), "street_address"))
            return m.end()
        if digits_left <= 4 and s > 0 and text[s - 1].isspace():
            num = _DE_NUMBER.match(text, s)
            m = _DE_NAME.search(text, max(0, s - 40), s) if num else None
            if num and m and (m.start() == 0 or not text[m.start() - 1].isalnum()):
                out.append(PiiSpan(m.start(), num.end(), "street_address"))
                end = max(end, num.end())
    if end == s:
        _document_number(text, s, out)
    return end


def _document_number(text: str, s: int, out: list[PiiSpan]) -> None:
    """Passport / licence / ID card numbers, only right after such a keyword."""
    a = s
    while a > 0 and s - a < 3 and text[a - 1] in _ASCII_UPPER:
        a -= 1
    if a > 0 and text[a - 1].isalnum():
        return
    m = _ID_TOKEN.match(text, a)
    if not m:
        return
    before = text[max(0, a - 40) : a].lower()
    if any(k in before for k in _ID_KEYWORDS):
        out.append(PiiSpan(a, m.end(), "national_id"))


_SEPARATORS = str.maketrans("", "", " -.()/")


def _numbers(text: str, out: list[PiiSpan]) -> None:
    done = 0
    for cluster in _CLUSTER.finditer(text):
        base = cluster.start()
        raw = cluster.group()
        if base + len(raw) <= done:
            continue
        if raw.isdigit():
            if base >= done:
                done = max(done, _at_digit_group(text, base, len(raw), True, out))
            continue
        for g in _DIGITS.finditer(raw):
            k = g.start()
            if base + k < done:
                continue
            left = len(raw[k:].translate(_SEPARATORS))
            done = max(done, _at_digit_group(text, base + k, left, g.end() == len(raw), out))


def _emails(text: str, out: list[PiiSpan]) -> None:
    i = text.find("@")
    done = 0
    n = len(text)
    while i != -1:
        m = EMAIL.search(text, max(done, i - 64), min(n, i + 256))
        if m and m.start() <= i < m.end():
            out.append(PiiSpan(m.start(), m.end(), "email"))
            done = m.end()
            i = text.find("@", done)
        else:
            i = text.find("@", i + 1)


# Name parts that are also everyday words: matched only capitalised ("Will", not "will").
_COMMON_WORDS = frozenset(
    [
        "will",
        "bill",
        "mark",
        "rose",
        "may",
        "june",
        "april",
        "august",
        "grace",
        "hope",
        "faith",
        "joy",
        "art",
        "jack",
        "pat",
        "sue",
        "dawn",
        "frank",
        "amber",
        "summer",
        "don",
        "ray",
        "rich",
        "rob",
        "sky",
        "autumn",
        "iris",
        "lily",
        "daisy",
        "holly",
        "ivy",
        "ruby",
        "pearl",
        "crystal",
        "jade",
        "penny",
        "victor",
        "buck",
        "chase",
        "cliff",
        "dale",
        "dean",
        "drew",
        "earl",
        "glen",
        "grant",
        "hunter",
        "lane",
        "max",
        "miles",
        "norm",
        "page",
        "reed",
        "rod",
        "rusty",
        "sandy",
        "stone",
        "terry",
        "wade",
        "ward",
        "wood",
        "young",
        "king",
        "white",
        "black",
        "brown",
        "green",
        "gray",
        "grey",
        "long",
        "little",
        "hill",
        "park",
        "price",
        "rice",
        "bell",
        "cook",
        "baker",
        "miller",
        "smith",
        "turner",
        "mason",
        "fisher",
        "taylor",
        "porter",
        "parker",
        "walker",
        "sharp",
        "good",
        "love",
        "guy",
        "van",
        "von",
        "del",
        "der",
        "den",
        "day",
        "way",
        "field",
        "banks",
        "hall",
        "booth",
        "street",
    ]
)


@lru_cache(maxsize=256)
def _contact_index(
    names: tuple[str, ...],
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, bool]]]:
    """Full names by lowercased first word (longest first), and single name parts.

    Parts map lowercased -> (as written, whether any case may match).
    """
    full = sorted(
        {" ".join(n.split()) for n in names if len(n.strip()) >= 2}, key=len, reverse=True
    )
    index: dict[str, list[str]] = {}
    for n in full:
        index.setdefault(n.split()[0].lower(), []).append(n.lower())
    parts: dict[str, tuple[str, bool]] = {}
    for n in full:
        words = n.split()
        if len(words) < 2:
            continue
        for w in words:
            if len(w) >= 3 and w[0].isupper() and w.lower() not in index.get(w.lower(), ()):
                parts.setdefault(w.lower(), (w, w.lower() not in _COMMON_WORDS))
    return {k: tuple(v) for k, v in index.items()}, parts


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _bounded(text: str, a: int, b: int) -> bool:
    return (a == 0 or not _is_word_char(text[a - 1])) and (
        b == len(text) or not _is_word_char(text[b])
    )


def _other_surname_follows(text: str, j: int) -> bool:
    """``text[j:]`` starts with " Xy...": the part belongs to another person ("Bob Dylan")."""
    return (
        j + 2 < len(text)
        and text[j] == " "
        and text[j + 1].isupper()
        and text[j + 2].isalpha()
        and text[j + 2].islower()
    )


def _contacts(text: str, names: tuple[str, ...], out: list[PiiSpan]) -> None:
    """Contact names; positions inside e-mail addresses already in ``out`` are skipped."""
    index, parts = _contact_index(names)
    low = text.lower()
    if len(low) != len(text):  # case folding changed lengths: fold char by char
        low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    if len(index) + len(parts) > 12:
        # One pass over the text instead of one substring search per name.
        words = set(low.translate(_PUNCT_TO_SPACE).split())

        def present(key: str) -> bool:
            return key in words if key.isalnum() else key in low

        firsts = [k for k in index if present(k)]
        part_keys = [p for p in parts if present(p)]
    else:
        firsts = [k for k in index if k in low]
        part_keys = [p for p in parts if p in low]
    taken: set[int] = set()
    for span in out:
        if span.kind == "email":
            taken.update(range(span.start, span.end))
    for first in firsts:
        i = low.find(first)
        while i != -1:
            if i in taken:
                i = low.find(first, i + 1)
                continue
            for name in index[first]:
                j = i + len(name)
                if low.startswith(name, i) and _bounded(text, i, j):
                    out.append(PiiSpan(i, j, "contact_name"))
                    taken.update(range(i, j))
                    break
            i = low.find(first, i + 1)
    for key in part_keys:
        written, any_case = parts[key]
        n = len(key)
        i = low.find(key)
        while i != -1:
            j = i + n
            if (
                i not in taken
                and _bounded(text, i, j)
                and (any_case or text.startswith(written, i))
                and not _other_surname_follows(text, j)
            ):
                out.append(PiiSpan(i, j, "contact_name"))
            i = low.find(key, j)


def detect_pii(text: str, contact_names: Sequence[str] = ()) -> list[PiiSpan]:
    """All PII spans in ``text``, sorted by position; overlaps resolved (see ``_PRIORITY``)."""
    found: list[PiiSpan] = []
    if "@" in text:
        _emails(text, found)
    if any(d in text for d in "0123456789"):
        _numbers(text, found)
    if contact_names:
        _contacts(text, tuple(contact_names), found)
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
