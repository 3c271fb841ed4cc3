"""Integers within bounds as a grammar: JSON Schema's ``minimum`` / ``maximum`` (and the
exclusive forms) on ``"type": "integer"``, which the schema converter otherwise ignores.

A range becomes alternatives of digit sequences, the classic construction: split the
range where the number of digits changes, then, digit by digit, into pieces whose every
position is a class (``[3-7]``) or a literal. Numbers have no leading zeros (JSON's own
rule); negative ranges are the positive ones with a ``-`` in front. An open end (no
minimum, no maximum) leaves the number of digits open on that side. The pieces are
rendered as GBNF (for llama.cpp's grammar sampler) and as a Python regex (the tests
check the regex against the range, then trust the identical GBNF).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: An atom is (text, lo, hi): ``text`` a literal digit string or a class like "0-9",
#: repeated lo..hi times (hi None: unbounded); a piece is a sequence of atoms.
Atom = tuple[str, int, int | None]
Piece = tuple[Atom, ...]


def bounds(schema: dict[str, object]) -> tuple[int | None, int | None]:
    """The inclusive integer bounds a schema sets (None: open)."""

    def num(key: str) -> float | None:
        v = schema.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    lo = num("minimum")
    hi = num("maximum")
    ex_lo, ex_hi = num("exclusiveMinimum"), num("exclusiveMaximum")
    low = None if lo is None else math.ceil(lo)
    high = None if hi is None else math.floor(hi)
    if ex_lo is not None:
        e = math.floor(ex_lo) + 1
        low = e if low is None else max(low, e)
    if ex_hi is not None:
        e = math.ceil(ex_hi) - 1
        high = e if high is None else min(high, e)
    return low, high


def _same_length(a: str, b: str) -> list[Piece]:
    """Pieces for a..b (as digit strings of one length, a <= b)."""
    if not a:
        return [()]
    if a == b:
        return [((a, 1, 1),)]
    n = len(a)
    if a[1:] == "0" * (n - 1) and b[1:] == "9" * (n - 1):
        first: Atom = (a[0], 1, 1) if a[0] == b[0] else (f"{a[0]}-{b[0]}", 1, 1)
        return [(first, ("0-9", n - 1, n - 1))] if n > 1 else [(first,)]
    if a[0] == b[0]:
        return [((a[0], 1, 1), *rest) for rest in _same_length(a[1:], b[1:])]
    pieces = [((a[0], 1, 1), *rest) for rest in _same_length(a[1:], "9" * (n - 1))]
    lo, hi = int(a[0]) + 1, int(b[0]) - 1
    if lo <= hi:
        mid: Atom = (str(lo), 1, 1) if lo == hi else (f"{lo}-{hi}", 1, 1)
        pieces.append((mid, ("0-9", n - 1, n - 1)) if n > 1 else (mid,))
    pieces += [((b[0], 1, 1), *rest) for rest in _same_length("0" * (n - 1), b[1:])]
    return pieces


def _non_negative(a: int, b: int | None) -> list[Piece]:
    """Pieces for a..b (b None: every integer from a), 0 <= a."""
    pieces: list[Piece] = []
    length = len(str(a))
    while b is None or a <= b:
        top = 10**length - 1
        if b is not None and b <= top:
            pieces += _same_length(str(a), str(b))
            return pieces
        pieces += _same_length(str(a), str(top))
        a, length = top + 1, length + 1
        if b is None:
            pieces.append((("1-9", 1, 1), ("0-9", length - 1, None)))
            return pieces
    return pieces


def pieces(lo: int | None, hi: int | None) -> list[Piece]:
    """Every integer in lo..hi (None: open) as pieces; [] for an empty range."""
    if lo is not None and hi is not None and lo > hi:
        return []
    out: list[Piece] = []
    if lo is None or lo < 0:  # the negative part: -x for x in max(1, -hi)..-lo
        x_lo = 1 if hi is None or hi >= 0 else -hi
        x_hi = None if lo is None else -lo
        out += [(("-", 1, 1), *p) for p in _non_negative(x_lo, x_hi)]
    if hi is None or hi >= 0:
        out += _non_negative(max(lo or 0, 0), hi)
    return out


def _reps(lo: int, hi: int | None) -> str:
    if (lo, hi) == (1, 1):
        return ""
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def gbnf(ps: Sequence[Piece]) -> str:
    def atom(a: Atom) -> str:
        text = f"[{a[0]}]" if "-" in a[0] and a[0] != "-" else f'"{a[0]}"'
        return text + _reps(a[1], a[2])

    return " | ".join(" ".join(atom(a) for a in p) for p in ps)


def regex(ps: Sequence[Piece]) -> str:
    def atom(a: Atom) -> str:
        text = f"[{a[0]}]" if "-" in a[0] and a[0] != "-" else a[0].replace("-", r"\-")
        return (f"(?:{text})" if len(text) > 1 and not text.startswith("[") else text) + _reps(a[1], a[2])

    return "|".join("".join(atom(a) for a in p) for p in ps)
