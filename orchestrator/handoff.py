"""The redacted hand-off: what may leave the device, with PII as placeholders."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.policy_model import Policy
from orchestrator.privacy import PiiSpan, redact_many
from orchestrator.signals import Signals
from orchestrator.types import ContextRef, RouteRequest


def redaction_blockers(request: RouteRequest, sig: Signals, policy: Policy) -> list[str]:
    """Why a redacted hand-off is impossible for this request (empty: it is possible)."""
    pv = policy.privacy
    red = pv.redaction
    out: list[str] = []
    if not red.enabled:
        return ["redaction is disabled"]
    if request.marked_personal:
        out.append("the request is marked personal")
    if sig.local_keyword_hits:
        out.append("it mentions a local-only keyword")
    for label in sorted(sig.context_sensitivities):
        if label in pv.local_sensitivities and label not in red.sensitivities:
            out.append(f"{label} context cannot be left out")
    for kind in sig.pii_kinds:
        if kind in pv.local_pii and kind not in red.kinds:
            out.append(f"{kind} is not a redacted kind")
    return out


def build_handoff(
    request: RouteRequest, sig: Signals, policy: Policy
) -> tuple[str, tuple[ContextRef, ...], dict[str, str]]:
    """``(redacted prompt, context to send, placeholder -> original)``."""
    pv = policy.privacy
    kinds = set(pv.redaction.kinds) | set(pv.local_pii)
    items = [(request.prompt, [s for s in sig.prompt_spans if s.kind in kinds])]
    kept: list[ContextRef] = []
    left_out: list[tuple[str, list[PiiSpan]]] = []
    for item, spans in zip(request.context, sig.context_spans):
        found = [s for s in spans if s.kind in kinds]
        if item.sensitivity in pv.local_sensitivities:
            # Left out entirely (only reachable when its label is redactable); its PII
            # values are still scrubbed wherever else they appear.
            left_out.append((item.text, found))
            continue
        kept.append(item)
        items.append((item.text, found))
    texts, restore_map = redact_many(items + left_out)
    sent = tuple(replace(item, text=text) for item, text in zip(kept, texts[1 : len(items)]))
    return texts[0], sent, restore_map
