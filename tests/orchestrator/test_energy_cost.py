"""Local energy in the cost policy: the measured joules per token price the local
option when the policy leaves the figure at 0; a fixed figure wins; no price, no cost."""

from __future__ import annotations

from routing_helpers import est, req

from orchestrator.budget import local_cost
from orchestrator.policy import parse_policy
from orchestrator.router import decide
from orchestrator.types import Target

MEASURED = 2.0  # J per token


def _local_option_cost(policy_text: str, measured: float) -> float:
    d = decide(req(max_tokens=100), est(local_j_per_token=measured), parse_policy(policy_text, "p.toml"))
    return next(o.cost for o in d.options if o.target is Target.LOCAL)


def test_measured_energy_prices_the_local_option() -> None:
    policy = "[cost]\nenergy_price_per_kwh = 0.36\n"
    tokens = req(max_tokens=100).prompt_tokens + 100
    expected = tokens * MEASURED / 3.6e6 * 0.36
    assert abs(_local_option_cost(policy, MEASURED) - expected) < 1e-12
    assert _local_option_cost(policy, 0.0) == 0.0  # nothing measured yet


def test_a_fixed_figure_wins_over_the_measured_one() -> None:
    policy = "[cost]\nenergy_price_per_kwh = 0.36\nlocal_energy_j_per_token = 0.5\n"
    tokens = req(max_tokens=100).prompt_tokens + 100
    assert abs(_local_option_cost(policy, MEASURED) - tokens * 0.5 / 3.6e6 * 0.36) < 1e-12


def test_no_energy_price_no_energy_cost() -> None:
    assert _local_option_cost("", MEASURED) == 0.0
    assert local_cost(10, 10, parse_policy("", "p.toml").cost, MEASURED) == 0.0


def test_dear_local_energy_makes_the_local_option_dearer_than_the_cloud() -> None:
    policy = parse_policy("[cost]\nenergy_price_per_kwh = 1000000.0\n", "p.toml")
    d = decide(req(max_tokens=100), est(local_j_per_token=MEASURED), policy)
    costs = {o.target: o.cost for o in d.options}
    assert costs[Target.LOCAL] > costs[Target.CLOUD] > 0
