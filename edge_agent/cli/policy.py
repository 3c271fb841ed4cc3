"""`edge-agent policy check|explain` and `edge-agent audit`: routing from the shell.

``policy`` commands work offline on a policy file (no daemon, no model); ``audit``
reads the egress ledger to answer "what did my assistant send to the cloud?".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from common.errors import PolicyError
from edge_agent.config import Config
from orchestrator.estimators import Estimators
from orchestrator.policy import Policy, load_policy
from orchestrator.router import decide
from orchestrator.types import ContextRef, Decision, Preference, RouteRequest

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _err(message: str) -> None:
    print(f"edge-agent: {message}", file=sys.stderr)


def register(subparsers: Any) -> None:
    """Add ``policy`` and ``audit`` to the ``edge-agent`` command line."""
    p = subparsers.add_parser("policy", help="validate a routing policy or explain a decision")
    ps = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")

    c = ps.add_parser("check", help="validate a policy file")
    c.add_argument("file", help="the policy TOML file")
    c.set_defaults(func=cmd_check)

    e = ps.add_parser("explain", help="show the route a request would take, without running it")
    e.add_argument("file", help="the policy TOML file")
    e.add_argument("--prompt", required=True, help="the request's prompt text")
    e.add_argument("--max-tokens", type=int, default=128, help="tokens the answer may take (default 128)")
    e.add_argument("--prompt-tokens", type=int, default=0, help="default: about len(prompt)/4")
    e.add_argument("--deadline-ms", type=int, default=0, help="default: the policy's")
    e.add_argument("--max-cost", type=float, default=None, help="most the request may cost in the cloud (default: no cap)")
    e.add_argument("--personal", action="store_true", help="mark the prompt personal")
    e.add_argument("--route", choices=("auto", "local", "cloud"), default="auto", help="routing preference (default auto)")
    e.add_argument("--label", action="append", default=[], help="request label (repeatable)")
    e.add_argument("--app-id", default="", help="the calling app, for rules that match apps")
    e.add_argument("--contact", action="append", default=[], help="a contact name (repeatable)")
    e.add_argument("--stop", action="append", default=[], help="a stop sequence (repeatable)")
    e.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="SENSITIVITY:TEXT",
        help="a context item, e.g. personal:'Dentist on Tuesday' (repeatable)",
    )
    e.add_argument("--cloud-unavailable", action="store_true", help="decide as if the cloud were down")
    e.add_argument("--at", default="", metavar="HH:MM", help="time of day for rules with hours")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.set_defaults(func=cmd_explain)

    a = subparsers.add_parser("audit", help="list what was sent to the cloud (egress ledger)")
    a.add_argument("--since", default="7d", help="e.g. 24h, 7d, 2w, today, 2026-11-01 (default 7d)")
    a.add_argument("--until", default="", help="same forms as --since (default: now)")
    a.add_argument("--limit", type=int, default=200, help="most rows shown (default 200)")
    a.add_argument("--request-id", default=None, help="only the attempts of this request")
    a.add_argument("--db", dest="ledger", default=None, help="ledger file (default: from config)")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a.set_defaults(func=cmd_audit)


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        _err(exc.message)
        return 1
    pv = policy.privacy
    red = "on (" + ", ".join(pv.redaction.kinds) + ")" if pv.redaction.enabled else "off"
    budgets = [
        f"{name} {value:g} {policy.cost.currency}"
        for name, value in (
            ("daily", policy.cost.daily_budget),
            ("monthly", policy.cost.monthly_budget),
        )
        if value is not None
    ]
    print(f"{args.file}: OK")
    print(
        f"  rules: {len(policy.rules)}"
        + "".join(f"\n    {r.name} -> {r.action}" for r in policy.rules)
    )
    print(
        f"  local: {', '.join(pv.local_sensitivities) or '-'} context; PII {', '.join(pv.local_pii) or '-'}"
    )
    print(f"  redacted hand-off: {red}")
    print(
        f"  default deadline: {policy.default_deadline_ms} ms; budgets: {', '.join(budgets) or 'none'}"
    )
    return 0


def _request(args: argparse.Namespace) -> RouteRequest:
    context: list[ContextRef] = []
    for i, raw in enumerate(args.context):
        label, sep, text = raw.partition(":")
        if not sep or label not in ("public", "personal", "secret"):
            raise ValueError(
                f"--context {raw!r}: expected SENSITIVITY:TEXT with public, personal or secret"
            )
        context.append(ContextRef(item_id=f"cli-{i}", sensitivity=label, text=text))
    pref = {
        "auto": Preference.AUTO,
        "local": Preference.LOCAL_ONLY,
        "cloud": Preference.CLOUD_PREFERRED,
    }
    if args.max_tokens < 1 or args.prompt_tokens < 0 or args.deadline_ms < 0:
        raise ValueError("--max-tokens must be >= 1, --prompt-tokens and --deadline-ms >= 0")
    return RouteRequest(
        prompt=args.prompt,
        prompt_tokens=args.prompt_tokens or max(1, (len(args.prompt) + 3) // 4),
        max_tokens=args.max_tokens,
        preference=pref[args.route],
        deadline_ms=args.deadline_ms or None,
        max_cost=args.max_cost,
        marked_personal=args.personal,
        labels=tuple(args.label),
        app_id=args.app_id,
        context=tuple(context),
        contact_names=tuple(args.contact),
        stop=tuple(args.stop),
    )


def _when(args: argparse.Namespace) -> datetime:
    if not args.at:
        return datetime.now()
    try:
        t = time.fromisoformat(args.at)
    except ValueError:
        raise ValueError(f"--at {args.at!r}: expected HH:MM") from None
    return datetime.combine(datetime.now().date(), t)


def explain(
    policy: Policy, request: RouteRequest, *, cloud_available: bool, now: datetime
) -> Decision:
    """The decision for ``request`` with the policy's prior estimates."""
    est = Estimators(policy.latency).snapshot(
        prompt_tokens=request.prompt_tokens,
        cloud_available=cloud_available,
        price_in_per_1k=policy.cloud_price_in_per_1k,
        price_out_per_1k=policy.cloud_price_out_per_1k,
    )
    return decide(request, est, policy, None, now=now)


def cmd_explain(args: argparse.Namespace, cfg: Config) -> int:
    try:
        policy = load_policy(args.file)
        request = _request(args)
        now = _when(args)
    except PolicyError as exc:
        _err(exc.message)
        return 1
    except ValueError as exc:
        _err(str(exc))
        return 2
    d = explain(policy, request, cloud_available=not args.cloud_unavailable, now=now)
    if args.json:
        print(json.dumps(_decision_json(d), indent=2))
        return 0
    cur = policy.cost.currency
    print(f"route: {d.target.value}")
    print(f"why:   {d.explanation}")
    print(f"rules: {', '.join(d.rules_fired) or '-'}")
    print(f"pii:   {', '.join(d.pii_kinds) or 'none detected'}")
    print("options:")
    for o in d.options:
        state = "allowed" if o.allowed else "blocked"
        note = f"  ({o.note})" if o.note else ""
        print(f"  {o.target.value:<15}{o.latency_ms:>9.0f} ms {o.cost:>10.6f} {cur}  {state}{note}")
    if d.redacted_prompt is not None:
        print(f"sent to the cloud: {d.redacted_prompt}")
        for item in d.redacted_context:
            print(f"  context {item.item_id}: {item.text}")
        for stop in d.redacted_stop:
            print(f"  stop: {stop!r}")
    if d.escalate_to is not None:
        print(f"cascade: may escalate to {d.escalate_to.value} if the local answer looks unsure")
    return 0


def _decision_json(d: Decision) -> dict[str, Any]:
    return {
        "target": d.target.value,
        "rules_fired": list(d.rules_fired),
        "explanation": d.explanation,
        "pii_kinds": list(d.pii_kinds),
        "options": [
            {
                "target": o.target.value,
                "latency_ms": round(o.latency_ms, 1),
                "cost": o.cost,
                "allowed": o.allowed,
                "note": o.note,
            }
            for o in d.options
        ],
        "redacted_prompt": d.redacted_prompt,
        "redacted_context": [{"item_id": c.item_id, "text": c.text} for c in d.redacted_context],
        "redacted_stop": list(d.redacted_stop),
        "escalate_to": d.escalate_to.value if d.escalate_to else None,
    }


def parse_when(text: str, now: datetime) -> datetime:
    """``24h``/``7d``/``2w``/``30m`` ago, ``today``, ``yesterday`` or an ISO date/time."""
    s = text.strip().lower()
    m = _RELATIVE.match(s)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if s == "today":
        return midnight
    if s == "yesterday":
        return midnight - timedelta(days=1)
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r}: expected e.g. 24h, 7d, 2w, today, yesterday or 2026-11-01[T10:00]"
        ) from None
    return t if t.tzinfo else t.astimezone()


def cmd_audit(args: argparse.Namespace, cfg: Config) -> int:
    path = Path(args.ledger) if args.ledger else cfg.ledger_path
    now = datetime.now().astimezone()
    try:
        since = parse_when(args.since, now) if args.since else None
        until = parse_when(args.until, now) if args.until else None
    except ValueError as exc:
        _err(f"audit: {exc}")
        return 2
    if args.limit < 1:
        _err("audit: --limit must be >= 1")
        return 2
    if not path.exists():
        print(f"no ledger at {path} yet: nothing has been sent to the cloud", file=sys.stderr)
        return 0
    from edge_agent.adapters.ledger import Ledger  # SQLAlchemy only when needed

    ledger = Ledger(path)
    try:
        rows = ledger.query(since, until, args.limit, request_id=args.request_id)
    finally:
        ledger.close()
    if args.json:
        for r in rows:
            print(
                json.dumps(
                    {
                        "at": r.at.isoformat(),
                        "request_id": r.request_id,
                        "target": r.target,
                        "rule": r.rule,
                        "prompt_tokens": r.prompt_tokens,
                        "completion_tokens": r.completion_tokens,
                        "cost": r.cost,
                        "pii_kinds_redacted": list(r.pii_kinds_redacted),
                        "text_sha256": r.text_sha256,
                        "attempt": r.attempt,
                        "outcome": r.outcome,
                        "app_id": r.app_id,
                    }
                )
            )
        return 0
    width = max([7, *(len(r.request_id) for r in rows)])  # whole ids: two must never print alike
    app_width = min(32, max([8, *(len(r.app_id) for r in rows)]))
    print(
        f"{'time':<20} {'request':<{width}} {'#':>2} {'app/user':<{app_width}} {'outcome':<20} {'target':<15} "
        f"{'in':>6} {'out':>6} {'cost':>10}  {'redacted':<22} sha256"
    )
    for r in rows:
        when = r.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        kinds = ",".join(r.pii_kinds_redacted) or "-"
        print(
            f"{when:<20} {r.request_id:<{width}} {r.attempt:>2} {r.app_id or '-':<{app_width}} {r.outcome:<20} {r.target:<15} {r.prompt_tokens:>6} "
            f"{r.completion_tokens:>6} {r.cost:>10.6f}  {kinds:<22} {r.text_sha256[:12]}  [{r.rule}]"
        )
    span = f"since {since:%Y-%m-%d %H:%M}" if since else "all time"
    total = sum(r.cost for r in rows)
    tin = sum(r.prompt_tokens for r in rows)
    tout = sum(r.completion_tokens for r in rows)
    failed = sum(1 for r in rows if r.outcome != "answered")
    print(f"{len(rows)} cloud attempt(s) {span} ({failed} not answered): {tin} tokens sent, "
          f"{tout} received, cost {total:.6f}")
    return 0
