"""Durations as Ollama's ``keep_alive`` takes them.

A number is seconds (``300``, ``"2.5"``); a string may also be a Go duration
(``"5m"``, ``"1h30m"``, ``"500ms"``). Zero means "at once"; any negative value means
"forever" (returned as None).
"""

from __future__ import annotations

import math
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
RULE = "a duration such as 5m, 1h30m, 30s or 0, or a number of seconds; negative keeps forever"


def parse_keep_alive(value: str | float) -> float | None:
    """Seconds (>= 0), or None for "forever"; ValueError naming the rule otherwise."""
    if isinstance(value, bool):
        raise ValueError(RULE)  # noqa: TRY004 - one error type for every bad value
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text[1:] if text[:1] in "+-" else text
        if not body or body[0] in "+-":
            raise ValueError(RULE)
        try:
            seconds = sign * float(body)
        except ValueError:
            pos, total = 0, 0.0
            for m in _PART.finditer(body):
                if m.start() != pos:
                    raise ValueError(RULE) from None
                total += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(body):
                raise ValueError(RULE) from None
            seconds = sign * total
    if math.isnan(seconds):
        raise ValueError(RULE)
    if seconds < 0:
        return None
    if math.isinf(seconds):
        return None
    return seconds
