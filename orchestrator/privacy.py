"""PII detection (``orchestrator.pii``) and reversible redaction, stdlib only.

Detected kinds: see ``orchestrator.kinds.PII_KINDS``. Numbers that carry a checksum
are verified (credit cards by Luhn, IBANs by ISO 7064 mod 97) so order numbers and
timestamps do not count as PII. Contact names come from the user's own contacts.

``redact`` replaces every detected value with a placeholder such as ``[EMAIL_1]``: the
same value always gets the same placeholder, in whatever spelling it appears again
(``pii.same_value_spans``: another phone format, another case or spacing, a name's
surname alone); ``restore`` puts the originals back into the cloud's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from orchestrator.pii import PiiSpan, canonical, detect_pii, same_value_spans

__all__ = ["PiiSpan", "detect_pii", "redact", "redact_many", "restore", "spans_to_redact"]


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


def spans_to_redact(
    items: Sequence[tuple[str, Iterable[PiiSpan]]],
) -> list[list[tuple[PiiSpan, str]]]:
    """Per text, every span a joint redaction of ``items`` replaces, with the canonical
    key of its value (one key, one placeholder): the detected spans, and the other
    spellings of their values in any of the texts."""
    texts = [t for t, _ in items]
    # A number found as a card or ID somewhere is that, even where it looks like a phone.
    found = [list(sp) for _, sp in items]
    numbers = {
        _digits(text[s.start : s.end]): s.kind
        for text, spans in zip(texts, found)
        for s in spans
        if s.kind in ("credit_card", "national_id")
    }
    found = [
        [_as_known_number(text, s, numbers) for s in spans if s.end > s.start]
        for text, spans in zip(texts, found)
    ]
    values: dict[str, tuple[str, str]] = {}  # canonical key -> (kind, first spelling)
    for text, spans in zip(texts, found):
        for s in spans:
            values.setdefault(
                canonical(s.kind, text[s.start : s.end]), (s.kind, text[s.start : s.end])
            )
    pairs = list(values.values())
    out: list[list[tuple[PiiSpan, str]]] = []
    for text, spans in zip(texts, found):
        keyed = [(s, canonical(s.kind, text[s.start : s.end])) for s in spans]
        out.append(keyed + same_value_spans(text, pairs, spans) if pairs else keyed)
    return out


def redact_many(
    items: Sequence[tuple[str, Iterable[PiiSpan]]],
    restore_map: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Redact several texts together: a value detected in one is replaced in all, in
    every spelling of it, and all spellings of one value share one placeholder."""
    mapping: dict[str, str] = {} if restore_map is None else restore_map
    texts = [t for t, _ in items]
    keyed = spans_to_redact(items)
    if not any(keyed) and not mapping:
        return texts, mapping
    by_key = {canonical(_kind_of(ph), v): ph for ph, v in mapping.items()}
    first: dict[str, tuple[str, str]] = {}  # canonical key -> (kind, first spelling)
    spellings: dict[str, str] = {}  # exact text -> canonical key
    for text, spans in zip(texts, keyed):
        for s, key in spans:
            value = text[s.start : s.end]
            first.setdefault(key, (s.kind, value))
            spellings.setdefault(value, key)
    for ph, v in mapping.items():
        spellings.setdefault(v, canonical(_kind_of(ph), v))
    counters: dict[str, int] = {}
    for key, (kind, value) in first.items():
        if key in by_key:
            continue
        tag = kind.upper()
        n = counters.get(tag, 0) + 1
        ph = f"[{tag}_{n}]"
        while ph in mapping or any(ph in t for t in texts):
            n += 1
            ph = f"[{tag}_{n}]"
        counters[tag] = n
        mapping[ph] = value
        by_key[key] = ph
    by_value = {v: by_key[k] for v, k in spellings.items() if k in by_key}
    alternatives = (_bounded(v) for v in sorted(by_value, key=len, reverse=True))
    rx = re.compile("|".join(alternatives))
    return [rx.sub(lambda m: by_value[m.group()], t) for t in texts], mapping


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _as_known_number(text: str, s: PiiSpan, numbers: dict[str, str]) -> PiiSpan:
    if s.kind == "phone" and (kind := numbers.get(_digits(text[s.start : s.end]))):
        return PiiSpan(kind, s.start, s.end)
    return s


def _kind_of(placeholder: str) -> str:
    """``[PHONE_2]`` -> ``phone``."""
    return placeholder[1:].rsplit("_", 1)[0].lower()


def _bounded(value: str) -> str:
    """``value`` as a pattern that does not match inside a longer word or number."""
    rx = re.escape(value)
    if value[:1].isalnum():
        rx = r"(?<![0-9A-Za-z])" + rx
    if value[-1:].isalnum():
        rx += r"(?![0-9A-Za-z])"
    return rx


def restore(text: str, restore_map: dict[str, str]) -> str:
    """Put the original values back where the placeholders of ``restore_map`` appear."""
    if not restore_map:
        return text
    rx = re.compile("|".join(re.escape(p) for p in sorted(restore_map, key=len, reverse=True)))
    return rx.sub(lambda m: restore_map[m.group()], text)
