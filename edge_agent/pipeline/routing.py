"""The daemon's routing state: the policy in force (reloadable), live estimates,
prices and the egress ledger.

The decision itself is ``orchestrator.router.decide``; this module only gathers its
inputs and records what a cloud call sent.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from edge_agent.pipeline.ports import CloudInfo, Ledger
from orchestrator.budget import Spend
from orchestrator.estimators import Estimators
from orchestrator.policy import Policy, default_policy, load_policy
from orchestrator.router import decide
from orchestrator.types import Decision, RouteRequest

log = logging.getLogger(__name__)


class RoutingState:
    """Policy + estimators + ledger, shared by all requests."""

    def __init__(self, policy_file: str = "", ledger: Ledger | None = None) -> None:
        self.policy_file = policy_file
        self.policy: Policy = load_policy(policy_file) if policy_file else default_policy()
        self.estimators = Estimators(self.policy.latency)
        self.ledger = ledger
        self._lock = threading.Lock()
        self._spent = 0.0

    @property
    def default_deadline_ms(self) -> int:
        return int(self.policy.default_deadline_ms)

    def reload(self) -> str:
        """Load the policy file again; on error the old policy stays and the error propagates."""
        new = load_policy(self.policy_file) if self.policy_file else default_policy()
        with self._lock:
            self.policy = new
            self.estimators.reconfigure(new.latency)
        log.info("policy reloaded from %s", self.policy_file or "<built-in default>")
        return self.policy_file

    def prices(self, info: CloudInfo | None) -> tuple[float, float]:
        """The cloud's own prices when it states them, else the policy's."""
        if info is not None and (info.price_in_per_1k or info.price_out_per_1k):
            return info.price_in_per_1k, info.price_out_per_1k
        return float(self.policy.cloud_price_in_per_1k), float(self.policy.cloud_price_out_per_1k)

    def spend(self) -> Spend | None:
        return self.ledger.spend() if self.ledger is not None else None

    def decide(self, req: RouteRequest, *, cloud_available: bool, cloud: CloudInfo | None) -> Decision:
        price_in, price_out = self.prices(cloud)
        est = self.estimators.snapshot(
            prompt_tokens=req.prompt_tokens,
            cloud_available=cloud_available,
            price_in_per_1k=price_in,
            price_out_per_1k=price_out,
        )
        return decide(req, est, self.policy, self.spend())

    def record_cloud_call(
        self,
        request_id: str,
        decision: Decision,
        *,
        sent_text: str,
        prompt_tokens: int,
        completion_tokens: int,
        cloud: CloudInfo | None,
        attempt: int = 1,
        outcome: str = "answered",
        app_id: str = "",
    ) -> float:
        """Cost of one cloud attempt (answered or not), written to the egress ledger and
        added to ``spent``: what ``stats`` shows is the sum of the ledger's rows."""
        price_in, price_out = self.prices(cloud)
        cost = prompt_tokens / 1000 * price_in + completion_tokens / 1000 * price_out
        with self._lock:
            self._spent += cost
        if self.ledger is not None:
            self.ledger.record(
                request_id=request_id,
                rule=",".join(decision.rules_fired),
                target=decision.target.value,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=cost,
                pii_kinds_redacted=tuple(decision.pii_kinds) if decision.restore else (),
                text_sha256=hashlib.sha256(sent_text.encode()).hexdigest(),
                attempt=attempt,
                outcome=outcome,
                app_id=app_id,
            )
        return cost

    @property
    def spent(self) -> float:
        """Cloud spend since start: every attempt recorded (answered, retried, invalid, failed)."""
        with self._lock:
            return self._spent
