"""``decide``: where one request is answered, and why.

Order of evaluation (each step can only remove options, never add one back):

1. hard constraints: the caller's ``local_only``, cloud availability, privacy,
   the request's ``max_cost``, budgets;
2. the policy's ordered rules: the first that matches decides (a rule asking for
   the cloud where privacy forbids it falls back to the redacted hand-off if that is
   allowed, otherwise to the remaining steps);
3. the caller's ``cloud_preferred`` (unless only the local side meets the deadline);
4. deadlines: options that miss it are dropped while another one meets it;
5. weighted scoring of latency, cost and quality among what is left.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.budget import Spend, budget_blocks, cloud_cost, local_cost
from orchestrator.handoff import Handoff, build_handoff, leaves_items_out, redaction_blockers
from orchestrator.matching import matches
from orchestrator.policy_model import Policy
from orchestrator.signals import Signals, compute_signals
from orchestrator.types import (
    ContextRef,
    Decision,
    Estimates,
    OptionEstimate,
    Preference,
    RouteRequest,
    Target,
)

_CLOUDS = (Target.CLOUD, Target.CLOUD_REDACTED)
_ORDER = (Target.LOCAL, Target.CLOUD_REDACTED, Target.CLOUD)  # tie-break: most private first


class _State:
    """Options still allowed, and why the others are not."""

    def __init__(self, targets: tuple[Target, ...]) -> None:
        self.targets = targets
        self.blocked: dict[Target, str] = {}
        self.fired: list[str] = []
        self.why: list[str] = []

    def allowed(self, t: Target) -> bool:
        return t in self.targets and t not in self.blocked

    def block(self, targets: tuple[Target, ...], rule: str, note: str) -> None:
        hit = False
        for t in targets:
            if t in self.targets and t not in self.blocked:
                self.blocked[t] = note
                hit = True
        if hit and rule not in self.fired:
            self.fired.append(rule)


def _latency(ttft_ms: float, tokens_per_s: float, max_tokens: int) -> float:
    if tokens_per_s <= 0:
        return float("inf")
    return max(0.0, ttft_ms) + max(0, max_tokens) / tokens_per_s * 1000.0


def decide(
    request: RouteRequest,
    estimates: Estimates,
    policy: Policy,
    spend: Spend | None = None,
    *,
    now: datetime | None = None,
    signals: Signals | None = None,
) -> Decision:
    """Route one request. ``now`` (local time) is used by rules with ``hours``.

    Without ``signals``, in two looks: a quick one without person names (the expensive
    part of detection); when it keeps the request on the device for good, that is the
    answer, and otherwise, whenever anything may leave (cloud, a redacted hand-off, an
    escalation), the full detection decides. So the routing of a local request stays
    fast and the egress path carries the cost of finding names."""
    if signals is None:
        quick = _decide(request, estimates, policy, spend, now, compute_signals(request, policy, person_names=False))
        if _settled(quick, policy):
            return quick
        signals = compute_signals(request, policy)
    return _decide(request, estimates, policy, spend, now, signals)


def _settled(d: Decision, policy: Policy) -> bool:
    """Names found cannot change a decision that keeps everything local, unless a rule
    looks for them."""
    return (
        d.target is Target.LOCAL
        and d.escalate_to is None
        and not any("person_name" in (r.match.pii or ()) for r in policy.rules)
    )


def _decide(
    request: RouteRequest,
    estimates: Estimates,
    policy: Policy,
    spend: Spend | None,
    now: datetime | None,
    sig: Signals,
) -> Decision:
    deadline = float(request.deadline_ms or policy.default_deadline_ms)
    price_in, price_out = estimates.cloud_price_in_per_1k, estimates.cloud_price_out_per_1k
    if price_in == 0 and price_out == 0:
        price_in, price_out = policy.cloud_price_in_per_1k, policy.cloud_price_out_per_1k
    lat = {
        Target.LOCAL: _latency(
            estimates.local_ttft_ms, estimates.local_tokens_per_s, request.max_tokens
        ),
        Target.CLOUD: _latency(
            estimates.cloud_ttft_ms, estimates.cloud_tokens_per_s, request.max_tokens
        ),
    }
    lat[Target.CLOUD_REDACTED] = lat[Target.CLOUD]
    c_cloud = cloud_cost(request.prompt_tokens, request.max_tokens, price_in, price_out)
    cost = {
        Target.LOCAL: local_cost(request.prompt_tokens, request.max_tokens, policy.cost, estimates.local_j_per_token),
        Target.CLOUD: c_cloud,
        Target.CLOUD_REDACTED: c_cloud,
    }

    pv = policy.privacy
    reasons: list[tuple[str, str]] = []
    if request.marked_personal:
        reasons.append(("privacy.marked_personal", "the request is marked personal"))
    if sig.local_keyword_hits:
        reasons.append(("privacy.keyword", f"it mentions {sig.local_keyword_hits[0]!r}"))
    local_labels = sorted(s for s in sig.context_sensitivities if s in pv.local_sensitivities)
    if local_labels:
        reasons.append(("privacy.sensitive_context", f"it uses {'/'.join(local_labels)} context"))
    stored_labels = sorted(s for s in sig.stored_labels if s in pv.local_sensitivities)
    if stored_labels:
        reasons.append(("privacy.stored_value", f"it contains a value of a {'/'.join(stored_labels)} store item"))
    local_kinds = [k for k in sig.pii_kinds if k in pv.local_pii]
    if local_kinds:
        reasons.append(("privacy.pii", f"it contains PII ({', '.join(local_kinds)})"))

    handoff: Handoff | None = None
    st = _State(_ORDER if reasons else (Target.LOCAL, Target.CLOUD))
    if request.preference is Preference.LOCAL_ONLY:
        st.block(_CLOUDS, "preference.local_only", "the caller asked for local only")
        st.why.append("the caller asked for local only")
    if not estimates.cloud_available:
        st.block(_CLOUDS, "cloud.unavailable", "the cloud is unavailable")
        st.why.append("the cloud is unavailable")
    if reasons:
        for name, text in reasons:
            st.block((Target.CLOUD,), name, f"privacy: {text}")
        blockers = redaction_blockers(request, sig, policy)
        if not blockers and leaves_items_out(request, policy):
            handoff = build_handoff(request, sig, policy)
            if handoff.leak:
                blockers.append(handoff.leak)
        if blockers:
            st.block(
                (Target.CLOUD_REDACTED,), reasons[0][0], "no redacted hand-off: " + blockers[0]
            )
            st.why.append(reasons[0][1] + " and privacy keeps it on the device")
        else:
            st.why.append(reasons[0][1] + "; only a redacted hand-off may leave the device")
    if request.max_cost is not None and c_cloud > request.max_cost:
        st.block(_CLOUDS, "cost.max_cost", f"costs {c_cloud:.4g} > max_cost {request.max_cost:g}")
    budget_rule = budget_blocks(policy.cost, spend, c_cloud)
    budget_reject = budget_rule is not None and policy.cost.on_budget_exhausted == "reject"
    if budget_rule is not None and not budget_reject:
        st.block(_CLOUDS, budget_rule, f"the {budget_rule.split('.')[1]} budget is spent")

    target = _choose(request, policy, sig, st, lat, cost, deadline, now)
    if budget_reject and budget_rule is not None and target in _CLOUDS:
        st.fired.append(budget_rule)
        st.fired.append("budget.reject")
        st.why.append(f"the {budget_rule.split('.')[1]} budget is spent")
        target = Target.REJECT
    if budget_reject and budget_rule is not None:
        for t in _CLOUDS:
            st.blocked.setdefault(t, f"the {budget_rule.split('.')[1]} budget is spent")
    return _decision(request, policy, sig, st, target, lat, cost, handoff)


def _choose(
    request: RouteRequest,
    policy: Policy,
    sig: Signals,
    st: _State,
    lat: dict[Target, float],
    cost: dict[Target, float],
    deadline: float,
    now: datetime | None,
) -> Target:
    """The target: the first policy rule that matches, else the caller's cloud
    preference, else the options that meet the deadline, scored."""
    chosen = _by_rules(request, policy, sig, st, now)
    if chosen is None:
        chosen = _by_preference(request, policy, st, lat, deadline)
    if chosen is None:
        chosen = _by_deadline_and_score(policy, sig, st, lat, cost, deadline)
    return chosen


def _by_rules(request: RouteRequest, policy: Policy, sig: Signals, st: _State, now: datetime | None) -> Target | None:
    """The target of the first matching rule, when it is allowed (None: no rule decides)."""
    if policy.rules:
        moment = now or datetime.now()
        minute = moment.hour * 60 + moment.minute
        for rule in policy.rules:
            if not matches(rule.match, request, sig, minute):
                continue
            st.fired.append(f"rule:{rule.name}")
            wanted = Target(rule.action)
            if wanted is Target.REJECT:
                st.why.append(f"rule {rule.name!r} rejects it")
                return Target.REJECT
            if (
                wanted is Target.CLOUD
                and not st.allowed(Target.CLOUD)
                and st.allowed(Target.CLOUD_REDACTED)
            ):
                wanted = Target.CLOUD_REDACTED
            if (
                wanted is Target.CLOUD_REDACTED
                and wanted not in st.targets
                and policy.privacy.redaction.enabled
                and st.allowed(Target.CLOUD)
            ):
                st.targets = _ORDER  # a redacted copy of what could even go out plain
            if st.allowed(wanted):
                st.why.append(f"rule {rule.name!r} chose {wanted.value}")
                return wanted
            st.why.append(
                f"rule {rule.name!r} wanted {wanted.value} but {st.blocked.get(wanted, 'it is not an option')}"
            )
            break
    return None


def _by_preference(request: RouteRequest, policy: Policy, st: _State, lat: dict[Target, float], deadline: float) -> Target | None:
    """The cloud, when the caller prefers it and it is allowed (None otherwise)."""
    margin = 1.0 + policy.latency.margin
    if request.preference is Preference.CLOUD_PREFERRED:
        # The deadline outranks the preference: a cloud that would miss it while the
        # local model would not is not taken.
        local_meets = st.allowed(Target.LOCAL) and lat[Target.LOCAL] * margin <= deadline
        for t in (Target.CLOUD, Target.CLOUD_REDACTED):
            if not st.allowed(t):
                continue
            if local_meets and lat[t] * margin > deadline:
                st.block((t,), "latency.cloud_misses_deadline", f"misses the {deadline:.0f} ms deadline")
                continue
            st.fired.append("preference.cloud_preferred")
            st.why.append("the caller prefers the cloud")
            return t
    return None


def _by_deadline_and_score(
    policy: Policy, sig: Signals, st: _State, lat: dict[Target, float], cost: dict[Target, float], deadline: float,
) -> Target:
    """Among the allowed targets, those that meet the deadline, scored on latency, cost
    and quality (the most private wins a tie)."""
    margin = 1.0 + policy.latency.margin
    allowed = [t for t in _ORDER if st.allowed(t)]
    if len(allowed) == 1:
        if allowed[0] is Target.LOCAL and "latency.cloud_misses_deadline" in st.fired:
            st.why.append(f"only local meets the {deadline:.0f} ms deadline")
        return allowed[0]
    meeting = [t for t in allowed if lat[t] * margin <= deadline]
    if not meeting:
        st.fired.append("latency.none_meets_deadline")
        best = min(allowed, key=lambda t: lat[t])
        st.why.append(f"no option meets the {deadline:.0f} ms deadline; {best.value} is fastest")
        return best
    for t in allowed:
        if t not in meeting:
            name = (
                "latency.local_misses_deadline"
                if t is Target.LOCAL
                else "latency.cloud_misses_deadline"
            )
            st.block((t,), name, f"misses the {deadline:.0f} ms deadline")
    if len(meeting) == 1:
        st.why.append(f"only {meeting[0].value} meets the {deadline:.0f} ms deadline")
        return meeting[0]

    w = policy.weights
    prefer_cloud = bool(sig.quality_reasons)
    if prefer_cloud:
        st.fired.append("quality.prefer_cloud")
    max_cost = max(cost[t] for t in meeting)

    def score(t: Target) -> float:
        s = w.latency * lat[t] / deadline
        if max_cost > 0:
            s += w.cost * cost[t] / max_cost
        if prefer_cloud and t is Target.LOCAL:
            s += w.quality
        return s

    best = min(meeting, key=score)  # min keeps the first (most private) on ties
    st.fired.append("score")
    if prefer_cloud and best is not Target.LOCAL:
        st.why.append(f"quality prefers the cloud ({sig.quality_reasons[0]})")
    else:
        st.why.append(f"{best.value} scores best on latency/cost/quality")
    return best


def _decision(
    request: RouteRequest,
    policy: Policy,
    sig: Signals,
    st: _State,
    target: Target,
    lat: dict[Target, float],
    cost: dict[Target, float],
    handoff: Handoff | None,
) -> Decision:
    options = tuple(
        OptionEstimate(
            target=t,
            latency_ms=lat[t],
            cost=cost[t],
            allowed=st.allowed(t),
            note="chosen" if t is target else st.blocked.get(t, ""),
        )
        for t in st.targets
    )
    escalate: Target | None = None
    if (
        target is Target.LOCAL
        and policy.quality.cascade.enabled
        and not any(f.startswith("rule:") for f in st.fired)
    ):
        escalate = next((t for t in (Target.CLOUD, Target.CLOUD_REDACTED) if st.allowed(t)), None)
    redacted_prompt: str | None = None
    restore: dict[str, str] = {}
    context: tuple[ContextRef, ...] = ()
    stops: tuple[str, ...] = ()
    schema: tuple[str, ...] = ()
    if Target.CLOUD_REDACTED in (target, escalate):
        handoff = handoff or build_handoff(request, sig, policy)
        redacted_prompt, context, restore = handoff.prompt, handoff.context, handoff.restore
        stops, schema = handoff.stop, handoff.schema_strings
        if target is Target.CLOUD_REDACTED:
            st.fired.append("privacy.redaction")
    est = f"(est. local {lat[Target.LOCAL]:.0f} ms, cloud {lat[Target.CLOUD]:.0f} ms / {cost[Target.CLOUD]:.4g} {policy.cost.currency})"
    why = "; ".join(st.why) if st.why else "only option"
    return Decision(
        target=target,
        rules_fired=tuple(st.fired),
        explanation=f"{target.value}: {why} {est}",
        options=options,
        pii_kinds=sig.pii_kinds,
        redacted_prompt=redacted_prompt,
        restore=restore,
        redacted_context=context,
        escalate_to=escalate,
        redacted_stop=stops,
        redacted_schema_strings=schema,
    )
