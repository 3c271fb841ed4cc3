"""Structured output on the real model: every answer parses and validates against its
schema (nested objects, enums, arrays), speculative and plain alike."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from common.errors import InvalidArgument
from edge_agent.engine.api import SamplingParams, TextDelta
from edge_agent.engine.llama_engine import LlamaEngine

pytestmark = pytest.mark.model

SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer"}}, "required": ["name", "age"]},
    {"type": "object", "properties": {"mood": {"enum": ["happy", "sad", "neutral"]}}, "required": ["mood"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
    {"type": "object", "properties": {
        "event": {"type": "object", "properties": {"title": {"type": "string", "maxLength": 30}, "day": {"enum": ["mon", "tue", "wed"]}},
                  "required": ["title", "day"]},
        "people": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
    }, "required": ["event", "people"]},
    {"type": "boolean"},
    {"type": "object", "properties": {"ok": {"type": "boolean"}, "score": {"type": "number"}}, "required": ["ok", "score"]},
]
PROMPTS = ["Alice Smith is 34 and happy. Dentist on tue with Bob. JSON:", "List some numbers as JSON:"]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> LlamaEngine:
    return LlamaEngine(model_path, n_ctx=1024)


def _answer(engine: LlamaEngine, prompt: str, schema: dict[str, object], temperature: float = 0.0) -> str:
    params = SamplingParams(max_tokens=160, temperature=temperature, seed=1, json_schema=json.dumps(schema))
    return "".join(ev.text for ev in engine.generate(prompt, params) if isinstance(ev, TextDelta))


@pytest.mark.parametrize("i", range(len(SCHEMAS)))
@pytest.mark.parametrize("prompt", PROMPTS)
def test_answers_validate(engine: LlamaEngine, i: int, prompt: str) -> None:
    schema = SCHEMAS[i]
    engine.speculative = True
    spec = _answer(engine, prompt, schema)
    jsonschema.validate(json.loads(spec), schema)
    engine.speculative = False
    try:
        assert _answer(engine, prompt, schema) == spec  # speculation changes nothing under a grammar
    finally:
        engine.speculative = True
    jsonschema.validate(json.loads(_answer(engine, prompt, schema, temperature=0.9)), schema)


def test_an_unconvertible_schema_names_the_field(engine: LlamaEngine) -> None:
    with pytest.raises(InvalidArgument) as err:
        _answer(engine, "x", {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})
    assert err.value.field == "json_schema"
