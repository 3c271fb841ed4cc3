"""Contact names in a text: the user's own contacts, found without NER.

A contact's name is split into parts at spaces and hyphens ("Liisa Belvedere-Kask":
liisa, belvedere, kask). The whole name and every run of two or more of its parts
("belvedere kask", "Anne-Sophie", "de wit") match in any case, with any spaces or
hyphens between the parts ("belvedere  kask", "BELVEDERE-KASK"). Single parts match
capitalised, or in any case unless the part is also an everyday word ("Will", not
"will"); a part directly followed by another capitalised name ("Bob Dylan") belongs to
someone else.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

_PUNCT = string.punctuation + "‘’“”«»–—…"
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys(_PUNCT, " "))
_SPLIT = re.compile(r"[\s\-‐‑–]+")
_SEPARATORS = " \t\r\n-‐‑–"
_PARTICLES = frozenset(["de", "da", "di", "del", "della", "der", "den", "van", "von", "le", "la", "du", "dos", "das", "ter", "ten", "bin", "ibn", "al", "el"])


# Name parts that are also everyday words: matched only capitalised ("Will", not "will").
_COMMON_WORDS = frozenset(
    """
    will bill mark rose may june april august grace hope faith joy art jack pat sue dawn
    frank amber summer don ray rich rob sky autumn iris lily daisy holly ivy ruby pearl
    crystal jade penny victor buck chase cliff dale dean drew earl glen grant hunter
    lane max miles norm page reed rod rusty sandy stone terry wade ward wood young king
    white black brown green gray grey long little hill park price rice bell cook baker
    miller smith turner mason fisher taylor porter parker walker sharp good love guy van
    von del der den day way field banks hall booth street
    """.split()  # noqa: SIM905
)


def _everyday(part: str) -> bool:
    return part.lower() in _COMMON_WORDS


@lru_cache(maxsize=256)
def _contact_index(
    names: tuple[str, ...],
) -> tuple[dict[str, tuple[tuple[str, ...], ...]], dict[str, tuple[str, bool]]]:
    """Phrases (two or more parts, lowercased), filed by their first part longest first;
    and single parts: lowercased -> (as written, whether any case may match)."""
    phrases: set[tuple[str, ...]] = set()
    parts: dict[str, tuple[str, bool]] = {}
    singles = set()
    for name in names:
        words = [w for w in _SPLIT.split(name.strip()) if w]
        if not words or len(" ".join(words)) < 2:
            continue
        low = tuple(w.lower() for w in words)
        if len(words) == 1:
            singles.add(low[0])
            continue
        for i in range(len(low)):
            for j in range(i + 2, len(low) + 1):
                if not all(w in _PARTICLES for w in low[i:j]):
                    phrases.add(low[i:j])
        for w in words:
            if len(w) >= 3 and w[0].isupper() and w.lower() not in _PARTICLES:
                parts.setdefault(w.lower(), (w, not _everyday(w)))
    for s in singles:
        phrases.add((s,))
    index: dict[str, list[tuple[str, ...]]] = {}
    for p in sorted(phrases, key=lambda p: (len(" ".join(p)), len(p)), reverse=True):
        index.setdefault(p[0], []).append(p)
    for s in singles:
        parts.pop(s, None)
    return {k: tuple(v) for k, v in index.items()}, parts


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _bounded(text: str, a: int, b: int) -> bool:
    return (a == 0 or not _is_word_char(text[a - 1])) and (
        b == len(text) or not _is_word_char(text[b])
    )


def _phrase_end(low: str, i: int, phrase: tuple[str, ...]) -> int | None:
    """End of ``phrase`` at ``i`` in ``low``, any spaces or hyphens between its parts."""
    pos = i
    for n, part in enumerate(phrase):
        if n:
            j = pos
            while j < len(low) and low[j] in _SEPARATORS:
                j += 1
            if j == pos:
                return None
            pos = j
        if not low.startswith(part, pos):
            return None
        pos += len(part)
    return pos


def _other_surname_follows(text: str, j: int) -> bool:
    """``text[j:]`` starts with " Xy...": the part belongs to another person ("Bob Dylan")."""
    return (
        j + 2 < len(text)
        and text[j] == " "
        and text[j + 1].isupper()
        and text[j + 2].isalpha()
        and text[j + 2].islower()
    )


def _lowered(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):  # case folding changed lengths: fold char by char
        low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return low


def find_contacts(text: str, names: tuple[str, ...], skip: set[int]) -> list[tuple[int, int]]:
    """(start, end) of contact names in ``text``; occurrences starting in ``skip`` are ignored."""
    out: list[tuple[int, int]] = []
    index, parts = _contact_index(names)
    low = _lowered(text)
    if len(index) + len(parts) > 12 and len(text) > 256:
        # One pass over the text instead of one substring search per name.
        words = set(low.translate(_PUNCT_TO_SPACE).split())
        firsts = [k for k in index if k in words or not k.isalnum() and k in low]
        part_keys = [p for p in parts if p in words or not p.isalnum() and p in low]
    else:
        firsts = [k for k in index if k in low]
        part_keys = [p for p in parts if p in low]
    taken = set(skip)
    for first in firsts:
        i = low.find(first)
        while i != -1:
            if i not in taken:
                for phrase in index[first]:
                    j = _phrase_end(low, i, phrase)
                    if j is not None and _bounded(text, i, j):
                        out.append((i, j))
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
                out.append((i, j))
            i = low.find(key, j)
    return out
