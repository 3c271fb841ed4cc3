"""Does a policy rule's ``match`` hold for a request?"""

from __future__ import annotations

from orchestrator.policy_model import Match
from orchestrator.signals import Signals
from orchestrator.types import RouteRequest


def in_window(minute: int, window: tuple[int, int]) -> bool:
    """``minute`` of the day inside ``[start, end)``; windows may wrap midnight."""
    start, end = window
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def matches(m: Match, request: RouteRequest, sig: Signals, minute_of_day: int) -> bool:
    """All the given conditions hold (a list condition holds if any entry does)."""
    if m.marked_personal is not None and request.marked_personal != m.marked_personal:
        return False
    if m.sensitivity is not None and sig.sensitivity not in m.sensitivity:
        return False
    if m.min_prompt_tokens is not None and request.prompt_tokens < m.min_prompt_tokens:
        return False
    if m.max_prompt_tokens is not None and request.prompt_tokens > m.max_prompt_tokens:
        return False
    if m.min_max_tokens is not None and request.max_tokens < m.min_max_tokens:
        return False
    if m.max_max_tokens is not None and request.max_tokens > m.max_max_tokens:
        return False
    if m.app_id is not None and request.app_id not in m.app_id:
        return False
    if m.labels is not None and not any(label in m.labels for label in request.labels):
        return False
    if m.pii is not None and not any(k in m.pii for k in sig.pii_kinds):
        return False
    if m.hours is not None and not in_window(minute_of_day, m.hours):
        return False
    return m.keywords is None or sig.prompt_words.any(m.keywords)
