"""Bounds on the JSON schemas apps send and on the grammars built from them.

A schema becomes a GBNF grammar (``common.schema_grammar``) that llama.cpp parses and
runs. Small schemas can ask for huge work: ``{"type": "string", "maxLength": 100000}``
(40 bytes) used to become 100,000 nested groups, which overflowed the stack of
llama.cpp's recursive grammar parser and killed the process; ``minLength: 10000000``
became a 95 MB grammar. So every schema is bounded before it is parsed, checked or
converted, cheapest test first:

1. its size in bytes (``MAX_SCHEMA_BYTES``), before JSON parsing;
2. its shape (``check_schema_tree``): nesting depth, number of JSON values, properties
   per object, enum values, every repetition count (``minLength``/``maxLength``,
   ``minItems``/``maxItems``, ``minProperties``..., regex quantifiers ``{m,n}`` in
   ``pattern``) alone and summed over the schema, pattern length and group nesting;
3. the grammar it produces (``common.gbnf.check_grammar``): bytes, rules llama.cpp will
   create, group nesting and the recursion of llama.cpp's left-recursion check.

All limits live here, named; errors are ``InvalidArgument`` naming the field (and the
nested path inside the schema where there is one) and the rule with its limit.

Repetitions: llama.cpp expands ``x{m,n}`` into ``n - m`` grammar rules and refuses more
than 2000 (its ``MAX_REPETITION_THRESHOLD``; a larger maximum silently becomes
unbounded), so one count is at most ``MAX_REPETITION`` and a schema's counts together
at most ``MAX_TOTAL_REPETITION`` (each costs a rule; a model answer is a few thousand
characters at most anyway).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from common.errors import InvalidArgument

# -- the schema document ------------------------------------------------------------------
MAX_SCHEMA_BYTES = 16 * 1024  # compact JSON text, UTF-8
MAX_SCHEMA_DEPTH = 32  # nested JSON objects/arrays (an object property costs two levels)
MAX_SCHEMA_NODES = 4096  # JSON values of every kind in the document
MAX_PROPERTIES = 256  # entries of one properties / patternProperties / $defs / required
MAX_ENUM_VALUES = 256  # values of one enum
MAX_REPETITION = 1000  # any one count keyword or regex quantifier bound
MAX_TOTAL_REPETITION = 4000  # all repetitions of one schema together
MAX_PATTERN_CHARS = 1024  # one regular expression
MAX_PATTERN_NESTING = 16  # groups inside groups in one regular expression

# -- the grammar (checked in common.gbnf) --------------------------------------------------
MAX_GRAMMAR_BYTES = 256 * 1024  # GBNF text
MAX_GRAMMAR_RULES = 8192  # rules llama.cpp creates: named, groups, repetition expansions
MAX_GRAMMAR_ELEMENTS = 131072  # grammar elements (characters, classes, references) in them
# llama.cpp's parser recurses once per nested group, ~455 bytes of stack per level
# (measured: an 8 MiB thread crashes at ~18,600 levels, 1 MiB at ~2,300, 256 KiB at ~560);
# 64 levels need ~29 KiB: a margin of ~280x on the 8 MiB default, ~19x on 256 KiB.
MAX_GRAMMAR_NESTING = 64
# Its left-recursion check recurses along chains of references that may be empty, ~130
# bytes a level (an 8 MiB thread crashes at ~65,000, 256 KiB at ~2,000): 1,024 levels
# need ~133 KiB, a margin of ~60x on the default thread stack.
MAX_GRAMMAR_RECURSION = 1024
# ...and that check has no memory of rules it saw (it can take exponential time): the
# number of its steps is bounded too.
MAX_GRAMMAR_CHECK_STEPS = 200_000

# -- the cache of converted grammars ---------------------------------------------------------
GRAMMAR_CACHE_BYTES = 4 * 1024 * 1024  # schema text + grammar text of every cached entry

# Keywords whose value is a count of repeated things in an answer.
COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains")
_PAIRS = (("minLength", "maxLength"), ("minItems", "maxItems"), ("minProperties", "maxProperties"), ("minContains", "maxContains"))
# Counts the converter turns into grammar repetitions (the others only validate); a
# schema has either the string or the array pair.
_GRAMMAR_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
# Keywords whose value is a map of names to subschemas, a subschema, or a list of them.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = (
    "additionalProperties", "unevaluatedProperties", "propertyNames", "items", "additionalItems",
    "unevaluatedItems", "contains", "not", "if", "then", "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,63}")
_QUANTIFIER = re.compile(r"\{\s*(\d*)\s*(,?)\s*(\d*)\s*\}")


def check_schema_bytes(text: str, field: str) -> None:
    """The first check of a schema sent as JSON text: its size, before it is parsed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEMA_BYTES:
        raise InvalidArgument(field, f"must be at most {MAX_SCHEMA_BYTES} bytes (got {size})")


def check_parsed_size(value: object, field: str) -> None:
    """The first check of a schema that arrived parsed (inside an HTTP body): a lower
    bound of its JSON size, computed without recursion and stopping as soon as it is
    over ``MAX_SCHEMA_BYTES``, so a 1.5 MB schema costs as much as a 16 KB one."""
    size, todo = 0, [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            size += 2 + 2 * len(v)  # braces, a colon and a comma (or brace) per entry
            for k, x in v.items():
                size += len(k) + 2 if isinstance(k, str) else 1
                todo.append(x)
        elif isinstance(v, list):
            size += 2 + len(v)
            todo.extend(v)
        elif isinstance(v, str):
            size += len(v) + 2
        else:
            size += 1
        if size > MAX_SCHEMA_BYTES:
            raise InvalidArgument(field, f"must be at most {MAX_SCHEMA_BYTES} bytes as JSON")


def path_of(field: str, parts: tuple[str | int, ...]) -> str:
    """``field`` followed by a path inside the schema: ``.name`` for plain names,
    ``[3]`` for list positions, ``["odd key"]`` (shortened) for any other key."""
    out = [field]
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _NAME.fullmatch(p):
            out.append(f".{p}")
        else:
            out.append('["' + ascii(p[:32])[1:-1] + '"]')
    return "".join(out)


def check_schema_tree(schema: Mapping[str, Any], field: str) -> None:
    """The shape of a parsed schema against the limits above (iterative: a deep
    document fails on its depth, never on Python's recursion limit)."""
    total = _Total(field)
    todo: list[tuple[object, tuple[str | int, ...], bool]] = [(schema, (), True)]  # (value, path, is a schema)
    nodes = 0
    while todo:
        value, path, is_schema = todo.pop()
        nodes += 1
        if nodes > MAX_SCHEMA_NODES:
            raise InvalidArgument(field, f"at most {MAX_SCHEMA_NODES} JSON values in a schema")
        if len(path) > MAX_SCHEMA_DEPTH:
            raise InvalidArgument(field, f"nested too deep: at most {MAX_SCHEMA_DEPTH} levels of objects and arrays")
        if isinstance(value, dict):
            if is_schema:
                _check_keywords(value, path, field, total)
            todo.extend(_children(value, path, is_schema))
        elif isinstance(value, list):
            todo.extend((x, (*path, i), False) for i, x in enumerate(value))


class _Total:
    """The repetitions a schema asks for, summed."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.count = 0

    def add(self, n: int, where: str) -> None:
        self.count += n
        if self.count > MAX_TOTAL_REPETITION:
            raise InvalidArgument(where, f"the schema's repetition counts (lengths, item counts, pattern quantifiers) add up to more than {MAX_TOTAL_REPETITION}")


def _children(node: dict[str, Any], path: tuple[str | int, ...], is_schema: bool) -> list[tuple[object, tuple[str | int, ...], bool]]:
    """A node's values to visit, each marked whether it is a subschema (keywords are
    only read in subschemas: ``"default": {"maxLength": 10**9}`` is data)."""
    out: list[tuple[object, tuple[str | int, ...], bool]] = []
    for key, value in node.items():
        here = (*path, key)
        if is_schema and key in _SCHEMA_MAPS and isinstance(value, dict):
            out.append(({}, here, False))  # the map itself counts as a value and a level
            out.extend((sub, (*here, name), True) for name, sub in value.items())
        elif is_schema and key in _SCHEMA_LISTS and isinstance(value, list):
            out.append(({}, here, False))
            out.extend((sub, (*here, i), True) for i, sub in enumerate(value))
        else:
            out.append((value, here, is_schema and key in _SCHEMA_ONE))
    return out


def _check_keywords(node: dict[str, Any], path: tuple[str | int, ...], field: str, total: _Total) -> None:
    for key in COUNT_KEYWORDS:
        n = node.get(key)
        if _number(n) and n > MAX_REPETITION:
            raise InvalidArgument(path_of(field, (*path, key)), f"must be at most {MAX_REPETITION}")
    for lo, hi in _PAIRS:
        a, b = node.get(lo), node.get(hi)
        if _number(a) and _number(b) and a > b:
            raise InvalidArgument(path_of(field, (*path, lo)), f"must be at most {hi} ({a} > {b}): no answer could match")
    counts = [int(node[k]) for k in _GRAMMAR_COUNTS if _number(node.get(k))]
    if counts:
        total.add(max(0, *counts), path_of(field, path))
    for key in ("properties", "patternProperties", "$defs", "definitions", "required", "dependentRequired"):
        entries = node.get(key)
        if isinstance(entries, (dict, list)) and len(entries) > MAX_PROPERTIES:
            raise InvalidArgument(path_of(field, (*path, key)), f"at most {MAX_PROPERTIES} entries")
    enum = node.get("enum")
    if isinstance(enum, list) and len(enum) > MAX_ENUM_VALUES:
        raise InvalidArgument(path_of(field, (*path, "enum")), f"at most {MAX_ENUM_VALUES} values")
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        total.add(check_pattern(pattern, path_of(field, (*path, "pattern"))), path_of(field, (*path, "pattern")))
    names = node.get("patternProperties")
    if isinstance(names, dict):
        for name in names:
            check_pattern(name, path_of(field, (*path, "patternProperties", name)))


def _number(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_pattern(pattern: str, field: str) -> int:
    """A regular expression's length, group nesting and quantifier bounds; returns the
    repetitions it asks for (the sum of its quantifiers' bounds, nested ones multiplied).

    Conservative: every ``{...}`` of digits and a comma outside a character class and
    not escaped is read as a quantifier, as the schema converter reads it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidArgument(field, f"at most {MAX_PATTERN_CHARS} characters")
    group_reps = [0]  # repetitions asked for inside each open group (outermost first)
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        if c == "(":
            if len(group_reps) > MAX_PATTERN_NESTING:
                raise InvalidArgument(field, f"groups nested at most {MAX_PATTERN_NESTING} deep")
            group_reps.append(0)
        elif c == ")" and len(group_reps) > 1:
            inner = group_reps.pop()
            bound, i = _quantifier_after(pattern, i + 1, field)
            group_reps[-1] += inner * max(bound, 1) + bound
            _check_product(group_reps[-1], field)
            continue
        elif c == "{":
            m = _QUANTIFIER.match(pattern, i)
            if m:
                group_reps[-1] += _bound(m, field)
                _check_product(group_reps[-1], field)
                i = m.end()
                continue
        i += 1
    while len(group_reps) > 1:  # unbalanced: the converter refuses it; count what was asked
        inner = group_reps.pop()
        group_reps[-1] += inner
    return group_reps[0]


def _class_end(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i``."""
    i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _quantifier_after(pattern: str, i: int, field: str) -> tuple[int, int]:
    """(bound, next index) of a ``{m,n}`` quantifier at ``i``, (0, i) when none."""
    m = _QUANTIFIER.match(pattern, i)
    if not m:
        return 0, i
    return _bound(m, field), m.end()


def _bound(m: re.Match[str], field: str) -> int:
    lo, comma, hi = m.group(1), m.group(2), m.group(3)
    low = int(lo) if lo else 0
    high = int(hi) if hi else (None if comma else low)
    for v in (low, high):
        if v is not None and v > MAX_REPETITION:
            raise InvalidArgument(field, f"quantifier {m.group(0)[:24]}: repetitions must be at most {MAX_REPETITION}")
    if high is not None and low > high:
        raise InvalidArgument(field, f"quantifier {m.group(0)[:24]}: the minimum is over the maximum")
    return max(low, high or 0)


def _check_product(n: int, field: str) -> None:
    if n > MAX_REPETITION:
        raise InvalidArgument(field, f"quantifiers ask for more than {MAX_REPETITION} repetitions (nested ones multiply)")
