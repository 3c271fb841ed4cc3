"""Turning user text into a safe FTS5 match expression.

User text is never passed to FTS5 as syntax. It is split into words (runs of letters and
digits, the same notion of a word as the ``unicode61`` tokenizer) and every word is
written as a double-quoted string, so ``AND``, ``NEAR``, ``*``, ``^``, ``:``, quotes and
unbalanced parentheses are all just words or separators.

Common English function words are dropped when the query has other words, so natural
questions ("when is my dentist appointment?") rank by their content words. ``any``
semantics (``OR``) rank items by how well they match; ``all`` semantics (implicit
``AND``) are used where precision matters, such as forgetting by query.
"""

from __future__ import annotations

import re
from collections import Counter

from edge_agent.context.limits import MAX_QUERY_TERMS

#: Characters of a prompt looked at when choosing its key words for retrieval, and the
#: longest word taken from it (longer runs are data, not words).
MAX_PROMPT_SCAN_CHARS = 256 * 1024
MAX_KEY_WORD_CHARS = 64

_WORD = re.compile(r"[^\W_]+")

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "tell", "show", "find", "give", "please", "let", "s", "t"]
)


def terms(query: str, *, drop_stopwords: bool = True) -> list[str]:
    """The distinct lower-case words of ``query`` (at most ``MAX_QUERY_TERMS``)."""
    words: dict[str, None] = {}
    for match in _WORD.finditer(query.lower()):
        words.setdefault(match.group(0), None)
    found = list(words)
    if drop_stopwords:
        content = [word for word in found if word not in STOPWORDS]
        if content:
            found = content
    return found[:MAX_QUERY_TERMS]


def match_expression(words: list[str], *, mode: str = "any") -> str:
    """An FTS5 expression matching any (``OR``) or all (implicit ``AND``) of ``words``."""
    if not words:
        raise ValueError("no words to match")
    quoted = [f'"{word}"' for word in words]  # words hold no quotes: see _WORD
    joiner = " OR " if mode == "any" else " "
    return joiner.join(quoted)


def key_terms(text: str, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """The content words of a prompt of any length, most frequent first (ties: earliest).

    Unlike :func:`terms` this never falls back to function words: a prompt made only of
    them ("what is this?") has no key words. Only the first ``MAX_PROMPT_SCAN_CHARS``
    characters are read.
    """
    counts: Counter[str] = Counter()
    for match in _WORD.finditer(text[:MAX_PROMPT_SCAN_CHARS].lower()):
        word = match.group(0)
        if word not in STOPWORDS and len(word) <= MAX_KEY_WORD_CHARS:
            counts[word] += 1
    return [word for word, _ in counts.most_common(limit)]  # stable: first seen wins ties
