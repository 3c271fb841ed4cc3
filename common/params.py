"""Validation of the shared wire messages against the rules documented in the protos.

Hand-written (not generated); used by both services so a ``GenerationParams`` means the
same everywhere. Errors name the field path and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from common.errors import InvalidArgument, OutOfRange
from common.schema_grammar import schema_grammar
from common.schema_limits import (
    MAX_SCHEMA_DEPTH,
    check_parsed_size,
    check_schema_bytes,
    check_schema_tree,
)

MAX_STOP_SEQUENCES = 8
MAX_STOP_CHARS = 64


@dataclass(frozen=True)
class CheckedParams:
    """GenerationParams with defaults applied and every rule checked."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    stop: tuple[str, ...]
    json_schema: str = ""  # compact JSON text of a checked schema, "" for free text


class ParamsMessage(Protocol):
    """The fields of ``edgecloud.v1.GenerationParams`` this check reads."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    json_schema: str

    @property
    def stop(self) -> Sequence[str]: ...

    def HasField(self, name: str) -> bool: ...


def check_params(msg: ParamsMessage, *, default_max_tokens: int, max_tokens_limit: int, prefix: str = "params") -> CheckedParams:
    """Validate an ``edgecloud.v1.GenerationParams`` message (or anything shaped like
    one). Field paths are ``prefix.name``, or bare names with an empty prefix."""
    prefix = f"{prefix}." if prefix else ""
    max_tokens = int(msg.max_tokens)
    if max_tokens < 0:
        raise InvalidArgument(f"{prefix}max_tokens", "must be >= 0 (0 means the default)")
    if max_tokens > max_tokens_limit:
        raise OutOfRange(f"{prefix}max_tokens", f"must be <= {max_tokens_limit}")
    temperature = float(msg.temperature)
    if not 0.0 <= temperature <= 2.0:  # also rejects NaN
        raise InvalidArgument(f"{prefix}temperature", "must be in [0, 2]")
    top_p = float(msg.top_p)
    if not 0.0 <= top_p <= 1.0:
        raise InvalidArgument(f"{prefix}top_p", "must be in [0, 1] (0 means 1)")
    top_k = int(msg.top_k)
    if top_k < 0:
        raise InvalidArgument(f"{prefix}top_k", "must be >= 0 (0 means no cut)")
    stop = tuple(msg.stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(f"{prefix}stop", f"at most {MAX_STOP_SEQUENCES} sequences")
    for i, s in enumerate(stop):
        if not s or len(s) > MAX_STOP_CHARS:
            raise InvalidArgument(f"{prefix}stop[{i}]", f"must be 1..{MAX_STOP_CHARS} characters")
    seed = int(msg.seed) if msg.HasField("seed") else None
    schema = check_schema(msg.json_schema, f"{prefix}json_schema") if msg.json_schema else ""
    return CheckedParams(
        max_tokens=max_tokens or default_max_tokens,
        temperature=temperature,
        top_p=top_p or 1.0,
        top_k=top_k,
        seed=seed,
        stop=stop,
        json_schema=schema,
    )


def check_schema(text: str | Mapping[str, Any], field: str = "json_schema") -> str:
    """A JSON Schema, bounded, checked against its metaschema and turned into a grammar;
    returned as compact JSON text (property order kept: it is the order the answer's
    fields come in). Cheapest first: bytes, then shape, then metaschema, then grammar
    (``common.schema_limits``). Costs milliseconds: call it off the event loop."""
    if isinstance(text, str):
        check_schema_bytes(text, field)
        schema = _parse_schema(text, field)
    else:
        check_parsed_size(text, field)
        schema = text
    if not isinstance(schema, dict):
        raise InvalidArgument(field, "must be a JSON Schema object")
    check_schema_tree(schema, field)
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise InvalidArgument(field, f"not a valid JSON Schema at {where}: {exc.message[:200]}") from None
    try:
        out = json.dumps(schema, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidArgument(field, "must not contain NaN or Infinity") from None
    check_schema_bytes(out, field)
    schema_grammar(out, field)  # refuses what cannot become a bounded grammar; cached for the engine
    return out


def _parse_schema(text: str, field: str) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise InvalidArgument(field, f"nested too deep: at most {MAX_SCHEMA_DEPTH} levels of objects and arrays") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of thousands of digits
        raise InvalidArgument(field, f"must be a JSON Schema as JSON text ({str(exc)[:200]})") from None


def schema_errors(schema_json: str, text: str) -> str:
    """Why ``text`` is not one JSON value valid against the schema ("" when it is)."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    schema = json.loads(schema_json)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if err is None:
        return ""
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"at {where}: {err.message[:200]}"
