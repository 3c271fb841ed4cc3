"""PII detection (``orchestrator.pii``) and reversible redaction, stdlib only.

Detected kinds: see ``orchestrator.kinds.PII_KINDS``. Numbers that carry a checksum
are verified (credit cards by Luhn, IBANs by ISO 7064 mod 97) so order numbers and
timestamps do not count as PII. Contact names come from the user's own contacts.

``redact`` replaces every detected value with a placeholder such as ``[EMAIL_1]``
(the same value always gets the same placeholder); ``restore`` puts the originals
back into the cloud's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from orchestrator.pii import PiiSpan, detect_pii

__all__ = ["PiiSpan", "detect_pii", "redact", "redact_many", "restore"]


def redact(
    text: str,
    spans: Iterable[PiiSpan],
    restore_map: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Replace each span's value (every occurrence of it) by a placeholder.

    Returns ``(redacted_text, restore_map)`` with ``placeholder -> original``. Pass the
    map of an earlier call to keep placeholders consistent across several texts.
    """
    (out,), mapping = redact_many([(text, spans)], restore_map)
    return out, mapping


def redact_many(
    items: Sequence[tuple[str, Iterable[PiiSpan]]],
    restore_map: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Redact several texts together: a value detected in one is replaced in all."""
    mapping: dict[str, str] = {} if restore_map is None else restore_map
    kinds: dict[str, str] = {}
    for text, spans in items:
        for s in spans:
            value = text[s.start : s.end]
            if value and value not in kinds:
                kinds[value] = s.kind
    by_value = {v: k for k, v in mapping.items()}
    if not kinds and not by_value:
        return [t for t, _ in items], mapping
    counters: dict[str, int] = {}
    texts = [t for t, _ in items]
    for value, kind in kinds.items():
        if value in by_value:
            continue
        tag = kind.upper()
        n = counters.get(tag, 0) + 1
        ph = f"[{tag}_{n}]"
        while ph in mapping or any(ph in t for t in texts):
            n += 1
            ph = f"[{tag}_{n}]"
        counters[tag] = n
        mapping[ph] = value
        by_value[value] = ph
    rx = re.compile("|".join(re.escape(v) for v in sorted(by_value, key=len, reverse=True)))
    return [rx.sub(lambda m: by_value[m.group()], t) for t in texts], mapping


def restore(text: str, restore_map: dict[str, str]) -> str:
    """Put the original values back where the placeholders of ``restore_map`` appear."""
    if not restore_map:
        return text
    rx = re.compile("|".join(re.escape(p) for p in sorted(restore_map, key=len, reverse=True)))
    return rx.sub(lambda m: restore_map[m.group()], text)
