"""Parsing and static checks of the ordered ``[[rules]]`` of a policy.

A rule that can never match (empty lists, min above max, an empty time window, a rule
after a catch-all) or never take effect (sending to the cloud what privacy always keeps
local) is a mistake in the file and is rejected with its key path.
"""

from __future__ import annotations

import re

from common.errors import PolicyError
from orchestrator._toml_reader import Table
from orchestrator.kinds import ACTIONS, PII_KINDS, SENSITIVITIES
from orchestrator.policy_model import Match, Privacy, Rule

_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _hours(t: Table) -> tuple[int, int] | None:
    raw = t.string("hours", None)
    if raw is None:
        return None
    m = _HOURS.match(raw.strip())
    if not m or (m.group(3) == "24" and m.group(4) != "00"):
        raise t.error(t.key("hours"), f'a window "HH:MM-HH:MM" (e.g. "22:00-06:00"), got {raw!r}')
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if start == end:
        raise t.error(t.key("hours"), "a non-empty window (start equals end: never matches)")
    return start, end


def _match(t: Table) -> Match:
    def tokens(name: str) -> int | None:
        value: int | None = t.number(name, None, integer=True)
        return value

    marked: bool | None = t.boolean("marked_personal", None)
    m = Match(
        sensitivity=t.strings("sensitivity", None, choices=SENSITIVITIES, non_empty=True),
        pii=t.strings("pii", None, choices=PII_KINDS, non_empty=True),
        labels=t.strings("labels", None, non_empty=True),
        app_id=t.strings("app_id", None, non_empty=True),
        keywords=t.strings("keywords", None, non_empty=True),
        min_prompt_tokens=tokens("min_prompt_tokens"),
        max_prompt_tokens=tokens("max_prompt_tokens"),
        min_max_tokens=tokens("min_max_tokens"),
        max_max_tokens=tokens("max_max_tokens"),
        hours=_hours(t),
        marked_personal=marked,
    )
    t.finish()
    for lo, hi in (
        ("min_prompt_tokens", "max_prompt_tokens"),
        ("min_max_tokens", "max_max_tokens"),
    ):
        a, b = getattr(m, lo), getattr(m, hi)
        if a is not None and b is not None and a > b:
            raise t.error(t.key(lo), f"at most {hi} ({b}), got {a}: the rule can never match")
    if m.marked_personal and m.sensitivity is not None and m.sensitivity == ("public",):
        raise t.error(
            t.key("sensitivity"),
            "personal or secret with marked_personal = true (a marked request is never public)",
        )
    return m


def parse_rule(t: Table) -> Rule:
    """One ``[[rules]]`` entry."""
    name = t.string("name", None)
    if name is None or not name.strip():
        raise t.error(t.key("name"), "a non-empty string naming the rule")
    action = t.string("action", None, choices=ACTIONS)
    if action is None:
        raise t.error(t.key("action"), f"one of {', '.join(ACTIONS)}")
    match = _match(t.table("match"))
    t.finish()
    return Rule(name=name.strip(), action=action, match=match)


def _never_leaves(m: Match, privacy: Privacy) -> str | None:
    """Why every request this match accepts must stay local, or None."""
    red = privacy.redaction
    if m.marked_personal:
        return "requests marked personal always stay local"
    sens = m.sensitivity
    if (
        sens is not None
        and all(s in privacy.local_sensitivities for s in sens)
        and (not red.enabled or not all(s in red.sensitivities for s in sens))
    ):
        return f"privacy keeps {', '.join(sens)} context local"
    if (
        m.pii is not None
        and all(k in privacy.local_pii for k in m.pii)
        and (not red.enabled or not all(k in red.kinds for k in m.pii))
    ):
        return f"privacy keeps PII {', '.join(m.pii)} local without redaction"
    if m.keywords is not None and privacy.local_keywords:
        local = {k.lower() for k in privacy.local_keywords}
        if all(k.lower() in local for k in m.keywords):
            return "its keywords are privacy.local_keywords"
    return None


def check_rules(source: str, rules: tuple[Rule, ...], privacy: Privacy) -> None:
    """Reject duplicate names, shadowed rules and actions that can never apply."""
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        key = f"rules[{i}]"
        if rule.name in seen:
            raise PolicyError(
                source, f"{key}.name", f"a unique name ({rule.name!r} is rules[{seen[rule.name]}])"
            )
        seen[rule.name] = i
        if catch_all is not None:
            raise PolicyError(
                source,
                key,
                f"a reachable rule (rules[{catch_all}] matches every request, so this one never matches)",
            )
        if rule.match.is_catch_all():
            catch_all = i
        same = next((j for j, r in enumerate(rules[:i]) if r.match == rule.match), None)
        if same is not None:
            raise PolicyError(
                source,
                f"{key}.match",
                f"a reachable rule (rules[{same}] has the same match, so this one never matches)",
            )
        if rule.action == "cloud_redacted" and not privacy.redaction.enabled:
            raise PolicyError(
                source,
                f"{key}.action",
                "privacy.redaction.enabled = true for action cloud_redacted",
            )
        if rule.action in ("cloud", "cloud_redacted"):
            why = _never_leaves(rule.match, privacy)
            if why:
                raise PolicyError(
                    source,
                    f"{key}.action",
                    f"an action that can take effect ({rule.action} never applies: {why})",
                )
