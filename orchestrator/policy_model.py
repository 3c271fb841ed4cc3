"""The policy model: frozen dataclasses, one per TOML table.

``policy.py`` loads and validates files into these; ``default_policy()`` is what
applies when no file is given. See ``docs/policy.md`` for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.kinds import PII_KINDS


@dataclass(frozen=True)
class Redaction:
    """Redacted hand-off: PII replaced by placeholders, restored in the answer."""

    enabled: bool = False
    kinds: tuple[str, ...] = PII_KINDS  # kinds replaced by placeholders
    sensitivities: tuple[str, ...] = ()  # context items of these labels are left out


@dataclass(frozen=True)
class Privacy:
    """Hard constraints: what never leaves the device (unless redacted)."""

    local_sensitivities: tuple[str, ...] = ("personal", "secret")
    local_pii: tuple[str, ...] = PII_KINDS
    local_keywords: tuple[str, ...] = ()  # whole words/phrases, case-insensitive
    redaction: Redaction = field(default_factory=Redaction)


@dataclass(frozen=True)
class SideLatency:
    """Prior figures of one side, used until live observations arrive."""

    ttft_ms: float
    ms_per_prompt_token: float
    tokens_per_s: float


@dataclass(frozen=True)
class Latency:
    """Deadlines and how each side's latency is estimated."""

    default_deadline_ms: int = 30_000
    margin: float = 0.2  # estimates are inflated by this fraction before comparison
    ewma_alpha: float = 0.2
    local: SideLatency = field(default_factory=lambda: SideLatency(150.0, 1.0, 20.0))
    cloud: SideLatency = field(default_factory=lambda: SideLatency(400.0, 0.05, 60.0))


@dataclass(frozen=True)
class Cost:
    """Cloud prices (fallback when the cloud's Info has none), budgets, local energy."""

    currency: str = "USD"
    cloud_price_in_per_1k: float = 0.0
    cloud_price_out_per_1k: float = 0.0
    daily_budget: float | None = None
    monthly_budget: float | None = None
    on_budget_exhausted: str = "local"  # "local" | "reject"
    local_energy_j_per_token: float = 0.0
    energy_price_per_kwh: float = 0.0


@dataclass(frozen=True)
class Cascade:
    """Start locally, escalate when the first tokens look unsure."""

    enabled: bool = False
    first_tokens: int = 16
    min_mean_prob: float = 0.5


@dataclass(frozen=True)
class Quality:
    """When the cloud's larger model is worth it."""

    prefer_cloud_prompt_tokens_over: int | None = None
    prefer_cloud_max_tokens_over: int | None = None
    prefer_cloud_keywords: tuple[str, ...] = ()
    cascade: Cascade = field(default_factory=Cascade)


@dataclass(frozen=True)
class Match:
    """Conditions of a rule; all given ones must hold, a list holds if any entry does."""

    sensitivity: tuple[str, ...] | None = None
    pii: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    app_id: tuple[str, ...] | None = None
    keywords: tuple[str, ...] | None = None
    min_prompt_tokens: int | None = None
    max_prompt_tokens: int | None = None
    min_max_tokens: int | None = None
    max_max_tokens: int | None = None
    hours: tuple[int, int] | None = None  # [start, end) in minutes after midnight
    marked_personal: bool | None = None

    def is_catch_all(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class Rule:
    """``match -> action``; the first matching rule decides."""

    name: str
    action: str  # one of kinds.ACTIONS
    match: Match = field(default_factory=Match)


@dataclass(frozen=True)
class Weights:
    """Scoring among the allowed options: lower weighted sum wins."""

    latency: float = 1.0
    cost: float = 1.0
    quality: float = 2.0


@dataclass(frozen=True)
class Policy:
    """A whole routing policy."""

    privacy: Privacy = field(default_factory=Privacy)
    latency: Latency = field(default_factory=Latency)
    cost: Cost = field(default_factory=Cost)
    quality: Quality = field(default_factory=Quality)
    rules: tuple[Rule, ...] = ()
    weights: Weights = field(default_factory=Weights)
    source: str = "<default>"

    @property
    def cloud_price_in_per_1k(self) -> float:
        return self.cost.cloud_price_in_per_1k

    @property
    def cloud_price_out_per_1k(self) -> float:
        return self.cost.cloud_price_out_per_1k

    @property
    def default_deadline_ms(self) -> int:
        return self.latency.default_deadline_ms
