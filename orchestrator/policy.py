"""Routing policies: load a TOML file into a validated, frozen ``Policy``.

Every user mistake raises ``PolicyError(file, key path, expected)``: unknown keys,
wrong types, negative prices or budgets, unknown PII kinds or labels, and rules that
can never match or never take effect. The format is documented in ``docs/policy.md``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from common.errors import PolicyError
from orchestrator._toml_reader import Table
from orchestrator.kinds import BUDGET_MODES, PII_KINDS, SENSITIVITIES
from orchestrator.policy_model import (
    Cascade,
    Cost,
    Latency,
    Match,
    Policy,
    Privacy,
    Quality,
    Redaction,
    Rule,
    SideLatency,
    Weights,
)
from orchestrator.policy_rules import check_rules, parse_rule

__all__ = [
    "Cascade",
    "Cost",
    "Latency",
    "Match",
    "Policy",
    "Privacy",
    "Quality",
    "Redaction",
    "Rule",
    "SideLatency",
    "Weights",
    "default_policy",
    "load_policy",
    "parse_policy",
    "policy_from_dict",
]

_DEFAULT = Policy()


def default_policy() -> Policy:
    """The policy in force without a file.

    Personal/secret context, requests marked personal and every detected PII kind stay
    on the device (no redacted hand-off); otherwise the cloud is used only when the
    local model cannot meet the deadline or the request is long enough that quality
    prefers the larger model (prompt over 2000 tokens or max_tokens over 1024).
    """
    return Policy(
        quality=Quality(prefer_cloud_prompt_tokens_over=2000, prefer_cloud_max_tokens_over=1024)
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at ``path``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(source, "<file>", f"a readable file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PolicyError(source, "<file>", "UTF-8 text") from None
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate TOML ``text``; ``source`` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, "<toml>", f"valid TOML ({exc})") from None
    return policy_from_dict(data, source)


def policy_from_dict(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """Validate an already parsed TOML document."""
    root = Table(source, "", data)
    root.number("version", 1, minimum=1, maximum=1, integer=True)
    d = default_policy()
    privacy = _privacy(root.table("privacy"), d.privacy)
    latency = _latency(root.table("latency"), d.latency)
    cost = _cost(root.table("cost"), d.cost)
    quality = _quality(root.table("quality"), d.quality)
    weights = _weights(root.table("weights"), d.weights)
    rules = tuple(parse_rule(t) for t in root.tables("rules"))
    root.finish()
    check_rules(source, rules, privacy)
    return Policy(privacy, latency, cost, quality, rules, weights, source)


def _privacy(t: Table, d: Privacy) -> Privacy:
    local_sens = t.strings("local_sensitivities", d.local_sensitivities, choices=SENSITIVITIES)
    local_pii = t.strings("local_pii", d.local_pii, choices=PII_KINDS)
    keywords = t.strings("local_keywords", d.local_keywords)
    r = t.table("redaction")
    dr = d.redaction
    redaction = Redaction(
        enabled=r.boolean("enabled", dr.enabled),
        kinds=r.strings("kinds", dr.kinds, choices=PII_KINDS),
        sensitivities=r.strings("sensitivities", dr.sensitivities, choices=("public", "personal")),
    )
    r.finish()
    t.finish()
    if redaction.enabled and not redaction.kinds and not redaction.sensitivities:
        raise t.error(r.key("kinds"), "at least one PII kind when enabled = true")
    return Privacy(local_sens, local_pii, keywords, redaction)


def _side(t: Table, d: SideLatency) -> SideLatency:
    side = SideLatency(
        ttft_ms=t.number("ttft_ms", d.ttft_ms),
        ms_per_prompt_token=t.number("ms_per_prompt_token", d.ms_per_prompt_token),
        tokens_per_s=t.number("tokens_per_s", d.tokens_per_s, exclusive_min=True),
    )
    t.finish()
    return side


def _latency(t: Table, d: Latency) -> Latency:
    lat = Latency(
        default_deadline_ms=t.number(
            "default_deadline_ms", d.default_deadline_ms, minimum=1, integer=True
        ),
        margin=t.number("margin", d.margin, maximum=10.0),
        ewma_alpha=t.number("ewma_alpha", d.ewma_alpha, maximum=1.0, exclusive_min=True),
        local=_side(t.table("local"), d.local),
        cloud=_side(t.table("cloud"), d.cloud),
    )
    t.finish()
    return lat


def _cost(t: Table, d: Cost) -> Cost:
    cost = Cost(
        currency=t.string("currency", d.currency),
        cloud_price_in_per_1k=t.number("cloud_price_in_per_1k", d.cloud_price_in_per_1k),
        cloud_price_out_per_1k=t.number("cloud_price_out_per_1k", d.cloud_price_out_per_1k),
        daily_budget=t.number("daily_budget", d.daily_budget),
        monthly_budget=t.number("monthly_budget", d.monthly_budget),
        on_budget_exhausted=t.string(
            "on_budget_exhausted", d.on_budget_exhausted, choices=BUDGET_MODES
        ),
        local_energy_j_per_token=t.number("local_energy_j_per_token", d.local_energy_j_per_token),
        energy_price_per_kwh=t.number("energy_price_per_kwh", d.energy_price_per_kwh),
    )
    t.finish()
    return cost


def _quality(t: Table, d: Quality) -> Quality:
    c = t.table("cascade")
    cascade = Cascade(
        enabled=c.boolean("enabled", d.cascade.enabled),
        first_tokens=c.number("first_tokens", d.cascade.first_tokens, minimum=1, integer=True),
        min_mean_prob=c.number("min_mean_prob", d.cascade.min_mean_prob, maximum=1.0),
    )
    c.finish()
    q = Quality(
        prefer_cloud_prompt_tokens_over=t.number(
            "prefer_cloud_prompt_tokens_over", d.prefer_cloud_prompt_tokens_over, integer=True
        ),
        prefer_cloud_max_tokens_over=t.number(
            "prefer_cloud_max_tokens_over", d.prefer_cloud_max_tokens_over, integer=True
        ),
        prefer_cloud_keywords=t.strings("prefer_cloud_keywords", d.prefer_cloud_keywords),
        cascade=cascade,
    )
    t.finish()
    return q


def _weights(t: Table, d: Weights) -> Weights:
    w = Weights(
        latency=t.number("latency", d.latency),
        cost=t.number("cost", d.cost),
        quality=t.number("quality", d.quality),
    )
    t.finish()
    if w.latency == 0 and w.cost == 0 and w.quality == 0:
        raise t.error(t.path, "at least one weight > 0")
    return w
