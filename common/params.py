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


MAX_SEED = 2**64 - 1  # GenerationParams.seed is a uint64
MAX_INT32 = 2**31 - 1  # top_k is an int32 on the wire


@dataclass(frozen=True)
class ParamNames:
    """Where each sampling field lives on a door's wire, for error messages."""

    max_tokens: str = "max_tokens"
    temperature: str = "temperature"
    top_p: str = "top_p"
    top_k: str = "top_k"
    seed: str = "seed"
    stop: str = "stop"
    json_schema: str = "json_schema"


PROTO_NAMES = ParamNames(*(f"params.{f}" for f in ParamNames.__dataclass_fields__))


def check_sampling(
    *,
    max_tokens: int | None,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    seed: int | None,
    stop: Sequence[str],
    json_schema: str | Mapping[str, Any] | None,
    default_max_tokens: int,
    max_tokens_limit: int,
    names: ParamNames = PROTO_NAMES,
) -> CheckedParams:
    """Every sampling rule, on plain values (``None``: the field is absent, its default
    applies). Each door maps its wire shape onto these values; errors name the field as
    that door spells it (``names``)."""
    if max_tokens is not None:
        if max_tokens < 1:
            raise InvalidArgument(names.max_tokens, "must be >= 1 (unset means the default)")
        if max_tokens > max_tokens_limit:
            raise OutOfRange(names.max_tokens, f"must be <= {max_tokens_limit}")
    if not 0.0 <= temperature <= 2.0:  # also rejects NaN
        raise InvalidArgument(names.temperature, "must be in [0, 2]")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise InvalidArgument(names.top_p, "must be in (0, 1] (unset means 1)")
    if top_k is not None and not 0 <= top_k <= MAX_INT32:
        raise InvalidArgument(names.top_k, f"must be in [0, {MAX_INT32}] (0 means no cut)")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(names.seed, f"must be in [0, {MAX_SEED}] (a uint64)")
    stop = tuple(stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(names.stop, f"at most {MAX_STOP_SEQUENCES} sequences")
    for i, s in enumerate(stop):
        if not s or len(s) > MAX_STOP_CHARS:
            raise InvalidArgument(f"{names.stop}[{i}]", f"must be 1..{MAX_STOP_CHARS} characters")
    return CheckedParams(
        max_tokens=max_tokens or default_max_tokens,
        temperature=float(temperature),
        top_p=1.0 if top_p is None else float(top_p),
        top_k=top_k or 0,
        seed=seed,
        stop=stop,
        json_schema=check_schema(json_schema, names.json_schema) if json_schema else "",
    )


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


def proto_sampling(msg: ParamsMessage) -> dict[str, Any]:
    """An ``edgecloud.v1.GenerationParams`` message as ``check_sampling``'s plain values:
    proto3's zeros mean "unset" (max_tokens 0 is the default, top_p 0 is 1)."""
    return {
        "max_tokens": int(msg.max_tokens) or None,
        "temperature": float(msg.temperature),
        "top_p": float(msg.top_p) or None,
        "top_k": int(msg.top_k),
        "seed": int(msg.seed) if msg.HasField("seed") else None,
        "stop": tuple(msg.stop),
        "json_schema": msg.json_schema or None,
    }


def check_params(msg: ParamsMessage, *, default_max_tokens: int, max_tokens_limit: int) -> CheckedParams:
    """An ``edgecloud.v1.GenerationParams`` message, every rule checked."""
    return check_sampling(**proto_sampling(msg), default_max_tokens=default_max_tokens, max_tokens_limit=max_tokens_limit)


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
