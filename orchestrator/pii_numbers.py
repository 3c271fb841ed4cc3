"""Number-shaped PII: cards, IBANs, phones, national IDs, street addresses, postcodes.

The text is scanned once for digit clusters (a cheap pattern, skipped when the text
has no digit); each kind is then tried anchored at a cluster's digit groups. Card
numbers must pass Luhn, IBANs mod 97; document numbers (passport, licence, ID card)
count only right after such a keyword. Letters are matched in any case ("nl91 abna ...",
"18 wrenfield crescent"); the checksums and the street words keep that precise.
Postcodes: UK (outward and inward code), NL (four digits and two letters), US ZIP after
a state code or the word ZIP, DE/FR five digits before a town name, and any of these
right after a street address.
"""

from __future__ import annotations

import re
import string

Found = tuple[int, int, str]  # start, end, kind

PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){1,4}"
    r"|00[1-9]\d{0,2}[ .-]?(?:\(0\)[ .-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){1,4}"  # 00 = +
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|0[1-9]\d{0,3}[ .-]\d{2,4}(?:[ .-]\d{2,4}){1,3}"
    r"|0[1-9]\d{2,4}[ .-]\d{5,8}"
    r"|1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}"
    r"|[2-9]\d{2}[ .-]\d{3}[ .-]\d{4}"  # US/CA national, any separator
    r"|7\d{3}[ .-]?\d{6}"  # UK mobile written without the trunk 0
    r")(?![\w])"
)
CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![\w])")
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
    r"(?<![\w])\d{1,5}[A-Za-z]?,?\s+(?:[A-Za-z][A-Za-z'-]+\s+){1,3}(?:"
    + _STREET_WORDS
    + r")(?![\w-])",
    re.IGNORECASE,
)
# Words that make "3 more ways" or "2 of the best roads" something other than an address
# once case no longer tells (lowercase text).
_NOT_STREET_NAME = frozenset(
    """
    a an the of in on at by to for and or more other different same best better easy
    simple only one two three few many several each every this that these those my your
    our their his her its all any some no
    """.split()  # noqa: SIM905
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
_DE_NAME = re.compile(
    r"[A-ZÄÖÜa-zäöü][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|straat|laan|plein|gracht|kade|singel|dijk)\s+$"
)

_DE_SUFFIXES = (
    "straße",
    "strasse",
    "str.",
    "weg",
    "gasse",
    "platz",
    "allee",
    "ring",
    "straat",
    "laan",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
)


def _ends_like_street(text: str, s: int) -> bool:
    """Cheap pre-check for ``_DE_NAME``: the word before ``s`` ends in a street suffix."""
    return text[max(0, s - 12) : s].rstrip().lower().endswith(_DE_SUFFIXES)


UK_POSTCODE = re.compile(
    r"(?<![\w])[A-Za-z]{1,2}\d[A-Za-z\d]?[ \t]?\d[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]{2}(?![\w])"
)
NL_POSTCODE = re.compile(r"[1-9]\d{3}[ \t]?(?!SA|SD|SS)[A-Z]{2}(?![\w])")
_NL_NOT = frozenset(
    """
    AM PM AD BC CE MB KB GB TB PB HZ KM CM MM KG MG ML KW MW GW EU US UK EN OK
    """.split()  # noqa: SIM905
)
ZIP5 = re.compile(r"\d{5}(?:-\d{4})?(?![\w-])")
_US_STATES = frozenset(
    """
    AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE
    NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY
    """.split()  # noqa: SIM905
)
_ZIP_BEFORE = re.compile(
    r"(?:\b([A-Z]{2})|\b(?:zip|zip code|postcode|postal code|plz|code postal|cp))[ \t:]*,?[ \t]*$",
    re.IGNORECASE,
)
# Five digits then a town: "10115 Berlin", "75008 Paris" (D-/F- prefixes allowed).
_TOWN_AFTER = re.compile(r"[ \t]+[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]{2,}")
_NOT_TOWN = frozenset(
    """
    Euro Euros Dollar Dollars Pounds Items Units Users People Tokens Words Bytes Files
    Rows
    """.split()  # noqa: SIM905
)
_NOT_POSTCODE_BEFORE = (
    "order",
    "invoice",
    "ticket",
    "ref",
    "reference",
    "no",
    "no.",
    "number",
    "#",
    "id",
    "case",
    "account",
)
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


def _iban_end(text: str, start: int, end: int) -> int:
    """End of the longest checksum-valid IBAN in ``text[start:end]`` ending at a group
    boundary (the pattern may have run on into the next word: "... 00 please")."""
    if iban_ok(text[start:end]):
        return end
    cut = text.rfind(" ", start, end)
    while cut > start + 14:
        if iban_ok(text[start:cut]):
            return cut
        cut = text.rfind(" ", start, cut)
    return 0


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


def _phone_digits(raw: str) -> str:
    """A phone number's digits, an international "00" prefix counted as the "+" it stands for."""
    digits = raw.translate(_SEPARATORS)
    return digits.removeprefix("00")


def _upper2(text: str, i: int) -> bool:
    return i >= 0 and text[i] in _ASCII_UPPER and text[i + 1] in _ASCII_UPPER


def _letters2(text: str, i: int) -> bool:
    return i >= 0 and text[i : i + 2].isascii() and text[i : i + 2].isalpha()


def _at_digit_group(text: str, s: int, digits_left: int, last: bool, out: list[Found]) -> int:
    """Try the number kinds at the digit group starting at ``s``; return the end used.

    ``digits_left``: digits from ``s`` to the end of its cluster; ``last``: whether the
    group is the cluster's last (only then can words such as "Baker Street" follow).
    """
    end = s
    # Letter-prefixed kinds: IBAN ("DE89 ...") and UK NINO ("QQ 12 34 56 C").
    for back in (2, 3):
        p = s - back
        if p < 0 or not _letters2(text, p) or (back == 3 and text[s - 1] != " "):
            continue
        m = IBAN.match(text, p) if back == 2 else None
        if m:
            end_iban = _iban_end(text, p, m.end())
            if end_iban:
                out.append((p, end_iban, "iban"))
                return end_iban
            if _upper2(text, p):
                return m.end()  # IBAN-shaped, even if mistyped: not a phone or card
        if not _upper2(text, p):
            continue
        m = NINO.match(text, p) or _nino_after_keyword(text, p)
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
        if m and 7 <= len(_phone_digits(m.group())) <= 15:
            out.append((p, m.end(), "phone"))
            end = max(end, m.end())
    if last and digits_left <= 5 and end == s:
        m = _street_en(text, s) or STREET_FR.match(text, s)
        if m:
            unit = _UNIT_BEFORE.search(text, max(0, s - 24), s)
            out.append((unit.start() if unit else s, m.end(), "street_address"))
            return m.end()
        if digits_left <= 4 and s > 0 and text[s - 1].isspace():
            num = _DE_NUMBER.match(text, s)
            m = (
                _DE_NAME.search(text, max(0, s - 40), s)
                if num and _ends_like_street(text, s)
                else None
            )
            if num and m and (m.start() == 0 or not text[m.start() - 1].isalnum()):
                out.append((m.start(), num.end(), "street_address"))
                end = max(end, num.end())
    if end == s:
        end = _postcode(text, s, digits_left, out)
    if end == s:
        _document_number(text, s, out)
    return end


def _after_address(out: list[Found], s: int, text: str) -> bool:
    """Whether position ``s`` follows the last street address found, within a town name."""
    for a, b, kind in reversed(out[-3:]):
        if kind == "street_address":
            gap = text[b:s]
            return len(gap) <= 32 and "\n" not in gap.strip(" \t")
    return False


def _postcode(text: str, s: int, digits_left: int, out: list[Found]) -> int:
    """UK / NL / US / DE / FR postcodes whose first digit is at ``s``; the end used."""
    # UK: one or two letters before the digit ("HG2 9QT", "sw1a 1aa").
    for back in (1, 2):
        p = s - back
        if p < 0 or not text[p:s].isalpha() or not text[p:s].isascii():
            continue
        m = UK_POSTCODE.match(text, p)
        if m and (
            m.group()[:2].isupper()
            or _after_address(out, p, text)
            or _ZIP_BEFORE.search(text[max(0, p - 24) : p])
        ):
            out.append((p, m.end(), "postcode"))
            return m.end()
    if digits_left < 4 or (s > 0 and text[s - 1].isdigit()):
        return s
    nl = NL_POSTCODE.match(text, s)
    m = None if nl else ZIP5.match(text, s)
    if nl is None and m is None:
        return s
    before = text[max(0, s - 24) : s]
    if before.rstrip(" \t").lower().endswith(_NOT_POSTCODE_BEFORE):
        return s
    if nl:
        if nl.group()[-2:] not in _NL_NOT and (
            _TOWN_AFTER.match(text, nl.end()) or _after_address(out, s, text)
        ):
            out.append((s, nl.end(), "postcode"))
            return nl.end()
        return s
    assert m is not None
    start = s - 2 if s >= 2 and text[s - 2 : s] in ("D-", "F-") else s
    cue = _ZIP_BEFORE.search(before)
    us = cue is not None and (cue.group(1) is None or cue.group(1) in _US_STATES)
    town = _TOWN_AFTER.match(text, m.end())
    if us or (town and town.group().strip() not in _NOT_TOWN) or _after_address(out, start, text):
        out.append((start, m.end(), "postcode"))
        return m.end()
    return s


# Any two letters (also the documented example prefix QQ) right after the keyword.
_NINO_LOOSE = re.compile(r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])")
_NINO_KEYWORDS = ("insurance", "nino", "ni number", "ni no")


def _nino_after_keyword(text: str, p: int) -> re.Match[str] | None:
    before = text[max(0, p - 40) : p].lower()
    return _NINO_LOOSE.match(text, p) if any(k in before for k in _NINO_KEYWORDS) else None


def _street_en(text: str, s: int) -> re.Match[str] | None:
    m = STREET_EN.match(text, s)
    if m is None:
        return None
    words = m.group().split()[1:-1]
    if all(w[0].isupper() for w in words):
        return m
    # All lowercase (typed quickly), unless the words make it prose ("3 more ways").
    if m.group().islower() and not any(w.strip(",") in _NOT_STREET_NAME for w in words):
        return m
    return None


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
