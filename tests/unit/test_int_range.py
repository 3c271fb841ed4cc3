"""Integer bounds in schemas become grammars that admit exactly the integers in range."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from common import int_range
from common.schema_grammar import schema_grammar

bound = st.one_of(st.none(), st.integers(-10**7, 10**7), st.integers(-120, 120))


def _ok(text: str, lo: int | None, hi: int | None) -> bool:
    n = int(text)
    return (lo is None or n >= lo) and (hi is None or n <= hi)


@settings(max_examples=400, deadline=None)
@given(bound, bound, st.lists(st.integers(-10**9, 10**9) | st.integers(-150, 150), min_size=1, max_size=40))
def test_the_pieces_match_exactly_the_range(lo: int | None, hi: int | None, probes: list[int]) -> None:
    ps = int_range.pieces(lo, hi)
    if lo is not None and hi is not None and lo > hi:
        assert ps == []
        return
    pattern = re.compile(int_range.regex(ps))
    edges = [x for b in (lo, hi) if b is not None for x in (b - 1, b, b + 1)]
    for n in [*probes, *edges, 0, -1, 1]:
        assert bool(pattern.fullmatch(str(n))) == _ok(str(n), lo, hi), (lo, hi, n, int_range.regex(ps))
    for bad in ("007", "-0", "00", "+5", "1e3", "", "-"):  # JSON writes none of these
        assert not pattern.fullmatch(bad), (lo, hi, bad)


def test_exclusive_and_fractional_bounds() -> None:
    assert int_range.bounds({"minimum": 0, "maximum": 23}) == (0, 23)
    assert int_range.bounds({"exclusiveMinimum": 0, "exclusiveMaximum": 10}) == (1, 9)
    assert int_range.bounds({"minimum": 0.5, "maximum": 9.5}) == (1, 9)
    assert int_range.bounds({"minimum": 2, "exclusiveMinimum": 5}) == (6, None)
    assert int_range.bounds({"maximum": True}) == (None, None)  # not a number


def test_a_bounded_integer_schema_gets_its_range_in_the_grammar() -> None:
    gbnf = schema_grammar(json.dumps({
        "type": "object", "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23}},
        "required": ["hour"], "additionalProperties": False,
    }))
    assert 'hour ::= ([0-9] | "1" [0-9] | "2" [0-3]) space' in gbnf
    assert "integral-part" not in gbnf  # the unbounded integer rule is not used


def test_an_empty_range_is_refused_naming_the_field() -> None:
    import pytest

    from common.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as err:
        schema_grammar(json.dumps({"type": "integer", "minimum": 5, "maximum": 1}), "response_format")
    assert err.value.field == "response_format" and "no value" in str(err.value)
