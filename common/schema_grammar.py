"""JSON schema -> GBNF grammar, for the engine and cloud-stub: converted once, checked,
and cached by size.

The converter is llama-cpp-python's ``json_schema_to_gbnf`` (the Python port of
llama.cpp's ``json_schema_to_grammar``), loaded as a private copy of its module with
one function replaced: its repetition builder wrote ``x{0,n}`` as ``n`` nested groups
``(x (x (x ...)?)?)?``, so ``{"maxLength": 100000}`` became 100,000 levels of
nesting, deeper than llama.cpp's recursive parser can go. The replacement writes
``x{m,n}`` (what llama.cpp's own converter writes today), which llama.cpp expands
without recursion, so nesting no longer grows with counts. The copy is private: the
module everyone else imports (benchmarks compare against it) is left as it is, and
reading it loads no native library.

No schema reaches the converter unbounded: its size and shape are checked first
(``common.schema_limits``), and the grammar it makes by ``common.gbnf.check_grammar``. Grammars are cached by schema text in an LRU
bounded by bytes (``GRAMMAR_CACHE_BYTES``, key and value together), not by entries: a
cache of 64 entries once held 64 grammars of 95 MB each.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from common import int_range
from common.errors import InvalidArgument
from common.gbnf import check_grammar
from common.schema_limits import GRAMMAR_CACHE_BYTES, check_schema_bytes, check_schema_tree

log = logging.getLogger(__name__)


def _flat_repetition(
    item_rule: str,
    min_items: int,
    max_items: int | None,
    separator_rule: str | None = None,
    item_rule_is_literal: bool = False,
) -> str:
    """``item_rule`` repeated min..max times (max None: unbounded), items separated by
    ``separator_rule``: the same language as the converter's own builder, written with
    ``{m,n}`` instead of nested groups (llama.cpp's ``build_repetition``)."""
    if max_items == 0:
        return ""
    if min_items == 0 and max_items == 1:
        return f"{item_rule}?"
    if not separator_rule:
        if min_items == 1 and max_items == 1:
            return item_rule
        if min_items == 1 and max_items is None:
            return f"{item_rule}+"
        if min_items == 0 and max_items is None:
            return f"{item_rule}*"
        return f"{item_rule}{{{min_items},{'' if max_items is None else max_items}}}"
    rest = _flat_repetition(
        f"({separator_rule} {item_rule})", max(min_items - 1, 0), None if max_items is None else max_items - 1
    )
    result = f"{item_rule} {rest}".rstrip()
    return f"({result})?" if min_items == 0 else result


def _load_converter() -> ModuleType:
    """A private copy of ``llama_cpp/llama_grammar.py`` with ``_flat_repetition``."""
    spec = importlib.util.find_spec("llama_cpp")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("llama-cpp-python is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "llama_grammar.py"
    mod_spec = importlib.util.spec_from_file_location("edgecloud_schema_converter", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    if not hasattr(module, "_build_repetition") or not hasattr(module, "json_schema_to_gbnf"):
        raise ImportError(f"{path}: not the schema converter this module expects")
    module._build_repetition = _flat_repetition  # type: ignore[attr-defined]
    converter = getattr(module, "SchemaConverter", None)
    if converter is None or not hasattr(converter, "visit") or not hasattr(converter, "_add_rule"):
        raise ImportError(f"{path}: not the schema converter this module expects")
    converter.visit = _bounded_integers(converter.visit, set(getattr(module, "RESERVED_NAMES", ())))
    return module


_BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _bounded_integers(visit: Callable[..., str], reserved: set[str]) -> Callable[..., str]:
    """The converter's ``visit`` with ``"type": "integer"`` bounds kept (it ignores them)."""

    def wrapped(self: Any, schema: Any, name: str) -> str:
        if (isinstance(schema, dict) and schema.get("type") == "integer"
                and any(k in schema for k in _BOUND_KEYS)
                and not any(k in schema for k in ("$ref", "oneOf", "anyOf", "const", "enum"))):
            lo, hi = int_range.bounds(schema)
            ps = int_range.pieces(lo, hi)
            if not ps:
                raise ValueError(f"an integer range with no value ({lo} > {hi})")
            rule_name = name + "-" if name in reserved else name or "root"
            return str(self._add_rule(rule_name, f"({int_range.gbnf(ps)}) space"))
        return visit(self, schema, name)

    return wrapped


class _ByteLRU:
    """An LRU of str -> str whose keys and values together stay under ``limit``
    characters; safe to use from several threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> None:
        cost = len(key) + len(value)
        if cost > self.limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(key) + len(old)
            self._items[key] = value
            self.size += cost
            while self.size > self.limit:
                k, v = self._items.popitem(last=False)
                self.size -= len(k) + len(v)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


_converter: ModuleType | None = None
_converter_lock = threading.Lock()
CACHE = _ByteLRU(GRAMMAR_CACHE_BYTES)


def _convert(schema_json: str) -> str:
    global _converter
    with _converter_lock:
        if _converter is None:
            _converter = _load_converter()
    return str(_converter.json_schema_to_gbnf(schema_json))


def _check_bounds(schema_json: str, field: str) -> None:
    """The schema's size and shape (``common.schema_limits``), for callers that did not
    go through ``common.params.check_schema`` (the engine used directly, benchmarks)."""
    check_schema_bytes(schema_json, field)
    try:
        schema = json.loads(schema_json)
    except (ValueError, RecursionError):
        raise InvalidArgument(field, "must be a JSON Schema as JSON text") from None
    if not isinstance(schema, dict):
        raise InvalidArgument(field, "must be a JSON Schema object")
    check_schema_tree(schema, field)


def schema_grammar(schema_json: str, field: str = "json_schema") -> str:
    """The checked GBNF grammar of a JSON schema (given as JSON text, already bounded by
    ``common.params.check_schema``); ``InvalidArgument`` naming ``field`` when the
    converter cannot handle the schema or the grammar is over a limit."""
    cached = CACHE.get(schema_json)
    if cached is not None:
        return cached
    _check_bounds(schema_json, field)
    try:
        gbnf = _convert(schema_json)
    except InvalidArgument:
        raise
    except RecursionError:
        raise InvalidArgument(field, "cannot be turned into a grammar: its references nest too deep") from None
    except Exception as exc:  # noqa: BLE001 - the converter raises plain exceptions (asserts too) for what it lacks
        raise InvalidArgument(field, f"cannot be turned into a grammar ({type(exc).__name__}: {str(exc)[:200]})") from None
    shape = check_grammar(gbnf, field)
    log.debug("grammar for a schema: %d bytes, %d rules, nesting %d", shape.bytes, shape.rules, shape.nesting)
    CACHE.put(schema_json, gbnf)
    return gbnf
