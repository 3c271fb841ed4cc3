"""Cost accounting: what a request would cost, and whether a budget allows it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.policy_model import Cost

_J_PER_KWH = 3_600_000.0


@dataclass(frozen=True)
class Spend:
    """Cloud money already spent in the current day and month (currency units)."""

    today: float = 0.0
    month: float = 0.0


def cloud_cost(
    prompt_tokens: int, completion_tokens: int, price_in_per_1k: float, price_out_per_1k: float
) -> float:
    """Price of one cloud call."""
    return (prompt_tokens * price_in_per_1k + completion_tokens * price_out_per_1k) / 1000.0


def local_cost(prompt_tokens: int, completion_tokens: int, cost: Cost, measured_j_per_token: float = 0.0) -> float:
    """Energy price of a local generation: tokens x joules per token (the policy's
    figure, or the measured one when the policy leaves it at 0) x the energy price
    (0 when the policy sets none)."""
    j_per_token = cost.local_energy_j_per_token or measured_j_per_token
    joules = (prompt_tokens + completion_tokens) * j_per_token
    return joules / _J_PER_KWH * cost.energy_price_per_kwh


def budget_blocks(cost: Cost, spend: Spend | None, extra: float) -> str | None:
    """``"budget.daily"`` / ``"budget.monthly"`` if spending ``extra`` breaks it, else None."""
    if spend is None:
        spend = Spend()
    if cost.daily_budget is not None and spend.today + extra > cost.daily_budget:
        return "budget.daily"
    if cost.monthly_budget is not None and spend.month + extra > cost.monthly_budget:
        return "budget.monthly"
    return None
