"""A strict reader over parsed TOML tables.

Every getter names the full key path in its error, so a user sees e.g.
``policy.toml: rules[2].match.pii[0]: one of email, phone, ...``. Keys that were never
read are reported as unknown by ``finish()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from common.errors import PolicyError

_MISSING: Any = object()


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class Table:
    """One TOML table at key path ``path`` of file ``source``."""

    def __init__(self, source: str, path: str, data: dict[str, Any]) -> None:
        self.source = source
        self.path = path
        self.data = data
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, key: str, expected: str) -> PolicyError:
        return PolicyError(self.source, key, expected)

    def _get(self, name: str) -> Any:
        self._seen.add(name)
        return self.data.get(name, _MISSING)

    def has(self, name: str) -> bool:
        return name in self.data

    def table(self, name: str) -> Table:
        value = self._get(name)
        if value is _MISSING:
            value = {}
        if not isinstance(value, dict):
            raise self.error(self.key(name), f"a table, got {_type_name(value)}")
        return Table(self.source, self.key(name), value)

    def tables(self, name: str) -> list[Table]:
        value = self._get(name)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(self.key(name), "an array of tables ([[" + name + "]])")
        return [Table(self.source, f"{self.key(name)}[{i}]", v) for i, v in enumerate(value)]

    def boolean(self, name: str, default: Any) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(self.key(name), f"true or false, got {_type_name(value)}")
        return value

    def number(
        self,
        name: str,
        default: Any,
        *,
        minimum: float | None = 0.0,
        maximum: float | None = None,
        integer: bool = False,
        exclusive_min: bool = False,
    ) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return default
        kind = "an integer" if integer else "a number"
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise self.error(self.key(name), f"{kind}, got {_type_name(value)}")
        if not math.isfinite(value):
            raise self.error(self.key(name), f"a finite {kind[kind.index(' ') + 1 :]}, got {value}")
        if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
            rel = ">" if exclusive_min else ">="
            raise self.error(self.key(name), f"{kind} {rel} {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.error(self.key(name), f"{kind} <= {maximum:g}, got {value:g}")
        return int(value) if integer else float(value)

    def string(self, name: str, default: Any, *, choices: Sequence[str] | None = None) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.error(self.key(name), f"a string, got {_type_name(value)}")
        if choices is not None and value not in choices:
            raise self.error(self.key(name), f"one of {', '.join(choices)}; got {value!r}")
        return value

    def strings(
        self,
        name: str,
        default: Any,
        *,
        choices: Sequence[str] | None = None,
        non_empty: bool = False,
    ) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return default
        key = self.key(name)
        if not isinstance(value, list):
            raise self.error(key, f"an array of strings, got {_type_name(value)}")
        if non_empty and not value:
            raise self.error(key, "a non-empty array (an empty list can never match)")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{i}]", f"a non-empty string, got {_type_name(item)}")
            if choices is not None and item not in choices:
                raise self.error(f"{key}[{i}]", f"one of {', '.join(choices)}; got {item!r}")
            out.append(item)
        return tuple(dict.fromkeys(out))

    def finish(self) -> None:
        """Fail on the first key that no getter asked for."""
        for name in self.data:
            if name not in self._seen:
                known = ", ".join(sorted(self._seen)) or "none"
                raise self.error(self.key(name), f"unknown key; expected one of: {known}")
