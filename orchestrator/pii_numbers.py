"""Number-shaped PII: cards, IBANs, phones, national IDs, street addresses.

The text is scanned once for digit clusters (a cheap pattern, skipped when the text
has no digit); each kind is then tried anchored at a cluster's digit groups. Card
numbers must pass Luhn, IBANs mod 97; document numbers (passport, licence, ID card)
count only right after such a keyword.
"""

from __future__ import annotations

import re
import string

Found = tuple[int, int, str]  # start, end, kind

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
# Everything a card, phone or cluster may contain besides digits (faster than a regex).
_SEPARATORS = str.maketrans("", "", " -.()/+")
_ASCII_UPPER = frozenset(string.ascii_uppercase)


_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")  # 2d, minus 9 when > 9


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a string of ASCII digits."""
    if not digits.isascii() or not digits.isdigit():
        return False
    mixed = digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLE)
    return (sum(mixed.encode()) - 48 * len(mixed)) % 10 == 0


_IBAN_LETTERS = str.maketrans({ch: str(10 + i) for i, ch in enumerate(string.ascii_uppercase)})


def iban_ok(raw: str) -> bool:
    """ISO 13616 check: country and check digits moved to the end, letters as 10..35."""
    s = raw.replace(" ", "")
    if not 15 <= len(s) <= 34 or not s.isascii() or not s.isalnum():
        return False
    digits = (s[4:] + s[:4]).upper().translate(_IBAN_LETTERS)
    return digits.isdigit() and int(digits) % 97 == 1


def _card_in(raw: str) -> tuple[int, int] | None:
    """Longest run of whole digit groups in ``raw`` that is a Luhn-valid card number."""
    if raw.startswith("0"):  # no card number starts with 0
        return None
    digits = raw.translate(_SEPARATORS)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return 0, len(raw)
    # A card followed by another number ("... 1111 221 Baker Street"): longest prefix.
    best: tuple[int, int] | None = None
    n = 0
    for g in _DIGITS.finditer(raw):
        n += g.end() - g.start()
        if n > 19:
            break
        if n >= 13 and luhn_ok(raw[: g.end()].translate(_SEPARATORS)):
            best = (0, g.end())
    return best


def _upper2(text: str, i: int) -> bool:
    return i >= 0 and text[i] in _ASCII_UPPER and text[i + 1] in _ASCII_UPPER


def _at_digit_group(text: str, s: int, digits_left: int, last: bool, out: list[Found]) -> int:
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
                out.append((p, m.end(), "iban"))
            return m.end()  # IBAN-shaped, even if mistyped: not a phone or card
        m = NINO.match(text, p)
        if m:
            out.append((p, m.end(), "national_id"))
            return m.end()
    if digits_left >= 13:
        m = CARD.match(text, s)
        if m:
            card = _card_in(m.group())
            if card is not None:
                out.append((s + card[0], s + card[1], "credit_card"))
                end = max(end, s + card[1])
    if digits_left >= 9 and text.startswith("-", s + 3):
        m = SSN.match(text, s)
        if m:
            out.append((s, m.end(), "national_id"))
            end = max(end, m.end())
    if digits_left >= 7 and end == s:
        p = s - 1 if s > 0 and text[s - 1] in "+(" else s
        m = PHONE.match(text, p)
        if m and 7 <= len(m.group().translate(_SEPARATORS)) <= 15:
            out.append((p, m.end(), "phone"))
            end = max(end, m.end())
    if last and digits_left <= 5 and end == s:
        m = STREET_EN.match(text, s) or STREET_FR.match(text, s)
        if m:
            unit = _UNIT_BEFORE.search(text, max(0, s - 24), s)
            out.append((unit.start() if unit else s, m.end(), "street_address"))
            return m.end()
        if digits_left <= 4 and s > 0 and text[s - 1].isspace():
            num = _DE_NUMBER.match(text, s)
            m = _DE_NAME.search(text, max(0, s - 40), s) if num else None
            if num and m and (m.start() == 0 or not text[m.start() - 1].isalnum()):
                out.append((m.start(), num.end(), "street_address"))
                end = max(end, num.end())
    if end == s:
        _document_number(text, s, out)
    return end


def _document_number(text: str, s: int, out: list[Found]) -> None:
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
        out.append((a, m.end(), "national_id"))


def find_numbers(text: str, out: list[Found]) -> None:
    """Append every number-shaped PII value of ``text`` to ``out``."""
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
