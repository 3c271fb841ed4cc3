"""What llama.cpp will build from a GBNF grammar, worked out before it sees the text.

Why a check and not a child process: llama.cpp's grammar code has exactly two
recursions, and both are bounded here on the grammar text itself:

* its parser (``parse_alternates`` <-> ``parse_sequence``) recurses once per nested
  group, ~455 bytes of stack a level (measured with llama-cpp-python 0.3.36 on x86-64:
  an 8 MiB thread survives ~18,600 levels, 1 MiB ~2,300, 256 KiB ~560; see
  ``common.schema_limits.MAX_GRAMMAR_NESTING``);
* ``llama_grammar_detect_left_recursion`` recurses along chains of rule references
  that may be empty, ~130 bytes a level, and has no memory of the rules it has seen, so
  its time can grow exponentially. This module runs the same walk (same rule numbering,
  same steps), bounding its depth and its number of steps.

The largest grammars these bounds let through parse in a thread of 192 KiB
(``tests/engine/test_grammar_bounds.py`` checks 256 KiB). Everything else (building
the parse stacks, accepting tokens) is iterative in that
version, or bounded by the length of one vocabulary token. A bound checked in the
process costs microseconds and fails with a message naming the rule that was broken;
a child process per schema would cost a Python start-up (~0.3 s with llama.cpp
loaded) and would still have to mirror the thread stack of the real caller. So every
grammar, whatever made it, passes ``check_grammar`` immediately before it is handed
to llama.cpp, by the engine and by cloud-stub alike.

The parse mirrors llama.cpp's ``llama_grammar_parser``: literals, character classes,
rule references, groups (each a new rule), ``.``, and ``* + ? {m} {m,} {m,n}``
repetitions expanded into rules as llama.cpp expands them. It also refuses what
llama.cpp would accept but cannot handle in reasonable time: a repetition whose minimum
is over its maximum (llama.cpp's count wraps around), and a repeated item that can
match the empty string (``(a?){2,50}``, ``(a*)*``). The second is where the parse stacks
multiply: the 500-byte grammar ``r0 ::= r1 r1 "x" | ""``, ... twenty levels deep keeps
llama.cpp's grammar set-up busy for over ten minutes and 450 MB (measured); fourteen
levels take 7 s. Schema grammars get empty-matching parts only from regular
expressions, and only under a quantifier can they share one rule, so refusing
repeated empty-matching items is what keeps such sharing out. A hand-written grammar
could still be slow (not crash); none is accepted from clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.errors import InvalidArgument
from common.schema_limits import (
    MAX_GRAMMAR_BYTES,
    MAX_GRAMMAR_CHECK_STEPS,
    MAX_GRAMMAR_ELEMENTS,
    MAX_GRAMMAR_NESTING,
    MAX_GRAMMAR_RECURSION,
    MAX_GRAMMAR_RULES,
    MAX_REPETITION,
)

LLAMA_MAX_REPETITION = 2000  # llama.cpp's MAX_REPETITION_THRESHOLD
_TERMINAL = -1  # a symbol that matches one character (a literal's char, a class, ".")

_SPACE = re.compile(r"(?:[ \t]|#[^\r\n]*)*")
_SPACE_NL = re.compile(r"(?:[ \t\r\n]|#[^\r\n]*)*")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_INT = re.compile(r"[0-9]+")
_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_CLASS = re.compile(r"\[\^?((?:[^\]\\]|\\.)*)\]", re.DOTALL)
_ESCAPE = re.compile(r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[tnr\\\"\[\]-])")


class GrammarError(Exception):
    """The grammar breaks a rule; the message says which."""


@dataclass(frozen=True)
class GrammarShape:
    """What llama.cpp would build."""

    bytes: int
    rules: int  # named rules, groups and repetition expansions
    elements: int
    nesting: int  # deepest group nesting (llama.cpp's parser recursion)
    recursion: int  # deepest recursion of llama.cpp's left-recursion check
    steps: int  # calls that check makes


def check_grammar(gbnf: str, field: str = "json_schema") -> GrammarShape:
    """The grammar's shape, or ``InvalidArgument(field, ...)`` if it is over a limit of
    ``common.schema_limits`` or would not parse."""
    try:
        return grammar_shape(gbnf)
    except GrammarError as exc:
        raise InvalidArgument(field, f"the grammar built from the schema {exc}") from None


def grammar_shape(gbnf: str) -> GrammarShape:
    """The shape of a grammar; ``GrammarError`` when it is over a limit or malformed."""
    size = len(gbnf.encode("utf-8", "surrogatepass"))
    if size > MAX_GRAMMAR_BYTES:
        raise GrammarError(f"is over {MAX_GRAMMAR_BYTES} bytes ({size})")
    parser = _Parser(gbnf)
    parser.parse()
    rules = parser.finish()
    nullable = _nullable(rules)
    for item in parser.repeated:
        if all(s >= 0 and nullable[s] for s in item):
            raise GrammarError("repeats a part that can be empty (a pattern like (a?){2,9} or (a*)*)")
    depth, steps = _left_recursion_walk(rules)
    return GrammarShape(size, len(rules), parser.elements, parser.max_nesting, depth, steps)


class _Parser:
    """llama.cpp's grammar parser, keeping only what the checks need: each rule as a
    list of alternatives, each a list of symbols (a rule id, or ``_TERMINAL``)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0
        self.ids: dict[str, int] = {}
        self.n_ids = 0
        self.rules: dict[int, list[list[int]]] = {}
        self.elements = 0
        self.max_nesting = 0
        self.repeated: list[list[int]] = []  # items that may occur more than once in a row

    # -- symbols and rules ---------------------------------------------------------------
    def _symbol(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = self.n_ids
            self.n_ids += 1
        return self.ids[name]

    def _generate(self) -> int:
        rid = self.n_ids
        self.n_ids += 1
        if self.n_ids > MAX_GRAMMAR_RULES:
            raise GrammarError(f"needs more than {MAX_GRAMMAR_RULES} rules")
        return rid

    def _add_rule(self, rid: int, alts: list[list[int]]) -> None:
        self.rules[rid] = alts
        self._count(sum(len(a) + 1 for a in alts))

    def _count(self, n: int) -> None:
        self.elements += n
        if self.elements > MAX_GRAMMAR_ELEMENTS:
            raise GrammarError(f"needs more than {MAX_GRAMMAR_ELEMENTS} elements")

    # -- text ----------------------------------------------------------------------------
    def _space(self, newline_ok: bool) -> None:
        m = (_SPACE_NL if newline_ok else _SPACE).match(self.src, self.pos)
        assert m is not None
        self.pos = m.end()

    def _peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.src[i] if i < len(self.src) else ""

    def _fail(self, what: str) -> GrammarError:
        return GrammarError(f"does not parse: {what} at offset {self.pos}")

    # -- the grammar -----------------------------------------------------------------------
    def parse(self) -> None:
        self._space(True)
        while self.pos < len(self.src):
            self._rule()

    def finish(self) -> list[list[list[int]]]:
        if "root" not in self.ids:
            raise GrammarError("has no root rule")
        if self.n_ids > MAX_GRAMMAR_RULES:
            raise GrammarError(f"needs more than {MAX_GRAMMAR_RULES} rules")
        missing = [name for name, rid in self.ids.items() if rid not in self.rules]
        if missing:
            raise GrammarError(f"does not parse: undefined rule {missing[0][:40]!r}")
        return [self.rules[i] for i in range(self.n_ids)]

    def _rule(self) -> None:
        m = _NAME.match(self.src, self.pos)
        if not m:
            raise self._fail("expecting a rule name")
        rid = self._symbol(m.group())
        self.pos = m.end()
        self._space(False)
        if not self.src.startswith("::=", self.pos):
            raise self._fail("expecting ::=")
        self.pos += 3
        self._space(True)
        self._alternates(rid, nested=False, depth=1)
        if self.src.startswith("\r\n", self.pos):
            self.pos += 2
        elif self._peek() in ("\r", "\n"):
            self.pos += 1
        elif self.pos < len(self.src):
            raise self._fail("expecting a newline or the end")
        self._space(True)

    def _alternates(self, rid: int, *, nested: bool, depth: int) -> None:
        alts = [self._sequence(nested, depth)]
        while self._peek() == "|":
            self.pos += 1
            self._space(True)
            alts.append(self._sequence(nested, depth))
        self._add_rule(rid, alts)

    def _sequence(self, nested: bool, depth: int) -> list[int]:
        seq: list[int] = []
        last = 0  # where the last symbol starts in seq (a literal is several)
        n_prev_rules = 1
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if c == '"':
                m = _LITERAL.match(self.src, self.pos)
                if not m:
                    raise self._fail("unterminated literal")
                last, n_prev_rules = len(seq), 1
                seq.extend([_TERMINAL] * _chars(m.group(1)))
                self.pos = m.end()
            elif c == "[":
                m = _CLASS.match(self.src, self.pos)
                if not m:
                    raise self._fail("unterminated character class")
                last, n_prev_rules = len(seq), 1
                seq.append(_TERMINAL)
                self._count(max(1, _chars(m.group(1))) - 1)  # a class is one element per char or range
                self.pos = m.end()
            elif c.isascii() and (c.isalnum() or c == "-"):
                m = _NAME.match(self.src, self.pos)
                assert m is not None
                last, n_prev_rules = len(seq), 1
                seq.append(self._symbol(m.group()))
                self.pos = m.end()
            elif c == "(":
                if depth + 1 > MAX_GRAMMAR_NESTING:
                    raise GrammarError(f"nests groups more than {MAX_GRAMMAR_NESTING} deep")
                self.max_nesting = max(self.max_nesting, depth)
                self.pos += 1
                self._space(True)
                before = self.n_ids
                sub = self._generate()
                self._alternates(sub, nested=True, depth=depth + 1)
                n_prev_rules = max(1, self.n_ids - before)
                last = len(seq)
                seq.append(sub)
                if self._peek() != ")":
                    raise self._fail("expecting ')'")
                self.pos += 1
            elif c == ".":
                last, n_prev_rules = len(seq), 1
                seq.append(_TERMINAL)
                self.pos += 1
            elif c in "*+?{":
                self.pos += 1
                self._space(nested)
                lo, hi = (0, None) if c == "*" else (1, None) if c == "+" else (0, 1) if c == "?" else self._braces(nested)
                n_prev_rules = self._repeat(seq, last, lo, hi, n_prev_rules)
                continue
            else:
                break
            self._space(nested)
        self.max_nesting = max(self.max_nesting, depth)
        return seq

    def _braces(self, nested: bool) -> tuple[int, int | None]:
        m = _INT.match(self.src, self.pos)
        if not m:
            raise self._fail("expecting an int")
        lo, hi = int(m.group()), None
        self.pos = m.end()
        self._space(nested)
        if self._peek() == "}":
            hi = lo
        elif self._peek() == ",":
            self.pos += 1
            self._space(nested)
            m = _INT.match(self.src, self.pos)
            if m:
                hi = int(m.group())
                self.pos = m.end()
                self._space(nested)
            if self._peek() != "}":
                raise self._fail("expecting '}'")
        else:
            raise self._fail("expecting ','")
        self.pos += 1
        self._space(nested)
        if max(lo, hi or 0) > MAX_REPETITION:  # llama.cpp refuses over 2000, or makes the maximum unbounded
            raise GrammarError(f"repeats something more than {MAX_REPETITION} times")
        if hi is not None and lo > hi:
            raise GrammarError(f"has a repetition {{{lo},{hi}}} whose minimum is over its maximum")
        return lo, hi

    def _repeat(self, seq: list[int], last: int, lo: int, hi: int | None, n_prev_rules: int) -> int:
        """llama.cpp's ``handle_repetitions``: S{m,n} -> S (m times) S'(n-m), with
        S'(x) ::= S S'(x-1) | and S'(1) ::= S |; S{m,} -> S (m times) S', S' ::= S S' |."""
        if last == len(seq):
            raise self._fail("a repetition with nothing before it")
        prev = seq[last:]
        total = hi if hi is not None and hi > 0 else max(lo, 1)
        if n_prev_rules * total > LLAMA_MAX_REPETITION:
            raise GrammarError(f"repeats rules more than {LLAMA_MAX_REPETITION} times (llama.cpp's limit)")
        n_opt = 1 if hi is None else hi - lo
        self._count(len(prev) * max(lo - 1, 0) + n_opt * (len(prev) + 3))
        if self.n_ids + n_opt > MAX_GRAMMAR_RULES:
            raise GrammarError(f"needs more than {MAX_GRAMMAR_RULES} rules")
        if hi is None or hi > 1:
            self.repeated.append(prev)
        if lo == 0:
            del seq[last:]
        else:
            seq.extend(prev * (lo - 1))
        last_rec = -1
        for i in range(n_opt):
            rid = self._generate()
            rec = [*prev, rid if hi is None else last_rec] if (i > 0 or hi is None) else list(prev)
            self.rules[rid] = [rec, []]
            last_rec = rid
        if n_opt > 0:
            seq.append(last_rec)
        return n_prev_rules * total


def _chars(body: str) -> int:
    """Characters of a literal's or class's body, an escape counting as one."""
    return len(body) - sum(len(m.group()) - 1 for m in _ESCAPE.finditer(body))


def _nullable(rules: list[list[list[int]]]) -> list[bool]:
    """Which rules can match the empty string: a worklist over the alternatives, each
    waiting for its references to turn out empty (linear in the grammar's size)."""
    nullable = [False] * len(rules)
    waiting: list[int] = []  # per alternative: references not yet known to be empty
    owner: list[int] = []  # per alternative: its rule
    uses: list[list[int]] = [[] for _ in rules]  # per rule: alternatives referring to it
    todo: list[int] = []
    for rid, alts in enumerate(rules):
        for alt in alts:
            a = len(owner)
            owner.append(rid)
            if any(s < 0 for s in alt):  # a terminal: never empty
                waiting.append(-1)
                continue
            waiting.append(len(alt))
            for s in alt:
                uses[s].append(a)
            if not alt and not nullable[rid]:
                nullable[rid] = True
                todo.append(rid)
    while todo:
        for a in uses[todo.pop()]:
            waiting[a] -= 1
            if waiting[a] == 0 and not nullable[owner[a]]:
                nullable[owner[a]] = True
                todo.append(owner[a])
    return nullable


def _left_recursion_walk(rules: list[list[list[int]]]) -> tuple[int, int]:
    """(deepest recursion, calls) of ``llama_grammar_detect_left_recursion`` run over
    every rule as ``llama_grammar_init_impl`` runs it; ``GrammarError`` on left
    recursion (llama.cpp refuses the grammar) or when over the limits."""
    n = len(rules)
    visited, in_progress, may_be_empty = [False] * n, [False] * n, [False] * n
    stack: list[list[int]] = []  # frames: [rule, alternative, symbol, recurse]
    steps = deepest = 0

    def enter(rid: int) -> None:
        nonlocal steps, deepest
        steps += 1
        if steps > MAX_GRAMMAR_CHECK_STEPS:
            raise GrammarError(f"is too costly for llama.cpp to check (over {MAX_GRAMMAR_CHECK_STEPS} steps)")
        if in_progress[rid]:
            raise GrammarError("is left-recursive (a rule can reach itself without matching a character)")
        in_progress[rid] = True
        may_be_empty[rid] = any(not alt for alt in rules[rid])
        stack.append([rid, 0, 0, 1])
        if len(stack) > deepest:
            deepest = len(stack)
            if deepest > MAX_GRAMMAR_RECURSION:
                raise GrammarError(f"chains more than {MAX_GRAMMAR_RECURSION} rules that may be empty")

    for start in range(n):
        if visited[start]:
            continue
        enter(start)
        while stack:
            frame = stack[-1]
            rid, a, s, recurse = frame
            alts = rules[rid]
            if a == len(alts):
                in_progress[rid] = False
                visited[rid] = True
                stack.pop()
                if stack:  # back in the caller: go on past this reference only if it may be empty
                    parent = stack[-1]
                    parent[3] = int(may_be_empty[rid])
                    parent[2] += 1
                continue
            alt = alts[a]
            if s == len(alt):
                frame[1], frame[2], frame[3] = a + 1, 0, 1
                continue
            sym = alt[s]
            if sym >= 0 and recurse:
                enter(sym)
                continue
            if sym < 0:
                frame[3] = 0
            frame[2] += 1
    return deepest, steps
