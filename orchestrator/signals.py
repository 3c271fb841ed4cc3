"""Request features the router looks at: PII, sensitivity, keywords, quality hints.

Computed once per request; keyword tests run against a word-normalised copy of the
text so a 50-rule policy costs one tokenisation, not 50 regex scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from orchestrator.kinds import SENSITIVITIES, sensitivity_rank
from orchestrator.policy_model import Policy
from orchestrator.privacy import PiiSpan, detect_pii
from orchestrator.stored_values import find_stored
from orchestrator.types import RouteRequest

_SPACE = re.compile(r"\s+")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@lru_cache(maxsize=4096)
def _phrase(keyword: str) -> tuple[str, re.Pattern[str] | None]:
    """(lowercased first word, anchored pattern for the rest of a phrase, or None)."""
    words = keyword.lower().split()
    if len(words) == 1:
        return words[0], None
    rest = "".join(r"\s+" + re.escape(w) for w in words[1:])
    return words[0], re.compile(rest + r"(?!\w)")


class Words:
    """Whole-word, case-insensitive keyword tests over one or more texts.

    Substring search first (C speed), word boundaries checked only where it hits, so
    a policy with many keywords costs little on a long prompt.
    """

    def __init__(self, *texts: str) -> None:
        self._texts = texts

    @cached_property
    def _low(self) -> str:
        return "\n".join(t.lower() for t in self._texts)

    def has(self, keyword: str) -> bool:
        low = self._low
        first, phrase = _phrase(keyword)
        if not first or first not in low:
            return False
        n = len(first)
        i = low.find(first)
        while i != -1:
            j = i + n
            if i == 0 or not _is_word_char(low[i - 1]):
                if phrase is not None:
                    if phrase.match(low, j):
                        return True
                elif j == len(low) or not _is_word_char(low[j]):
                    return True
            i = low.find(first, i + 1)
        return False

    def hits(self, keywords: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(k for k in keywords if self.has(k))

    def any(self, keywords: tuple[str, ...]) -> bool:
        return any(self.has(k) for k in keywords)


@dataclass(frozen=True)
class Signals:
    """What the router knows about one request."""

    prompt_spans: tuple[PiiSpan, ...]
    context_spans: tuple[tuple[PiiSpan, ...], ...]  # one tuple per context item
    stop_spans: tuple[tuple[PiiSpan, ...], ...]  # one tuple per stop sequence
    schema_spans: tuple[tuple[PiiSpan, ...], ...]  # one tuple per schema string
    # Stored values found: per outgoing text (prompt, stops, schema strings in that
    # order), the ``personal_context`` spans of values whose label keeps them local.
    stored_spans: tuple[tuple[PiiSpan, ...], ...]
    stored_labels: frozenset[str]  # labels of the stored values found
    pii_kinds: tuple[str, ...]  # sorted, distinct
    sensitivity: str  # highest label among context items (and the client's mark)
    context_sensitivities: frozenset[str]
    local_keyword_hits: tuple[str, ...]
    prompt_words: Words
    quality_reasons: tuple[str, ...]


def compute_signals(request: RouteRequest, policy: Policy, *, person_names: bool = True) -> Signals:
    """Detect PII in prompt, context and stop sequences, rank sensitivity, test keywords.

    ``person_names=False``: a quick look without names other than contacts (see
    ``router.decide``)."""
    names = request.contact_names

    def detect(text: str) -> tuple[PiiSpan, ...]:
        return tuple(detect_pii(text, names, person_names=person_names))

    prompt_spans = detect(request.prompt)
    context_spans = tuple(detect(c.text) for c in request.context)
    stop_spans = tuple(detect(s) for s in request.stop)
    schema_spans = tuple(detect(s) for s in request.schema_strings)
    kinds = {s.kind for s in prompt_spans}
    for spans in (*context_spans, *stop_spans, *schema_spans):
        kinds.update(s.kind for s in spans)
    stored_spans, stored_labels = _stored(request, policy, (prompt_spans, *stop_spans, *schema_spans))
    labels = frozenset(c.sensitivity for c in request.context)
    rank = max((sensitivity_rank(s) for s in labels | stored_labels), default=0)
    if request.marked_personal:
        rank = max(rank, 1)
    prompt_words = Words(request.prompt)
    local_hits: tuple[str, ...] = ()
    if policy.privacy.local_keywords:
        local_hits = prompt_words.hits(policy.privacy.local_keywords)
        if not local_hits and (request.context or request.stop or request.schema_strings):
            others = Words(*request.stop, *request.schema_strings, *(c.text for c in request.context))
            local_hits = others.hits(policy.privacy.local_keywords)
    return Signals(
        prompt_spans=prompt_spans,
        context_spans=context_spans,
        stop_spans=stop_spans,
        schema_spans=schema_spans,
        stored_spans=stored_spans,
        stored_labels=stored_labels,
        pii_kinds=tuple(sorted(kinds)),
        sensitivity=SENSITIVITIES[rank],
        context_sensitivities=labels,
        local_keyword_hits=local_hits,
        prompt_words=prompt_words,
        quality_reasons=_quality_reasons(request, policy, prompt_words),
    )


def outgoing_texts(request: RouteRequest) -> tuple[str, ...]:
    """The request's own texts that may leave, in the order of ``Signals.stored_spans``."""
    return (request.prompt, *request.stop, *request.schema_strings)


def _stored(
    request: RouteRequest, policy: Policy, pii: tuple[tuple[PiiSpan, ...], ...]
) -> tuple[tuple[tuple[PiiSpan, ...], ...], frozenset[str]]:
    """Where the request spells a sensitive store item's value, and the items' labels.
    A value detected as PII of a kind (a contact's phone number) follows the rules of
    its kind instead."""
    if not request.stored_values:
        return tuple(() for _ in outgoing_texts(request)), frozenset()
    local = policy.privacy.local_sensitivities
    spans: list[tuple[PiiSpan, ...]] = []
    labels: set[str] = set()
    for text, detected in zip(outgoing_texts(request), pii):
        found = [
            (s, label)
            for s, label in find_stored(text, request.stored_values)
            if not any(d.start <= s.start and s.end <= d.end for d in detected)
        ]
        labels.update(label for _, label in found)
        spans.append(tuple(s for s, label in found if label in local))
    return tuple(spans), frozenset(labels)


def _quality_reasons(request: RouteRequest, policy: Policy, words: Words) -> tuple[str, ...]:
    q = policy.quality
    out: list[str] = []
    if (
        q.prefer_cloud_prompt_tokens_over
        and request.prompt_tokens > q.prefer_cloud_prompt_tokens_over
    ):
        out.append(f"prompt over {q.prefer_cloud_prompt_tokens_over} tokens")
    if q.prefer_cloud_max_tokens_over and request.max_tokens > q.prefer_cloud_max_tokens_over:
        out.append(f"max_tokens over {q.prefer_cloud_max_tokens_over}")
    if q.prefer_cloud_keywords:
        hits = words.hits(q.prefer_cloud_keywords)
        if hits:
            out.append("keyword " + ", ".join(repr(h) for h in hits))
    return tuple(out)
