"""The runtime self-check: its comparison rule, its child process, and `serve` refusing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.runtime import selfcheck
from edge_agent.runtime.selfcheck import FAULT_ENV, compare


def _logits(n: int = 6, vocab: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, vocab)).astype(np.float32) * 3


def test_identical_logits_pass() -> None:
    a = _logits()
    res = compare(a, a.copy())
    assert res.ok and res.max_rel_rms == 0.0 and res.greedy_disagreements == 0
    assert res.identical and "bit-identical to one-token" in res.summary
    off = a.copy()
    off[4, 7] = np.nextafter(off[4, 7], np.float32(np.inf))  # one ulp in one logit
    res = compare(off, a)
    assert res.ok and not res.identical and "not bit-identical" in res.summary


def test_small_kernel_differences_pass_and_broken_kernels_fail() -> None:
    single = _logits()
    rng = np.random.default_rng(1)
    healthy = single + rng.standard_normal(single.shape).astype(np.float32) * 0.1 * single.std()
    assert compare(healthy, single).ok
    garbage = rng.standard_normal(single.shape).astype(np.float32) * 3
    res = compare(garbage, single)
    assert not res.ok and "spread" in res.cause
    zeros = np.zeros_like(single)
    assert not compare(zeros, single).ok
    nan = single.copy()
    nan[2, 5] = np.nan
    res = compare(nan, single)
    assert not res.ok and res.cause == "non-finite logits"


def test_greedy_disagreement_outside_a_near_tie_fails() -> None:
    single = _logits()
    batched = single.copy()
    row = batched[3]
    second = int(np.argsort(single[3])[-10])  # far from the top: no near-tie
    row[second] = single[3].max() + 0.5
    res = compare(batched, single)
    assert not res.ok and "greedy token" in res.cause
    # a near-tie broken the other way by kernels that differ a little everywhere
    rng = np.random.default_rng(2)
    near = single.copy()
    best = int(single[1].argmax())
    other = int(np.argsort(single[1])[-5])
    near[1, other] = single[1, best] - 0.02
    noisy = near + rng.standard_normal(near.shape).astype(np.float32) * 0.05
    noisy[1, other], noisy[1, best] = near[1, best] + 0.01, near[1, best]
    res = compare(noisy, near)
    assert res.ok and res.greedy_disagreements == 1 and res.near_ties == 1


@pytest.mark.model
def test_child_check_passes_on_the_installed_runtime(model_path: Path) -> None:
    res = selfcheck.run(model_path, n_threads=2)
    assert res.ok, res.cause
    assert res.positions == selfcheck.N_TOKENS and res.max_rel_rms <= selfcheck.MAX_REL_RMS
    assert res.identical, res.summary  # the patched runtime is batch-invariant


@pytest.mark.model
def test_a_runtime_that_is_not_bit_identical_serves_without_speculation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.config import load_config
    from edge_agent.daemon.wiring import load_parts

    cfg = load_config(None, env={"EDGE_AGENT_DATA_DIR": str(tmp_path / "data"), "EDGE_AGENT_CLOUD": ""})
    assert cfg.model.speculative and cfg.model.selfcheck
    monkeypatch.setenv(FAULT_ENV, "rounding")  # the self-check child inherits it
    parts = load_parts(cfg)
    try:
        assert not parts.engine.speculative
        assert "not bit-identical" in parts.runtime["selfcheck"]
    finally:
        parts.engine.close()
        parts.store.close()


@pytest.mark.model
@pytest.mark.parametrize(
    ("fault", "expect"),
    [("sigill", "crashed with SIGILL: an illegal instruction"), ("disagree", "differ from one-token")],
)
def test_child_that_fails_is_reported_not_fatal(model_path: Path, fault: str, expect: str) -> None:
    env = dict(os.environ, **{FAULT_ENV: fault})
    res = selfcheck.run(model_path, n_threads=1, env=env)
    assert not res.ok and expect in res.cause


@pytest.mark.model
def test_serve_refuses_with_one_line_naming_cause_and_fix(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        EDGE_AGENT_DATA_DIR=str(tmp_path / "data"),
        EDGE_AGENT_CLOUD="",
        **{FAULT_ENV: "sigill"},
    )
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "serve"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode != 0
    assert "ready" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("edge-agent: runtime self-check failed: self-check crashed with SIGILL")
    assert "fix: run `make install`" in last
    assert not (tmp_path / "data" / "edge-agent.sock").exists()


def _passed(identical: bool = True) -> selfcheck.CheckResult:
    return selfcheck.CheckResult(True, "", summary="24 positions", positions=24, identical=identical, seconds=3.0,
                                 max_rel_rms=0.0, max_abs_diff=0.0, mean_abs_diff=0.0)


@pytest.fixture
def record_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDGECLOUD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(FAULT_ENV, raising=False)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 60)
    return model


def test_a_recorded_pass_stands_only_for_what_was_checked(record_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = record_env
    assert selfcheck.recorded(model, 2) is None
    selfcheck.record(model, 2, _passed())
    kept = selfcheck.recorded(model, 2)
    assert kept is not None and kept.ok and kept.identical and kept.seconds == 0.0
    assert "recorded" in kept.summary and "24 positions" in kept.summary
    path = next((record_env.parent / "cache" / "selfcheck").glob("*.json"))
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert selfcheck.recorded(model, 1) is None  # another thread count
    monkeypatch.setenv(FAULT_ENV, "rounding")
    assert selfcheck.recorded(model, 2) is None  # failure-path tests always run the child
    monkeypatch.delenv(FAULT_ENV)
    os.utime(model, ns=(1, 1))  # the model file changed
    assert selfcheck.recorded(model, 2) is None


def test_only_bit_identical_passes_are_recorded_and_junk_is_ignored(record_env: Path) -> None:
    model = record_env
    selfcheck.record(model, 2, _passed(identical=False))
    selfcheck.record(model, 2, selfcheck.CheckResult(False, "differ"))
    assert selfcheck.recorded(model, 2) is None
    selfcheck.record(model, 2, _passed())
    path = next((record_env.parent / "cache" / "selfcheck").glob("*.json"))
    path.write_text("{not json")
    assert selfcheck.recorded(model, 2) is None
    path.write_text('{"key": {}, "result": {"ok": true, "identical": true, "cause": ""}}')
    assert selfcheck.recorded(model, 2) is None  # a key that is not this one


def test_require_uses_the_record_and_checks_when_there_is_none(record_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = record_env
    ran: list[int | None] = []

    def child(path: Path, *, n_threads: int | None = None) -> selfcheck.CheckResult:
        ran.append(n_threads)
        return _passed()

    monkeypatch.setattr(selfcheck, "run", child)
    selfcheck.require(model, 2)
    assert ran == [2]  # nothing recorded yet (the child records; this fake does not)
    selfcheck.record(model, 2, _passed())
    res = selfcheck.require(model, 2)
    assert ran == [2] and "recorded" in res.summary
    selfcheck.require(model, 2, reuse=False)
    assert ran == [2, 2]
