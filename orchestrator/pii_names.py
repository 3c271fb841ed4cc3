"""Person names that are not among the user's contacts, found without a learned model.

Redaction errs towards recall: a placeholder too many costs a little answer quality, a
name too few leaks. So every capitalised word is a candidate and evidence decides:

* listed names: given names and surnames of about 80 locales (``pii_lexicon``);
* rarity: a capitalised word inside a sentence that is no common word (word
  frequencies of English and six other languages) is a name, a place or a brand, and is
  taken for a name ("Is Okonkwo joining?");
* cues: an honorific, a greeting, a verb of address before it ("ask Will"), its verb
  after it at the start of a sentence ("Hope said ..."), "and" joining it to another
  capitalised word, a sign-off above it, an e-mail address in angle brackets after it;
* counter-evidence: a determiner or a place preposition before a word that is not a
  listed name ("the Louvre", "in Kathmandu"), a place prefix ("New York"), a country,
  months, weekdays, nationalities, brands and other words that never name a person;
* lowercase typing: a listed name that is no English word ("tell mehmet"), or a word
  no dictionary knows after a verb of address ("ask tolu").

A capitalised everyday word inside a sentence joins a name it touches ("Cheyenne Running
Bear"); at the start of a sentence it does not ("Send Mehmet Yilmaz ..."). Cue words
are not part of the span: "Dr. [PERSON_NAME_1]", "[PERSON_NAME_1]'s flight".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.pii_lexicon import Lexicon, lexicon
from orchestrator.pii_name_words import (
    ADDRESS_VERBS,
    DEMONYMS,
    DETERMINERS,
    GREETINGS,
    HONORIFICS,
    JOINERS,
    LOCATIVES,
    LOWER_CUES,
    LOWER_QUESTION_CUES,
    NOT_NAMES,
    PERSON_VERBS,
    PLACE_PREFIXES,
    PLACES,
    SIGN_OFF_WORDS,
    TRAVEL_WORDS,
    VERB_BASES,
    VERBS_AFTER,
)


def _letters(upper: bool) -> str:
    """The cased letters of Latin-1/Extended, Greek and Cyrillic, for a character class."""
    ranges = ((0xC0, 0x250), (0x370, 0x400), (0x400, 0x530), (0x1E00, 0x1F00))
    chars = (chr(c) for lo, hi in ranges for c in range(lo, hi))
    return "".join(ch for ch in chars if ch.isalpha() and (ch.isupper() if upper else ch.islower()))


_UP = "A-Z" + _letters(True)
_LO = "a-z" + _letters(False)
_PARTICLES = (
    r"(?:van|von|der|den|de|du|da|di|del|della|le|la|ter|ten|op|bin|binti|bint|ibn|al|el|dos|das|y"
    r"|Ó|Ní|Nic|Uí|Ua)"
)
# One capitalised word: "Okonkwo", "O'Sullivan", "McDonald", "Jean-Baptiste", "Hiroshi's".
# (Starting with the character class lets the regex engine skip ahead: 5x faster.)
_CAP = rf"[{_UP}](?:[{_LO}]+|[{_LO}]?['’][{_UP}][{_LO}]+)(?:[{_UP}][{_LO}]+)?(?:[-'’][{_UP}]?[{_LO}]+)*"
# A run of one to five capitalised words, particles allowed between them.
_RUN = re.compile(rf"{_CAP}(?:[ \t]+(?:{_PARTICLES}[ \t]+)*{_CAP}){{0,4}}")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_ANGLE_EMAIL = re.compile(r"[ \t]*<[^<>@\s]+@")
_SIGN_OFF = re.compile(
    r"(?:regards|best|wishes|thanks|thank you|cheers|sincerely|love|yours|groeten|grüße|gruß|cordialement)"
    r"[ \t]*,?[ \t]*\r?\n[ \t]*$",
    re.IGNORECASE,
)
_POSSESSIVE = ("'s", "’s", "'", "’")

# Below this English Zipf frequency (and not common in another language) a word is
# unknown: a name, a place or a brand. At or above _COMMON a listed name is also an
# everyday word ("Hope", "Will") and needs a cue at the start of a sentence.
UNKNOWN_BELOW = 3.0
_COMMON = 4.0
_RARE_START = 2.0  # an unknown word this rare is a name even at the start of a sentence
_FUNCTION_WORD = 5.0  # words this common ("Is", "Did", "Could") start questions, not names
_LOWER_LISTED_BELOW = 3.5  # a lowercase listed name after a cue ("and rahul") this rare
_NEVER = NOT_NAMES | HONORIFICS | GREETINGS | ADDRESS_VERBS

# _DEMONYM: "Zulu", "English": never a name alone, but part of one it follows.
_NEG, _LEX, _UNKNOWN, _KNOWN, _PLACE, _DEMONYM = range(6)


@dataclass(slots=True)
class _Tok:
    start: int
    end: int  # without a possessive 's
    word: str
    particle: bool
    kind: int = _NEG
    name: bool = False


def find_person_names(text: str) -> list[tuple[int, int]]:
    """Spans of person names in ``text`` (see the module docstring for the evidence)."""
    lex = lexicon()
    spans: list[tuple[int, int]] = []
    n = len(text)
    for m in _RUN.finditer(text):
        a, b = m.start(), m.end()
        if a and (text[a - 1].isalnum() or text[a - 1] in "@._") or b < n and (text[b].isalnum() or text[b] in "@_"):
            continue
        word = m.group()
        if word.lower() in _NEVER and " " not in word and "\t" not in word:
            continue  # the common case: "The", "If", "Thanks" starting a sentence
        found = _run_names(text, m, lex)
        if not found and spans and _joined_to_name(text, spans[-1][1], m):
            found = [(a, b)]
        spans.extend(found)
    if lex.complete:
        spans.extend(_lowercase_names(text, lex))
    return _merge(text, _with_initials(text, _joined_before(text, spans)))


_INITIALS = re.compile(rf"(?<![\w.])((?:[{_UP}][{_LO}]?\.[ \t]*)+)$")
_BEFORE_JOINED = re.compile(rf"(?<![\w'’-])([{_UP}][{_LO}]+)(?:[ \t]+(?:and|&)|,)[ \t]+$")


def _with_initials(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Initials and abbreviated names before a name are part of it: "J. R. Smith",
    "Ma. Theresa Santos" (not an honorific: "Dr. [PERSON_NAME_1]")."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        m = _INITIALS.search(text, max(0, a - 16), a)
        if m is not None:
            first = m.group(1).split(".")[0].lower()
            if first not in HONORIFICS and first not in _NEVER and first not in PLACE_PREFIXES:
                a = m.start(1)
        out.append((a, b))
    return out


def _joined_before(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """ "Promise and Favour are twins", "Anan, Pim and Kittisak": a capitalised word
    joined by "and" or a comma to the name after it, at the start of a sentence, is a
    name too."""
    out = list(spans)
    for a, _ in spans:
        m = _BEFORE_JOINED.search(text, max(0, a - 40), a)
        if m is None or not _sentence_start(text, m.start(1)):
            continue
        word = m.group(1).lower()
        if word not in _NEVER and word not in PLACES and word not in DEMONYMS:
            out.append((m.start(1), m.end(1)))
    return out


_JOINED = re.compile(r"[ \t]*(?:,[ \t]*)?(?:and|&|or)[ \t]+$")


def _joined_to_name(text: str, name_end: int, m: re.Match[str]) -> bool:
    """ "Prosper and Gift": one capitalised word joined to the name before it by "and"."""
    word = m.group()
    if " " in word or "\t" in word or word.lower() in _NEVER or word.lower() in PLACES:
        return False
    return m.start() - name_end <= 8 and _JOINED.match(text, name_end, m.start()) is not None


# -- capitalised runs ----------------------------------------------------------------------


def _tokens(text: str, m: re.Match[str], lex: Lexicon) -> list[_Tok]:
    run = m.group()
    words = [(m.start(), run)] if " " not in run and "\t" not in run else [
        (m.start() + w.start(), w.group()) for w in _WORD.finditer(run)
    ]
    out: list[_Tok] = []
    for start, word in words:
        if word[-1] in "s'’":
            for suffix in _POSSESSIVE:
                if word.endswith(suffix) and len(word) > len(suffix) + 1:
                    word = word[: -len(suffix)]
                    break
        tok = _Tok(start, start + len(word), word, word[0].islower())
        if not tok.particle:
            tok.kind = _kind(word, lex)
        out.append(tok)
    _countries(out, lex)
    return out


def _kind(word: str, lex: Lexicon) -> int:
    kind = _KINDS.get(word)
    if kind is None:
        kind = _classify(word, lex)
        if len(_KINDS) >= _KINDS_MAX:
            _KINDS.clear()
        _KINDS[word] = kind
    return kind


_KINDS: dict[str, int] = {}  # word -> kind; the lists never change once loaded
_KINDS_MAX = 50_000


def _classify(word: str, lex: Lexicon) -> int:
    low = word.lower()
    if low in _NEVER:
        return _NEG
    if low in DEMONYMS:
        return _DEMONYM
    if low in PLACES:
        return _PLACE
    if lex.is_name(word) or ("-" in word and any(_rare_part(p, lex) for p in word.split("-"))):
        return _LEX
    if "-" in word and all(lex.zipf(p) >= _COMMON for p in word.split("-") if p):
        return _KNOWN  # "Street-wise", "Follow-up"
    return _KNOWN if lex.known_word(word, UNKNOWN_BELOW) else _UNKNOWN


def _rare_part(part: str, lex: Lexicon) -> bool:
    """A part of a hyphenated word that is a listed name and no everyday word."""
    return len(part) > 2 and lex.is_name(part) and lex.zipf(part) < _COMMON


def _countries(toks: list[_Tok], lex: Lexicon) -> None:
    """Country names ("France", "Sierra Leone") are places."""
    for i in range(len(toks)):
        if toks[i].word.lower() not in lex.country_words:
            continue
        for j in range(min(len(toks), i + 3), i, -1):
            if " ".join(t.word.lower() for t in toks[i:j]) in lex.countries:
                for t in toks[i:j]:
                    t.kind = _PLACE  # a person only with a cue ("Jordan said")
                break


def _run_names(text: str, m: re.Match[str], lex: Lexicon) -> list[tuple[int, int]]:
    toks = _tokens(text, m, lex)
    initial = _sentence_start(text, m.start())
    before = _word_before(text, m.start())
    words = [t for t in toks if not t.particle]
    det = before in DETERMINERS or bool(words) and words[0].word.lower() in DETERMINERS
    for i, t in enumerate(words):
        prev = words[i - 1].word.lower() if i else before
        if t.kind in (_NEG, _DEMONYM) or prev in PLACE_PREFIXES:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else None
        if _strong_cue(text, prev, t):
            t.name = True
        elif t.kind == _PLACE:
            t.name = _place_is_name(text, t, nxt, m.end(), prev)
        elif i == 0 and initial:
            t.name = _initial_is_name(text, t, nxt, m.end(), lex)
        elif det:  # "the Okonkwo family", but "the Red Cross"
            t.name = t.kind == _LEX and lex.zipf(t.word) < _COMMON
        elif prev in LOCATIVES or (i == 0 and _travel_before(text, m.start(), prev)):
            t.name = _place_or_name(text, t, nxt, m.end(), lex)
        else:
            t.name = t.kind in (_LEX, _UNKNOWN) or t.kind == _KNOWN and _proper_inside(text, t, words, m.end(), lex)
    _absorb(words, initial)
    return _spans(toks)


def _proper_inside(text: str, t: _Tok, words: list[_Tok], run_end: int, lex: Lexicon) -> bool:
    """A capitalised known word inside a sentence is a name when it stands with others
    that are no everyday words ("Zhou Tao") or alone with a verb after it ("Siosaia and
    Mele are ...", "Prosper and Gift run ...")."""
    if len(words) > 1:
        return all(w.kind in (_LEX, _UNKNOWN, _KNOWN) and lex.zipf(w.word) < _COMMON for w in words)
    return _cue_after(text, t, run_end)  # capitalised inside a sentence, with its verb


def _travel_before(text: str, start: int, prev: str) -> bool:
    """ "moving to X", "flying in from X", "a postcard from X": X is a place."""
    if prev not in ("to", "from"):
        return False
    i = start
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    return _word_before(text, i - len(prev)) in TRAVEL_WORDS


def _place_is_name(text: str, t: _Tok, nxt: _Tok | None, run_end: int, prev: str) -> bool:
    """A listed place ("Paris", "Sofia") is a person only with a cue: "Sofia said",
    "with Sofia", "Sofia Ivanova"."""
    if nxt is not None:
        return nxt.kind in (_LEX, _UNKNOWN)
    if prev in DETERMINERS or prev in LOCATIVES or prev in PLACE_PREFIXES:
        return False
    return prev == "with" or _cue_after(text, t, run_end)


def _place_or_name(text: str, t: _Tok, nxt: _Tok | None, run_end: int, lex: Lexicon) -> bool:
    """After "in", "at", "visiting" ...: a place, unless a person's name says otherwise."""
    if nxt is not None and nxt.kind in (_LEX, _UNKNOWN):
        return t.kind in (_LEX, _UNKNOWN)  # "in Maria Lopez's office"
    if t.end < run_end and text[t.end] in "'’":
        return True  # possessive
    return t.kind == _LEX and lex.is_given(t.word) and lex.zipf(t.word) < UNKNOWN_BELOW


def _strong_cue(text: str, prev: str, t: _Tok) -> bool:
    if prev == "you" and text[max(0, t.start - 12) : t.start].lower().rstrip(" ,").endswith("thank you"):
        prev = "thank"
    if prev in HONORIFICS or prev in PERSON_VERBS:
        return True
    if prev in GREETINGS and prev not in SIGN_OFF_WORDS:
        return True
    return _after_sign_off(text, t.start) and t.kind != _NEG


def _initial_is_name(text: str, t: _Tok, nxt: _Tok | None, run_end: int, lex: Lexicon) -> bool:
    """A capitalised word starting a sentence, where its capital says nothing."""
    if t.kind == _PLACE or t.kind == _KNOWN and nxt is None and lex.zipf(t.word) >= _COMMON:
        return False
    if t.kind == _KNOWN and nxt is not None:  # "Rain Nakamura", but "Send Mehmet", "Is Okonkwo"
        low = t.word.lower()
        plain = low not in VERB_BASES and low not in VERBS_AFTER and lex.zipf(low) < _FUNCTION_WORD
        return plain and nxt.kind in (_LEX, _UNKNOWN)
    if t.kind == _KNOWN:  # not everyday, not listed ("Yuki"): its verb says person
        return _cue_after(text, t, run_end)
    if t.kind == _LEX and lex.zipf(t.word) < _COMMON:
        return True
    if t.kind == _UNKNOWN and lex.zipf(t.word) < _RARE_START:
        return True
    if nxt is not None and t.word.lower() in VERBS_AFTER:
        # "Will Smith said", but "Can Tom join?": an auxiliary starting a question
        return nxt.kind in (_LEX, _UNKNOWN) and _past_after(text, run_end)
    if nxt is not None:
        return nxt.kind in (_LEX, _UNKNOWN)
    return _cue_after(text, t, run_end)


def _past_after(text: str, run_end: int) -> bool:
    m = _NEXT_WORDS.match(text, run_end)
    return m is not None and (m.group(1).lower() in _STATEMENT_VERBS or _past_tense(m.group(1).lower()))


def _cue_after(text: str, t: _Tok, run_end: int) -> bool:
    """The words after a one-word run make it a person: "Hope said", "Faith and Grace"."""
    if t.end < run_end and text[t.end] in "'’":
        return True  # possessive: "Sunniva's birthday"
    if _ANGLE_EMAIL.match(text, run_end):
        return True
    m = _NEXT_WORDS.match(text, run_end)
    if m is None:
        return False
    first, second = m.group(1).lower(), m.group(2)
    if first in VERBS_AFTER or _past_tense(first):
        return True
    return first in JOINERS and second is not None and second[:1].isupper()


def _past_tense(word: str) -> bool:
    """ "mowed", "texted": a past-tense verb (a known word ending in -ed)."""
    return len(word) >= 5 and word.endswith("ed") and lexicon().zipf(word) > 0


# Verbs after a name that make a statement of it, not a question ("Will Smith said").
_AUXILIARIES = "is was are were has had have will would can could should shall might must does did"
_STATEMENT_VERBS = VERBS_AFTER - frozenset(_AUXILIARIES.split())
_NEXT_WORDS = re.compile(r"[ \t]+([\w&'’]+)(?:[ \t]+(\w+))?")


def _absorb(words: list[_Tok], initial: bool) -> None:
    """A capitalised everyday word touching a name inside a sentence is part of it."""
    for order in (words, words[::-1]):
        for i in range(1, len(order)):
            a, b = order[i - 1], order[i]
            if a.name and not b.name and b.kind in (_KNOWN, _PLACE, _DEMONYM) and not (initial and b is words[0]):
                b.name = True


def _spans(toks: list[_Tok]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = end = -1
    for t in toks:
        if t.name:
            if start < 0:
                start = t.start
            end = t.end
        elif not t.particle:
            if start >= 0:
                out.append((start, end))
            start = -1
    if start >= 0:
        out.append((start, end))
    return out


def _sentence_start(text: str, start: int) -> bool:
    """Whether ``start`` begins a sentence (its capital then says nothing)."""
    i = start
    while i > 0 and text[i - 1] in " \t\"'“‘(*-•":
        i -= 1
    return i == 0 or text[i - 1] in ".!?\n:;>"


def _word_before(text: str, start: int) -> str:
    """The word right before ``start``, lowercased, without a trailing '.' or ':'."""
    i = start
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    j = i
    while j > 0 and text[j - 1] in ".:,":
        j -= 1
    if j < i and text[j:i] == ",":
        return ","
    k = j
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "-'’"):
        k -= 1
    return text[k:j].lower()


def _after_sign_off(text: str, start: int) -> bool:
    """Whether ``start`` begins a line right after a short sign-off line."""
    nl = text.rfind("\n", max(0, start - 40), start)
    if nl < 0 or text[nl + 1 : start].strip(" \t"):
        return False
    prev = text.rfind("\n", max(0, nl - 40), nl)
    line = text[prev + 1 : nl]
    return len(line) <= 32 and _SIGN_OFF.search(line + "\n") is not None


# -- lowercase (or upper case) typing ---------------------------------------------------------

_SPLIT = str.maketrans({ch: " " for ch in "!\"#$%&()*+,./:;<=>?@[\\]^_`{|}~“”‘«»…–—\t\n\r"})


def _lowercase_names(text: str, lex: Lexicon) -> list[tuple[int, int]]:
    """Listed names typed without a capital, and unknown words after a verb of address."""
    low = text.lower()
    if len(low) != len(text):
        return []
    words = set(low.translate(_SPLIT).split())
    hits = ({w.strip("'’-") for w in words} & lex.rare_names) - _NEVER
    hits.update(w for w in words if not w.isascii() and lex.is_rare_name(w))
    out: list[tuple[int, int]] = []
    for w in hits:
        out.extend(_occurrences(text, low, w))
    out.extend((a, b) for a, b, _ in _after_lower_cue(text, low, LOWER_CUES, words, lex))
    found = _after_lower_cue(text, low, LOWER_QUESTION_CUES, words, lex)
    out.extend((a, b) for a, b, cue in found if _sentence_start(text, cue))
    out.extend(_before_and(text, out, lex))
    return out


_BEFORE_AND = re.compile(r"([^\W\d_][\w'’-]*)[ \t]*(?:,|and|&)[ \t]*$")


def _before_and(text: str, found: list[tuple[int, int]], lex: Lexicon) -> list[tuple[int, int]]:
    """ "sanjay and divya": a lowercase word joined to a name found is a name too, unless
    it is an everyday word."""
    out: list[tuple[int, int]] = []
    for a, _ in found:
        m = _BEFORE_AND.search(text, max(0, a - 40), a)
        if m is None or not m.group(1).islower():
            continue
        word = m.group(1)
        if len(word) >= 3 and word not in _NEVER and _lower_name_like(word, lex):
            out.append((m.start(1), m.end(1)))
    return out


def _lower_name_like(word: str, lex: Lexicon) -> bool:
    listed = lex.is_name(word) and lex.zipf(word) < _LOWER_LISTED_BELOW
    return listed or not lex.known_word(word, UNKNOWN_BELOW)


def _occurrences(text: str, low: str, word: str) -> list[tuple[int, int]]:
    """Whole-word occurrences of ``word`` written all lowercase or all upper case."""
    out: list[tuple[int, int]] = []
    i = low.find(word)
    while i != -1:
        j = i + len(word)
        if (i == 0 or not low[i - 1].isalnum()) and (j == len(low) or not low[j].isalnum()):
            written = text[i:j]
            if written.islower() or (written.isupper() and _shouted(text, i, j)):
                out.append((i, j))
        i = low.find(word, j)
    return out


def _shouted(text: str, i: int, j: int) -> bool:
    """An upper-case word on a line without lowercase letters (not an acronym: "IBAN")."""
    a = text.rfind("\n", 0, i) + 1
    b = text.find("\n", j)
    line = text[a : len(text) if b < 0 else b]
    return not any(ch.islower() for ch in line) and sum(w.isalpha() for w in line.split()) >= 3


_NEXT_LOWER = re.compile(r"[ \t]+([^\W\d_][\w'’-]*)")


def _after_lower_cue(
    text: str, low: str, cues: frozenset[str], words: set[str], lex: Lexicon
) -> list[tuple[int, int, int]]:
    """(start, end, cue start) of lowercase words after a cue word that may be names."""
    out: list[tuple[int, int, int]] = []
    for cue in cues & words:
        i = low.find(cue)
        while i != -1:
            j = i + len(cue)
            m = _NEXT_LOWER.match(low, j) if i == 0 or not (low[i - 1].isalnum() or low[i - 1] == "-") else None
            if m is not None and _lower_candidate(text, m, lex):
                out.append((m.start(1), m.end(1), i))
            i = low.find(cue, j)
    return out


def _lower_candidate(text: str, m: re.Match[str], lex: Lexicon) -> bool:
    word, a, b = m.group(1), m.start(1), m.end(1)
    if not text[a:b].islower() or len(word) < 3 or word in _NEVER or word in DETERMINERS:
        return False
    return _lower_name_like(word, lex)


def _merge(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans, and spans only a space or a particle apart, become one."""
    if len(spans) <= 1:
        return spans
    spans.sort()
    out = [spans[0]]
    for a, b in spans[1:]:
        pa, pb = out[-1]
        gap = text[pb:a]
        if a <= pb or (len(gap) <= 12 and _JOIN_GAP.fullmatch(gap)):
            out[-1] = (pa, max(pb, b))
        else:
            out.append((a, b))
    return out


_JOIN_GAP = re.compile(rf"[ \t]+(?:{_PARTICLES}[ \t]+)*")
