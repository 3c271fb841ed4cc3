"""The redacted hand-off: what may leave the device, with PII as placeholders.

Context items whose label the policy lets the hand-off *leave out* are removed from
the context sent and, because the daemon may have embedded them in the prompt, each of
their lines is also replaced by a ``[PERSONAL_CONTEXT_n]`` placeholder wherever it
appears. If a long fragment of such an item still survives (the prompt formatted it
differently), the hand-off is refused and the request stays local.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.policy_model import Policy
from orchestrator.privacy import PiiSpan, redact_many
from orchestrator.signals import Signals
from orchestrator.types import ContextRef, RouteRequest

_MIN_LINE = 4  # shorter lines of a left-out item are not worth a placeholder
# Leak check after scrubbing: no 32-character fragment of a left-out item may remain
# (windows of 24 at a stride of 8 catch every such fragment), nor any of its
# distinctive words: ones with a digit (codes, account numbers) or capitalised ones
# inside a sentence (names, places).
_WINDOW = 24
_STRIDE = 8
_TOKEN_EDGE = "\"'()[]{}<>.,;:!?…“”‘’«»"


@dataclass(frozen=True)
class Handoff:
    """What goes to the cloud for a ``cloud_redacted`` decision."""

    prompt: str
    context: tuple[ContextRef, ...]
    restore: dict[str, str] = field(default_factory=dict)
    stop: tuple[str, ...] = ()
    leak: str = ""  # non-empty: why this hand-off must not be sent
    schema_strings: tuple[str, ...] = ()


def redaction_blockers(request: RouteRequest, sig: Signals, policy: Policy) -> list[str]:
    """Why a redacted hand-off is impossible by policy (empty: it is possible)."""
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
    for label in sorted(sig.stored_labels):
        if label in pv.local_sensitivities and label not in red.sensitivities:
            out.append(f"a value of a {label} store item cannot be left out")
    for kind in sig.pii_kinds:
        if kind in pv.local_pii and kind not in red.kinds:
            out.append(f"{kind} is not a redacted kind")
    return out


def leaves_items_out(request: RouteRequest, policy: Policy) -> bool:
    """Whether the hand-off would leave context items out (and must scrub them)."""
    local = policy.privacy.local_sensitivities
    return any(c.sensitivity in local for c in request.context)


def _whole(text: str) -> list[PiiSpan]:
    """One span per non-trivial line of ``text``."""
    spans: list[PiiSpan] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.strip()
        if len(body) >= _MIN_LINE:
            start = pos + line.index(body)
            spans.append(PiiSpan("personal_context", start, start + len(body)))
        pos += len(line)
    return spans


def _distinctive(text: str) -> set[str]:
    out: set[str] = set()
    for line in text.splitlines():
        words = [w.strip(_TOKEN_EDGE) for w in line.split()]
        for i, w in enumerate(words):
            if (
                len(w) >= 3
                and any(ch.isdigit() for ch in w)
                or (
                    i > 0
                    and len(w) >= 4
                    and w[0].isupper()
                    and not words[i - 1].endswith((".", "!", "?"))
                )
            ):
                out.add(w)
    return out


def _leak(left_out: list[str], outgoing: list[str]) -> str:
    flat_out = [" ".join(o.split()) for o in outgoing]
    for text in left_out:
        flat = " ".join(text.split())
        starts = list(range(0, max(0, len(flat) - _WINDOW) + 1, _STRIDE))
        if len(flat) > _WINDOW:
            starts.append(len(flat) - _WINDOW)
        for i in starts:
            window = flat[i : i + _WINDOW]
            if len(window) == _WINDOW and any(window in o for o in flat_out):
                return "left-out personal context could not be separated from the prompt"
        for word in _distinctive(text):
            if any(word in o for o in flat_out):
                return "left-out personal context could not be separated from the prompt"
    return ""


def build_handoff(request: RouteRequest, sig: Signals, policy: Policy) -> Handoff:
    """The redacted prompt and context, and the map to restore the answer."""
    pv = policy.privacy
    kinds = set(pv.redaction.kinds) | set(pv.local_pii)
    stored = iter(sig.stored_spans)
    items = [(request.prompt, [s for s in sig.prompt_spans if s.kind in kinds] + list(next(stored, ())))]
    kept: list[ContextRef] = []
    left_out: list[tuple[str, list[PiiSpan]]] = []
    for item, spans in zip(request.context, sig.context_spans):
        found = [s for s in spans if s.kind in kinds]
        if item.sensitivity in pv.local_sensitivities:
            # Left out (only reachable when its label is redactable): its lines and
            # its PII values are scrubbed wherever else they appear.
            left_out.append((item.text, found + _whole(item.text)))
            continue
        kept.append(item)
        items.append((item.text, found))
    n_context = len(items)
    for stop, spans in zip(request.stop, sig.stop_spans):
        items.append((stop, [s for s in spans if s.kind in kinds] + list(next(stored, ()))))
    n_stop = len(items)
    for string, spans in zip(request.schema_strings, sig.schema_spans):
        items.append((string, [s for s in spans if s.kind in kinds] + list(next(stored, ()))))
    texts, restore_map = redact_many(items + left_out)
    n = len(items)
    sent = tuple(replace(item, text=text) for item, text in zip(kept, texts[1:n_context]))
    stops = tuple(texts[n_context:n_stop])
    leak = _leak([t for t, _ in left_out], texts[:n]) if left_out else ""
    return Handoff(texts[0], sent, restore_map, stops, leak, tuple(texts[n_stop:n]))
