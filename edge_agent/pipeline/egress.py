"""What may leave the device besides the prompt, made ready for the router.

* The JSON schema of a structured answer goes to the cloud with the prompt. Its strings
  (property names, enum values, descriptions, titles, defaults, examples) are handed to
  the router in document order (``schema_strings``) and put back, redacted, into the
  same structure (``with_schema_strings``).
* Values of the user's sensitive store items typed into a request (a PIN, a password, a
  case number) are looked up in the store whatever ``use_context`` says
  (``stored_values``); the router keeps them local or replaces them as the policy says.
* ``sent_digest_text``: the text the egress ledger hashes, covering every field sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

from common.chat import Prompt
from edge_agent.pipeline.ports import ContextStore
from orchestrator.stored_values import MIN_VALUE_CHARS, normalised
from orchestrator.types import StoredValue

# -- the JSON schema ------------------------------------------------------------------------

JsonValue = object


def _walk(node: JsonValue) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def schema_strings(schema: str) -> tuple[str, ...]:
    """Every string of the JSON schema ``schema`` (keys and values), in document order;
    () without a schema. The schema was validated before, so it parses."""
    if not schema:
        return ()
    return tuple(_walk(json.loads(schema)))


def _rebuild(node: JsonValue, strings: Iterator[str]) -> JsonValue:
    if isinstance(node, str):
        return next(strings)
    if isinstance(node, dict):
        out: dict[str, JsonValue] = {}
        for value in node.values():
            key = next(strings)  # the key comes before its value, as in _walk
            out[key] = _rebuild(value, strings)
        return out
    if isinstance(node, list):
        return [_rebuild(item, strings) for item in node]
    return node


def with_schema_strings(schema: str, strings: Sequence[str]) -> str:
    """``schema`` with its strings replaced, in ``schema_strings`` order (compact JSON)."""
    if not schema or not strings:
        return schema
    rebuilt = _rebuild(json.loads(schema), iter(strings))
    return json.dumps(rebuilt, ensure_ascii=False, separators=(",", ":"))


# -- values of sensitive store items -------------------------------------------------------

SENSITIVE_LABELS = ("personal", "secret")
MAX_LOOKUP_TERMS = 24
MAX_LOOKUP_ITEMS = 50
_EDGE = "\"'()[]{}<>.,;:!?…“”‘’«»*"
_WORD = re.compile(r"[^\W_]+")
# Dates, times, amounts and percentages are everywhere; codes and numbers are not.
_COMMONPLACE = re.compile(
    r"\d{1,2}:\d{2}(?::\d{2})?(?:am|pm)?|\d{1,2}(?:am|pm)"
    r"|[$€£¥]\S*|\S*[$€£¥%]|\d+(?:[.,]\d+)?(?:st|nd|rd|th|km|kg|ms|mb|gb|h|m|s)",
    re.IGNORECASE,
)
_DATE = re.compile(r"(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})")


def _is_date(token: str) -> bool:
    """2026-03-14, 14/03/2026, 3.14.26 (but not a code such as 55-19-83)."""
    m = _DATE.fullmatch(token)
    if m is None:
        return False
    a, b, c = (int(g) for g in m.groups())
    if len(m.group(1)) == 4:
        return 1 <= b <= 12 and 1 <= c <= 31
    return len(m.group(3)) in (2, 4) and (1 <= a <= 31 and 1 <= b <= 12 or 1 <= a <= 12 and 1 <= b <= 31)


def distinctive_tokens(text: str) -> list[str]:
    """Code-like words of ``text``: at least ``MIN_VALUE_CHARS`` letters and digits, one of
    them a digit, not a date, time or amount ("7391", "Qz8!vRt2", "2026-FC-0193")."""
    out: list[str] = []
    for raw in text.split():
        token = raw.strip(_EDGE)
        core = normalised(token)
        if len(core) < MIN_VALUE_CHARS or not any(ch.isdigit() for ch in core):
            continue
        if not _COMMONPLACE.fullmatch(token) and not _is_date(token):
            out.append(token)
    return out


def stored_values(store: ContextStore, texts: Sequence[str]) -> tuple[StoredValue, ...]:
    """Distinctive values of the store's personal and secret items that ``texts`` spell
    (as written or normalised); the router finds where."""
    wanted = [t for text in texts for t in distinctive_tokens(text)]
    if not wanted:
        return ()
    terms: dict[str, None] = {}
    for token in wanted:
        for w in _WORD.findall(token.lower()):
            terms.setdefault(w, None)
    query = " ".join(list(terms)[:MAX_LOOKUP_TERMS])
    hits = store.search(query, sensitivities=SENSITIVE_LABELS, limit=MAX_LOOKUP_ITEMS)
    flat = normalised(" ".join(texts))
    found: dict[tuple[str, str], StoredValue] = {}
    for hit in hits:
        item = hit.item
        for token in distinctive_tokens(f"{item.title}\n{item.body}"):
            if normalised(token) in flat:
                found.setdefault((token, item.sensitivity), StoredValue(token, item.sensitivity))
    return tuple(found.values())


# -- the ledger's digest -----------------------------------------------------------------------


def sent_digest_text(sent: Prompt, json_schema: str = "") -> str:
    """The text the ledger hashes for what was sent: the prompt, or the messages as
    canonical JSON (roles included); with a JSON schema, one canonical JSON object of
    both (``{"prompt"|"messages": ..., "json_schema": ...}``). Stop sequences are not
    sent (they are applied on the device)."""
    body: object = sent if isinstance(sent, str) else [{"role": m.role, "content": m.content} for m in sent]
    if not json_schema:
        return sent if isinstance(sent, str) else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    key = "prompt" if isinstance(sent, str) else "messages"
    return json.dumps({key: body, "json_schema": json_schema}, ensure_ascii=False, separators=(",", ":"))
