"""Word lists behind person-name detection: names, and how common a word is.

* **Names**: the given-name and surname lists of Faker's person providers (MIT; about
  80 locales: African, Arabic, South and East Asian, Slavic, Nordic, Romance, Germanic,
  Celtic, Turkic, Pacific ...), about 21,000 given names and 21,000 surnames in Latin
  script alone. Looked up case- and accent-folded ("Yilmaz" finds "Yılmaz").
* **Frequencies**: wordfreq's English list on the Zipf scale (a word seen once per
  million words is 3.0), to tell an everyday word ("hope", 5.4) from a rare one
  ("okonkwo", 1.9); and the common words of German, French, Spanish,
  Italian, Dutch and Portuguese (Zipf >= 3.8: their lists hold names too), so that a
  capitalised German noun is a known word.

Both come from packages on the index (``faker``, ``wordfreq``), read once, lazily and
thread-safely (``lexicon()``; the daemon loads them at start). Without the packages a
small built-in list of given names stands in, and every word counts as rare.
"""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Letters NFKD does not take apart.
_FOLD = str.maketrans(
    {"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ß": "ss", "æ": "ae", "œ": "oe", "’": "'"}
)
RARE_NAME_BELOW = 3.0  # a listed name rarer than this as a word is a name in lowercase too
_ENGLISH_MIN_ZIPF = 2.0  # rarer words count as unknown (Zipf 0)
_NO_FREQUENCIES_ZIPF = 5.0
_OTHER_MIN_ZIPF = 3.8  # a word this common in another language is a known word (names rarely are)
_OTHER_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt")
_PARTICLES = frozenset(["de", "da", "di", "del", "della", "der", "den", "van", "von", "le", "la", "du", "dos", "das", "ter", "ten", "bin", "ibn", "al", "el"])


def fold(word: str) -> str:
    """``word`` lowercased without accents: the key of the name lists."""
    low = word.lower().translate(_FOLD)
    if low.isascii():
        return low
    return "".join(ch for ch in unicodedata.normalize("NFKD", low) if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Lexicon:
    """Name lists (folded) and word frequencies."""

    given: frozenset[str]
    surnames: frozenset[str]
    zipf10: dict[str, int]  # English word (lowercase) -> Zipf frequency x 10
    known_elsewhere: frozenset[str]  # common words of other languages (lowercase)
    countries: frozenset[str]  # English country names, lowercase
    complete: bool  # False: the packages were missing, a small built-in list stands in
    rare_names: frozenset[str] = frozenset()  # listed names that are no common word
    country_words: frozenset[str] = frozenset()  # first words of country names

    def __post_init__(self) -> None:
        names = self.given | self.surnames
        rare = {n for n in names if len(n) >= 3 and n.isalpha() and self.zipf(n) < RARE_NAME_BELOW}
        object.__setattr__(self, "rare_names", frozenset(rare - self.countries))
        object.__setattr__(self, "country_words", frozenset(c.split()[0] for c in self.countries if c))

    def is_name(self, word: str) -> bool:
        """Whether ``word`` (any case) is a listed given name or surname."""
        key = fold(word)
        return key in self.given or key in self.surnames

    def is_given(self, word: str) -> bool:
        return fold(word) in self.given

    def is_rare_name(self, word: str) -> bool:
        """A listed name that is no common word (so written in lowercase it is a name)."""
        return fold(word) in self.rare_names

    def zipf(self, word: str) -> float:
        """English Zipf frequency of ``word`` (0 for unknown or rare words). Without the
        frequency list every word counts as an everyday one, so only cues find names."""
        if not self.zipf10:
            return _NO_FREQUENCIES_ZIPF
        low = word.lower()
        z = self.zipf10.get(low)
        if z is None and not low.isascii():
            z = self.zipf10.get(fold(low))
        return (z or 0) / 10

    def known_word(self, word: str, min_zipf: float) -> bool:
        """A word of at least ``min_zipf`` in English, or common in another language."""
        return self.zipf(word) >= min_zipf or word.lower() in self.known_elsewhere


_lock = threading.Lock()
_loaded: Lexicon | None = None


def lexicon() -> Lexicon:
    """The lists, loaded on first use (about a second; the daemon does it at start)."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded


def _load() -> Lexicon:
    before = set(sys.modules)
    given, surnames, countries = _faker_lists()
    # The provider modules hold far more than the names (formats, weights): let them go.
    for name in set(sys.modules) - before:
        if name.startswith("faker.providers."):
            del sys.modules[name]
    gc.collect()
    zipf10, elsewhere = _frequencies()
    complete = bool(given) and bool(zipf10)
    if not given:
        from orchestrator.pii_given import GIVEN

        given = {fold(g) for g in GIVEN}
    if not complete:
        log.warning("person-name lists incomplete (faker or wordfreq missing): names are found by cues only")
    return Lexicon(
        frozenset(given), frozenset(surnames), zipf10, frozenset(elsewhere), frozenset(countries), complete
    )


def _names_in(values: Iterable[object]) -> Iterator[str]:
    """Single-word names from a provider list (multi-word entries split, particles out)."""
    for v in values:
        if not isinstance(v, str):
            continue
        for part in v.replace("-", " ").split():
            part = part.strip(".,")
            if len(part) >= 2 and part.lower() not in _PARTICLES:
                yield fold(part)
        if "-" in v:
            yield fold(v.strip())


def _list_kind(attr: str, given: set[str], surnames: set[str]) -> set[str] | None:
    """Which set a provider list feeds: ``first_names_female``, ``first_romanized_names``,
    ``middle_names`` are given names; ``last_names``, ``unisex_last_names`` surnames."""
    if "names" not in attr or any(x in attr for x in ("kana", "pairs", "language", "format", "prefix", "suffix")):
        return None
    if attr.startswith(("first", "middle")):
        return given
    return surnames if "last" in attr else None


def _faker_lists() -> tuple[set[str], set[str], set[str]]:
    """Given names, surnames (folded) and English country names (lowercase)."""
    try:
        import faker.providers.address.en as address
        from faker.providers import person
    except ImportError:
        return set(), set(), set()
    countries = {c.lower() for c in getattr(address.Provider, "countries", ()) if isinstance(c, str)}
    given: set[str] = set()
    surnames: set[str] = set()
    for info in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{info.name}"), "Provider", None)
        for attr in dir(provider):
            into = _list_kind(attr, given, surnames)
            values = getattr(provider, attr, None) if into is not None else None
            if into is not None and isinstance(values, (list, tuple, dict, set, frozenset)):
                into.update(_names_in(values))
    return given, surnames, countries


def _frequencies() -> tuple[dict[str, int], set[str]]:
    try:
        import wordfreq
    except ImportError:
        return {}, set()
    files = wordfreq.available_languages("large")
    # A list's i-th bin holds the words of -i centibels: Zipf (900 - i) / 100.
    zipf10: dict[str, int] = {}
    for i, words in enumerate(wordfreq.read_cBpack(files["en"])[: int(900 - _ENGLISH_MIN_ZIPF * 100)]):
        z = (900 - i) // 10
        for w in words:
            zipf10.setdefault(w, z)
    elsewhere: set[str] = set()
    best = wordfreq.available_languages("best")
    for lang in _OTHER_LANGUAGES:
        path = files.get(lang) or best.get(lang)
        if path:
            for words in wordfreq.read_cBpack(path)[: int(900 - _OTHER_MIN_ZIPF * 100)]:
                elsewhere.update(words)
    return zipf10, elsewhere
