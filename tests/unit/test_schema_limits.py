"""JSON schemas and their grammars are bounded before anything parses or converts them
(``common.schema_limits``, ``common.gbnf``, ``common.schema_grammar``), with errors
naming the field, the nested path and the limit. No model, no llama.cpp."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from common import schema_grammar as sg
from common.errors import InvalidArgument
from common.gbnf import check_grammar, grammar_shape
from common.params import check_schema
from common.schema_limits import (
    MAX_ENUM_VALUES,
    MAX_GRAMMAR_NESTING,
    MAX_PROPERTIES,
    MAX_REPETITION,
    MAX_SCHEMA_BYTES,
)

FIELD = "response_format.json_schema.schema"


def refused(schema: Any, field: str = FIELD) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        check_schema(schema, field)
    assert err.value.message.startswith(err.value.field + ": ")
    return err.value


def deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ({"type": "string", "maxLength": 100000}, ".maxLength"),
        ({"type": "string", "minLength": 10000000}, ".minLength"),
        ({"type": "string", "maxLength": 1e9}, ".maxLength"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 100000}, ".minItems"),
        ({"type": "object", "maxProperties": 10**12}, ".maxProperties"),
        ({"type": "object", "properties": {"name": {"type": "string", "maxLength": 100000}}}, ".properties.name.maxLength"),
        ({"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 100000}]}, ".anyOf[1].maxLength"),
        ({"type": "string", "pattern": "^a{0,100000}$"}, ".pattern"),
        ({"type": "string", "pattern": "^(ab){100000}$"}, ".pattern"),
        ({"type": "string", "pattern": "^((a{0,20}){0,20}){0,20}$"}, ".pattern"),  # nested quantifiers multiply
        ({"type": "object", "properties": {"odd key": {"type": "string", "minLength": 5000}}}, '.properties["odd key"].minLength'),
    ],
)
def test_a_repetition_bomb_is_refused_at_its_path(schema: dict[str, Any], path: str) -> None:
    err = refused(schema)
    assert err.field == FIELD + path
    assert str(MAX_REPETITION) in err.rule


def test_the_40_byte_bombs_are_refused_as_json_text_over_grpc() -> None:
    for text, path in (('{"type":"string","maxLength":100000}', ".maxLength"), ('{"type":"string","pattern":"^a{0,100000}$"}', ".pattern")):
        assert len(text) <= 45
        with pytest.raises(InvalidArgument) as err:
            check_schema(text, "params.json_schema")
        assert err.value.field == "params.json_schema" + path


def test_a_count_in_data_is_not_a_keyword() -> None:
    schema = {"type": "object", "default": {"maxLength": 10**9}, "properties": {"maxLength": {"type": "integer"}}}
    assert json.loads(check_schema(schema, FIELD)) == schema


def test_the_repetitions_of_a_schema_are_bounded_together() -> None:
    props = {f"p{i}": {"type": "string", "maxLength": MAX_REPETITION} for i in range(5)}
    err = refused({"type": "object", "properties": props})
    assert "add up to more than" in err.rule


def test_a_minimum_over_its_maximum_is_refused() -> None:
    assert refused({"type": "string", "minLength": 9, "maxLength": 3}).field == FIELD + ".minLength"
    assert refused({"type": "string", "pattern": "^a{9,3}$"}).field == FIELD + ".pattern"


def test_a_schema_nested_200_deep_is_refused_not_a_recursion_error() -> None:
    assert refused(deep(200)).rule.startswith("nested too deep")
    with pytest.raises(InvalidArgument) as err:
        check_schema(json.dumps(deep(200)), "params.json_schema")
    assert err.value.field == "params.json_schema"
    array_text = "[" * 5000 + "]" * 5000  # deeper than the JSON parser's recursion
    with pytest.raises(InvalidArgument):
        check_schema(array_text, "params.json_schema")


def test_enums_properties_and_patterns_are_bounded() -> None:
    assert refused({"enum": list(range(MAX_ENUM_VALUES + 1))}).field == FIELD + ".enum"
    props = {f"p{i}": {"type": "integer"} for i in range(MAX_PROPERTIES + 1)}
    assert refused({"type": "object", "properties": props}).field == FIELD + ".properties"
    assert refused({"type": "string", "pattern": "^" + "a" * 2000 + "$"}).field == FIELD + ".pattern"
    assert "nested" in refused({"type": "string", "pattern": "^" + "(" * 20 + "a" + ")" * 20 + "$"}).rule


def test_a_huge_parsed_schema_is_refused_on_its_size_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1.5 MB schema with 50,000 properties (15 s of validation once): the first check
    is a size bound that stops early; the metaschema validation never starts."""
    import jsonschema

    def no_validation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the schema was validated before its size was checked")

    monkeypatch.setattr(jsonschema.validators, "validator_for", no_validation)
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(50000)}}
    assert len(json.dumps(schema)) > 1_400_000
    err = refused(schema)
    assert err.field == FIELD and f"{MAX_SCHEMA_BYTES} bytes" in err.rule
    with pytest.raises(InvalidArgument) as text_err:
        check_schema(json.dumps(schema), "params.json_schema")
    assert f"{MAX_SCHEMA_BYTES} bytes" in text_err.value.rule


def test_nan_and_giant_integers_are_invalid_arguments() -> None:
    for text in ('{"type":"number","minimum":NaN}', '{"type":"integer","minimum":' + "9" * 5000 + "}"):
        with pytest.raises(InvalidArgument):
            check_schema(text, "params.json_schema")
    assert refused({"type": "number", "maximum": float("inf")}).field == FIELD


def test_a_repeated_part_that_can_be_empty_is_refused() -> None:
    for pattern in ("^(a?){0,50}$", "^(a*)*$", "^(a|){3}$"):
        err = refused({"type": "string", "pattern": pattern})
        assert err.field == FIELD and "can be empty" in err.rule


# -- the grammars ---------------------------------------------------------------------------

USUAL: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer"}}, "required": ["name", "age"]},
    {"type": "object", "properties": {"mood": {"enum": ["happy", "sad", "neutral"]}}, "required": ["mood"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
    {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 2},
    {"type": "string", "pattern": "^[a-z]{1,64}@[a-z]{2,10}\\.com$"},
    {"type": "string", "minLength": 3, "maxLength": MAX_REPETITION},
    {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(60)}},  # 60 optional: a chain
    {"type": "object", "properties": {"tree": {"$ref": "#/$defs/node"}},
     "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}},
]


@pytest.mark.parametrize("i", range(len(USUAL)))
def test_usual_schemas_make_shallow_grammars(i: int) -> None:
    text = check_schema(USUAL[i], FIELD)
    shape = grammar_shape(sg.schema_grammar(text))
    assert shape.nesting <= 20  # counts no longer nest: x{m,n}, not (x (x ...)?)?
    assert shape.recursion <= 200


def test_repetitions_are_written_flat() -> None:
    gbnf = sg.schema_grammar(check_schema({"type": "string", "maxLength": MAX_REPETITION}, FIELD))
    assert f"{{0,{MAX_REPETITION}}}" in gbnf and "((" not in gbnf
    assert sg._flat_repetition("x", 0, 4, '"," space') == '(x ("," space x){0,3})?'
    assert sg._flat_repetition("x", 2, None, '"," space') == 'x ("," space x)+'
    assert sg._flat_repetition("x", 0, 1) == "x?"
    assert sg._flat_repetition("x", 3, 3) == "x{3,3}"
    assert sg._flat_repetition("x", 0, 0) == ""


def test_the_shared_converter_is_left_as_it_is() -> None:
    """The private copy is patched, not llama-cpp-python's own module (benchmarks compare
    against it)."""
    import importlib

    sg.schema_grammar(check_schema({"type": "string", "maxLength": 7}, FIELD))
    original = importlib.import_module("llama_cpp.llama_grammar")
    assert original._build_repetition is not sg._flat_repetition
    assert "(char (char" in original.json_schema_to_gbnf('{"type":"string","maxLength":3}')


def test_a_deeply_nested_grammar_is_refused_before_llama_cpp() -> None:
    nested = "root ::= " + "(" * 100000 + '"a"' + ")" * 100000
    t0 = time.perf_counter()
    with pytest.raises(InvalidArgument) as err:
        check_grammar(nested, "params.json_schema")
    assert time.perf_counter() - t0 < 5
    assert err.value.field == "params.json_schema" and str(MAX_GRAMMAR_NESTING) in err.value.rule
    check_grammar("root ::= " + "(" * (MAX_GRAMMAR_NESTING - 2) + '"a"' + ")" * (MAX_GRAMMAR_NESTING - 2))


@pytest.mark.parametrize(
    ("gbnf", "words"),
    [
        ("root ::= root \"a\" | \"b\"", "left-recursive"),
        ('root ::= r0\n' + "".join(f'r{i} ::= r{i + 1} r{i + 1} "x" | ""\n' for i in range(24)) + 'r24 ::= "a" | ""\n', "too costly"),
        ("root ::= r0\n" + "".join(f'r{i} ::= "x"? r{i + 1}\n' for i in range(3000)) + 'r3000 ::= "a"\n', "chains more than"),
        ('root ::= "a"{5,2}', "minimum is over"),
        ('root ::= "a"{0,100000}', "more than"),
        ('root ::= ("a"?)*', "can be empty"),
        ("root ::= missing", "undefined rule"),
        ('root ::= "a', "does not parse"),
        ('other ::= "a"', "no root rule"),
    ],
)
def test_grammars_llama_cpp_cannot_take_are_refused(gbnf: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_grammar(gbnf, "params.json_schema")
    assert words in err.value.rule


# -- the cache --------------------------------------------------------------------------------


def test_the_grammar_cache_is_bounded_by_bytes() -> None:
    cache = sg._ByteLRU(10_000)
    for i in range(500):
        cache.put(f"schema {i}", "g" * 900)
        assert cache.size <= 10_000
    assert len(cache) == 10 and cache.get("schema 499") == "g" * 900 and cache.get("schema 0") is None
    cache.put("too big", "g" * 20_000)
    assert cache.get("too big") is None and cache.size <= 10_000


def test_the_grammar_cache_keeps_recent_schemas_and_stays_under_its_budget() -> None:
    for i in range(300):
        sg.schema_grammar(check_schema({"type": "string", "maxLength": 900, "description": f"d{i} " + "x" * 400}, FIELD))
        assert sg.CACHE.size <= sg.CACHE.limit
    assert len(sg.CACHE) >= 100
