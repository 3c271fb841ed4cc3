"""Person names that are not among the user's contacts, found without NER.

A name is a run of capitalised words (with the particles of European surnames between
them) that some evidence marks as a person:

* an honorific before it ("Dr. Ingrid Voskuijlen", "Herr Brandt");
* a greeting or a sign-off around it ("Dear Halvard,", "Regards,\\nDana");
* a verb of address before a two-word name ("email Halvard Quennell");
* a known given name as its first word ("Dana Okafor");
* an e-mail address in angle brackets after it ("Bob Jones <bob@example.com>").

One regular-expression pass finds the capitalised runs; the evidence is a few set
lookups per run, so a 4 KB prompt costs tens of microseconds. Honorifics and cue words
are not part of the span: "Dr. [PERSON_NAME_1]" keeps the sense of the text.
"""

from __future__ import annotations

import re

_PARTICLES = r"(?:van|von|der|den|de|du|da|di|del|della|le|la|ter|ten|op|bin|al)"
_CAP = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:[-'’][A-ZÀ-ÖØ-Þ]?[a-zß-öø-ÿ]+)*"
# A run of one to four capitalised words, particles allowed between them.
# (No look-behind: it triples the cost of the scan; the boundary is checked per match.)
_RUN = re.compile(rf"{_CAP}(?:[ \t]+(?:{_PARTICLES}[ \t]+)*{_CAP}){{0,3}}")
_WORD = re.compile(r"[\w'’-]+")

_HONORIFICS = frozenset(
    """
    dr mr mrs ms miss mx prof sir dame lady lord herr frau mme mlle monsieur madame dhr
    mevr sr sra srta dott
    """.split()  # noqa: SIM905
)
_GREETINGS = frozenset(
    """
    dear hi hello hey hiya hallo bonjour salut beste liebe lieber cher chère ciao hola
    thanks thank cheers regards love best yours sincerely
    """.split()  # noqa: SIM905
)
# Verbs that take a person: one capitalised word after them is a name ("ask Tobias").
_PERSON_VERBS = frozenset(
    """
    email e-mail call phone ring text message tell ask remind meet invite thank cc bcc
    ping reach
    """.split()  # noqa: SIM905
)
# Before a two-word capitalised run: someone is being written to, called or met.
_ADDRESS_VERBS = _PERSON_VERBS | frozenset(
    """
    mail meeting contact visit see pay paid married marry dating date introduce with
    from to by for and named called signed
    """.split()  # noqa: SIM905
)
# Capitalised words that do not name a person, even after a cue.
_NOT_NAMES = frozenset(
    """
    team all everyone everybody sir sirs madam madame customer customers friends friend
    there world colleagues folks guys both you again so ok okay yes no please the a an
    monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december today tomorrow new
    san santa los las saint st mount lake north south east west upper lower great
    customer service support sales accounting finance hr it team office department
    university college school hospital bank street road avenue city town county google
    microsoft apple amazon facebook meta netflix linkedin github slack zoom teams python
    java rust linux windows excel word outlook gmail iphone android english french
    german dutch spanish italian chinese japanese european american inc ltd llc gmbh
    corp co group bank news studio studios services systems labs technologies foundation
    institute airlines motors media press records partners i i'm i'll i've i'd we our my
    your his her their its this that these those what who when where why how which if
    then but or and also just not
    """.split()  # noqa: SIM905
)
# Given names common across English, German, Dutch, French, Spanish, Italian, Nordic and
# other languages, leaving out the ones that are everyday English words (Will, May,
# Rose, Mark, ...): only a capitalised surname after one makes a name.
_GIVEN = frozenset(
    """
    aaron abdul abigail adam adrian agnes ahmed aisha alan albert alejandro alex
    alexander alexandra alfred ali alice alicia alison amanda amelia amir amy ana andrea
    andreas andrew andy angela anna anne annika anthony antoine antonio arjun arne
    astrid axel barbara beatrice ben benjamin bernard bernd bjorn björn brian bruno
    camille carla carlos carmen caroline catherine cecilia charles charlotte chen chloe
    christian christina christine christopher claire clara claude claudia colin conor
    daniel daniela dana david deborah denise dennis diana diego dimitri dmitri dominik
    dominique donna dorothy edward eleanor elena elif elisabeth elizabeth ella emil
    emily emma enrique eric erik esther ethan eva fabian fatima felix fernando filip
    fiona florian francesca francesco françois frederik gabriel gabriele george georg
    gerard gerhard giulia giuseppe greta gustav hannah hans harald harry halvard
    heinrich helen helena helga henrik henry hugo ian ibrahim ilse ines ingrid irene
    isabel isabella isabelle ivan jakob james jan jana jane janet jasper javier jean
    jennifer jens jeroen jessica joan johan johanna johannes john jonas jonathan jorge
    josé joseph josef juan julia julian julie jürgen karen karin karl katarina katharina
    kathleen katie kevin klaus kristin lars laura lauren laurent lea leila lena leon
    linda lisa lorenzo louis louise lucas lucia luis luka lukas magnus manuel marco
    margaret margarethe maria marie marina mario marisol martha martin mary mathias
    matteo matthew matthias maximilian mehmet melanie mia michael michel michelle miguel
    mikhail mohamed mohammed monika nadia natalia nathalie nicolas nicole niels nikolai
    nina noah nora oliver olga olivia omar oscar pablo patrick paul paula pedro peter
    petra philip philippe pierre pieter priya priyanka rachel rafael raphael rebecca
    richard robert roberto rodrigo rosa ruth samuel sandra sara sarah sebastian sergei
    sergio simon simone sofia sophie stefan stefanie stephanie steven susan svetlana
    sven tanja thomas tim timothy tobias tomas tomás ursula valentina vanessa vera
    veronica viktor vincent walter wei wolfgang xavier yasmin yusuf zahra zoe
    """.split()  # noqa: SIM905
)
_SIGN_OFF = re.compile(
    r"(?:regards|best|wishes|thanks|thank you|cheers|sincerely|love|yours|groeten|grüße|gruß|cordialement)"
    r"[ \t]*,?[ \t]*\r?\n[ \t]*$",
    re.IGNORECASE,
)
_ANGLE_EMAIL = re.compile(r"[ \t]*<[^<>@\s]+@")


def _sentence_start(text: str, start: int) -> bool:
    """Whether ``start`` begins a sentence (its capital then says nothing)."""
    i = start
    while i > 0 and text[i - 1] in " \t\"'“‘(":
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
    k = j
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "-'’"):
        k -= 1
    return text[k:j].lower()


_SKIP_LEADING = _NOT_NAMES | _GREETINGS | _HONORIFICS | _ADDRESS_VERBS


def find_person_names(text: str) -> list[tuple[int, int]]:
    """Spans of person names in ``text`` (see the module docstring for the evidence)."""
    out: list[tuple[int, int]] = []
    n = len(text)
    for m in _RUN.finditer(text):
        base, end = m.start(), m.end()
        if (
            base
            and (text[base - 1].isalnum() or text[base - 1] in "@._")
            or end < n
            and (text[end].isalnum() or text[end] in "@_")
        ):
            continue
        run = m.group()
        if " " not in run and "\t" not in run:
            # One word, the common case (sentence starts): a cue before it or an
            # address after it, or nothing.
            if run.lower() not in _SKIP_LEADING and _single_is_name(text, base, end):
                out.append((base, end))
            continue
        tokens = [(base + w.start(), base + w.end(), w.group()) for w in _WORD.finditer(m.group())]
        lead = 0
        while lead < len(tokens) and tokens[lead][2].lower() in _SKIP_LEADING:
            lead += 1
        cue = tokens[lead - 1][2].lower() if lead else _word_before(text, base)
        if cue == "you" and text[max(0, base - 12) : base].lower().rstrip(" ,").endswith(
            "thank you"
        ):
            cue = "thank"
        words = []
        for tok in tokens[lead:]:
            if tok[2].lower() in _NOT_NAMES:
                break
            words.append(tok)
        while words and words[-1][2][0].islower():  # a trailing particle
            words.pop()
        if words and _is_name(text, words[0][0], words[-1][1], [w[2] for w in words], cue):
            out.append((words[0][0], words[-1][1]))
    return out


def _single_is_name(text: str, start: int, end: int) -> bool:
    cue = _word_before(text, start)
    if cue == "you" and text[max(0, start - 12) : start].lower().rstrip(" ,").endswith("thank you"):
        cue = "thank"
    if cue in _HONORIFICS or cue in _GREETINGS and cue not in _SIGN_OFF_WORDS:
        return True
    if cue in _PERSON_VERBS and not _sentence_start(text, start):
        return True
    if text.startswith("<", end) or text.startswith(" <", end):
        return _ANGLE_EMAIL.match(text, end) is not None
    if "\n" in text[max(0, start - 3) : start]:
        return _is_name(text, start, end, [text[start:end]], "")
    return False


def _after_sign_off(text: str, start: int) -> bool:
    """Whether ``start`` begins a line right after a short sign-off line."""
    nl = text.rfind("\n", max(0, start - 40), start)
    if nl < 0 or text[nl + 1 : start].strip(" \t"):
        return False
    prev = text.rfind("\n", max(0, nl - 40), nl)
    line = text[prev + 1 : nl]
    return len(line) <= 32 and _SIGN_OFF.search(line + "\n") is not None


_SIGN_OFF_WORDS = frozenset({"best", "love", "yours", "regards", "sincerely"})


def _is_name(text: str, start: int, end: int, words: list[str], cue: str) -> bool:
    two = sum(1 for w in words if w[0].isupper()) >= 2
    if cue in _HONORIFICS:
        return True
    if cue in _GREETINGS and cue not in _SIGN_OFF_WORDS:
        return True
    if two and (cue in _ADDRESS_VERBS or words[0].lower() in _GIVEN):
        return True
    if cue in _PERSON_VERBS and not _sentence_start(text, start):
        return True
    if _ANGLE_EMAIL.match(text, end):
        return True
    # A name alone at the end of its line after a sign-off ("Best regards,\nDana").
    if len(words) <= 3 and _after_sign_off(text, start):
        line_end = text.find("\n", end)
        return not text[end : len(text) if line_end < 0 else line_end].strip(" \t,.!")
    return False
