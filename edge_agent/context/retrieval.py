"""Packing search hits into a compact prompt block within a token budget.

Each item becomes one line::

    [email 2026-11-20 | Alice Smith, Bob | Lunch on Friday] Let's meet at noon at ...

Whitespace is collapsed, participants are shown by name (addresses only when there is no
name), and a long body is cut to a window around the first query word.
Items are taken best first while they fit; the last one that does not fit whole is cut
down (to no less than ``MIN_ITEM_TOKENS``) to use the rest of the budget. Tokens are
counted with the caller's tokenizer, and the whole block is checked at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from edge_agent.context.api import Hit, Item, Retrieved

#: Longest body excerpt of one item, in characters, before the budget is considered.
MAX_ITEM_CHARS = 600
#: A cut item must keep at least this many tokens to be worth including.
MIN_ITEM_TOKENS = 24
MAX_NAMES = 4


def pack(
    hits: Sequence[Hit],
    words: Sequence[str],
    token_budget: int,
    count_tokens: Callable[[str], int],
    limit: int,
) -> Retrieved:
    """The best ``limit`` hits that fit ``token_budget``, formatted."""
    lines: list[str] = []
    used: list[Item] = []
    spent = 0
    for hit in hits:
        if len(used) >= limit:
            break
        line = format_item(hit.item, words)
        cost = count_tokens(line + "\n")
        if spent + cost <= token_budget:
            lines.append(line)
            used.append(hit.item)
            spent += cost
            continue
        room = token_budget - spent
        if room >= MIN_ITEM_TOKENS:
            cut = _fit(line, room, count_tokens)
            if cut is not None:
                lines.append(cut)
                used.append(hit.item)
                spent += count_tokens(cut + "\n")
        break
    text = "\n".join(lines)
    tokens = count_tokens(text) if text else 0
    while lines and tokens > token_budget:  # tokenizers are not exactly additive
        lines.pop()
        used.pop()
        text = "\n".join(lines)
        tokens = count_tokens(text) if text else 0
    return Retrieved(text=text, items=tuple(used), tokens=tokens)


def format_item(item: Item, words: Sequence[str] = ()) -> str:
    """One compact line for ``item``."""
    head = [item.kind]
    when = item.starts_at or (None if item.kind == "contact" else item.created_at)
    if when is not None:
        stamp = when.strftime("%Y-%m-%d %H:%M") if item.starts_at else when.strftime("%Y-%m-%d")
        if item.ends_at is not None and item.starts_at is not None:
            same_day = item.ends_at.date() == item.starts_at.date()
            stamp += "-" + item.ends_at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
        head.append(stamp)
    bracket = [" ".join(head)]
    if item.participants:
        names = [_short_name(name) for name in item.participants[:MAX_NAMES]]
        if len(item.participants) > MAX_NAMES:
            names.append(f"+{len(item.participants) - MAX_NAMES}")
        bracket.append(", ".join(names))
    title = _squash(item.title)
    if title:
        bracket.append(title)
    body = _squash(item.body)
    if title and body.startswith(title) and len(body) > len(title):
        body = body[len(title) :].lstrip(" :-")  # importers often repeat the title
    body = excerpt(body, words, MAX_ITEM_CHARS)
    return f"[{' | '.join(bracket)}] {body}"


def excerpt(text: str, words: Sequence[str], max_chars: int) -> str:
    """``text`` cut to ``max_chars`` around the first of ``words`` it contains."""
    if len(text) <= max_chars:
        return text
    lowered = text.lower()
    start = 0
    positions = [lowered.find(word) for word in words if word]
    found = [pos for pos in positions if pos >= 0]
    if found:
        start = max(0, min(found) - max_chars // 4)
        start = min(start, len(text) - max_chars)
    piece = text[start : start + max_chars].strip()
    return ("…" if start > 0 else "") + piece + "…"


def _fit(line: str, room: int, count_tokens: Callable[[str], int]) -> str | None:
    """The longest prefix of ``line`` (with an ellipsis) costing at most ``room``."""
    low, high = 0, len(line)
    best: str | None = None
    while low < high:
        mid = (low + high + 1) // 2
        candidate = line[:mid].rstrip() + "…"
        if count_tokens(candidate + "\n") <= room:
            best, low = candidate, mid
        else:
            high = mid - 1
    if best is None or count_tokens(best + "\n") < MIN_ITEM_TOKENS:
        return None
    return best


def _short_name(participant: str) -> str:
    """"Ann Lee <ann@example.org>" -> "Ann Lee"; a bare address stays as it is."""
    name, bracket, _rest = participant.partition(" <")
    return name.strip() if bracket and name.strip() else participant


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


_SPACE = re.compile(r"\s+")
