"""Values of the user's sensitive store items typed into a request.

With context off nothing is retrieved, yet a prompt may still hold a PIN, a password or
a case number that is an item in the personal store ("7391", "Qz8!vRt2",
"2026-FC-0193"). The daemon looks such values up (``edge_agent.pipeline.egress``) and
hands them to the router as ``StoredValue``s; here they are found in every outgoing
text, as written and normalised (any case, separators dropped or changed: "2026 fc
0193", "qz8vrt2"), and count like the item they come from: kept local, or replaced by a
``[PERSONAL_CONTEXT_n]`` placeholder where the policy lets that label be left out.
"""

from __future__ import annotations

import re
from functools import lru_cache

from orchestrator.pii import PiiSpan
from orchestrator.types import StoredValue

MIN_VALUE_CHARS = 4  # letters and digits; shorter values would match by chance
KIND = "personal_context"


def normalised(value: str) -> str:
    """The letters and digits of ``value``, lowercased: its identity across spellings."""
    return "".join(ch for ch in value.lower() if ch.isalnum())


@lru_cache(maxsize=1024)
def _pattern(value: str) -> re.Pattern[str] | None:
    core = normalised(value)
    if len(core) < MIN_VALUE_CHARS:
        return None
    body = r"[\W_]{0,2}".join(re.escape(ch) for ch in core)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.IGNORECASE)


def find_stored(text: str, values: tuple[StoredValue, ...]) -> list[tuple[PiiSpan, str]]:
    """Spans of ``text`` spelling one of ``values``, each with the value's label."""
    if not values or not text:
        return []
    flat = normalised(text)
    out: list[tuple[PiiSpan, str]] = []
    for v in values:
        rx = _pattern(v.value)
        if rx is None or normalised(v.value) not in flat:
            continue
        out.extend((PiiSpan(KIND, m.start(), m.end()), v.sensitivity) for m in rx.finditer(text))
    return out
