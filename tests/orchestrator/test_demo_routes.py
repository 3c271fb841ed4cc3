"""`make demo` shows what each step says on any host: the routes its requests take are
decided by policy and preference, never by a race between measured latencies."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.estimators import Estimators
from orchestrator.policy import load_policy
from orchestrator.router import decide
from orchestrator.types import Preference, RouteRequest, Target

ROOT = Path(__file__).resolve().parents[2]


def _demo():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_script"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("local_ms_per_token", [5.0, 500.0, 5000.0])  # a quiet host to a crawling one
def test_the_kept_local_step_is_local_however_slow_the_host(tmp_path: Path, local_ms_per_token: float) -> None:
    demo = _demo()
    _title, fields, routing, max_tokens = next(s for s in demo.SESSION if "kept local" in s[0])
    (tmp_path / "p.toml").write_text(demo.DEMO_POLICY)
    policy = load_policy(str(tmp_path / "p.toml"))
    est = Estimators(policy.latency)
    for _ in range(20):  # what the host measured: local slow or fast, the cloud quick
        est.observe_cloud(50.0, 16, 400.0)
        est.observe_local(6, 6 * local_ms_per_token, 16, 1000.0 / local_ms_per_token)
    snapshot = est.snapshot(prompt_tokens=6, cloud_available=True, price_in_per_1k=0.0, price_out_per_1k=0.0)
    req = RouteRequest(prompt=fields["prompt"], prompt_tokens=6, max_tokens=max_tokens, preference=Preference.CLOUD_PREFERRED,
                       deadline_ms=routing.deadline_ms, labels=tuple(routing.labels))
    d = decide(req, snapshot, policy, None, now=datetime(2026, 1, 1, 12, 0))
    assert d.target is Target.LOCAL, d.explanation
