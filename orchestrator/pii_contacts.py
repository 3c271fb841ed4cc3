"""Contact names in a text: the user's own contacts, found without NER.

Full names match in any case. Single first or last names match capitalised, or in any
case unless the name is also an everyday word ("Will", not "will"); a part directly
followed by another capitalised name ("Bob Dylan") belongs to someone else.
"""

from __future__ import annotations

import string
from functools import lru_cache

_PUNCT = string.punctuation + "‘’“”«»–—…"
_PUNCT_TO_SPACE = str.maketrans(dict.fromkeys(_PUNCT, " "))


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


@lru_cache(maxsize=256)
def _contact_index(
    names: tuple[str, ...],
) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, tuple[str, bool]]]:
    """Full names, and single name parts.

    Full names (lowercased) are filed by their first word, then by the two characters
    that follow it ("" for one-word names), longest first, so an occurrence of "bob"
    only tries the names that can continue the way the text does. Parts map
    lowercased -> (as written, whether any case may match).
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
    filed: dict[str, dict[str, tuple[str, ...]]] = {}
    for first, full_names in index.items():
        by_next: dict[str, list[str]] = {}
        for name in full_names:
            by_next.setdefault(name[len(first) : len(first) + 2], []).append(name)
        filed[first] = {k: tuple(v) for k, v in by_next.items()}
    return filed, parts


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


def find_contacts(text: str, names: tuple[str, ...], skip: set[int]) -> list[tuple[int, int]]:
    """(start, end) of contact names in ``text``; occurrences starting in ``skip`` are ignored."""
    out: list[tuple[int, int]] = []
    index, parts = _contact_index(names)
    low = text.lower()
    if len(low) != len(text):  # case folding changed lengths: fold char by char
        low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    if len(index) + len(parts) > 12 and len(text) > 256:
        # One pass over the text instead of one substring search per name.
        words = set(low.translate(_PUNCT_TO_SPACE).split())

        def present(key: str) -> bool:
            return key in words if key.isalnum() else key in low

        firsts = [k for k in index if present(k)]
        part_keys = [p for p in parts if present(p)]
    else:
        firsts = [k for k in index if k in low]
        part_keys = [p for p in parts if p in low]
    taken = set(skip)
    for first in firsts:
        i = low.find(first)
        while i != -1:
            if i in taken:
                i = low.find(first, i + 1)
                continue
            filed = index[first]
            after = low[i + len(first) : i + len(first) + 2]
            for name in (*filed.get(after, ()), *filed.get("", ())) if after else filed.get("", ()):
                j = i + len(name)
                if low.startswith(name, i) and _bounded(text, i, j):
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
