"""`edge-agent doctor`: text and JSON, on the installed runtime and on a failing one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edge_agent.runtime.selfcheck import FAULT_ENV

pytestmark = pytest.mark.model


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "doctor", "--repeats", "1", *args],
        capture_output=True, text=True, timeout=300, check=False, env=env or dict(os.environ),
    )


def test_doctor_json_reports_build_buffers_costs_and_plan() -> None:
    proc = _doctor("--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["selfcheck"]["ok"]
    assert d["verdict"] == "ok" or d["warnings"], d  # a busy host is said to be busy
    assert d["selfcheck"]["identical"], d["selfcheck"]  # the project's runtime is batch-invariant
    assert d["host"]["cores"] >= 1 and "avx2" in d["host"]["features"] or d["host"]["machine"] != "x86_64"
    assert d["build"]["llama_cpp_python"] == "0.3.36"
    assert d["store"]["ranking"] == "bm25_df" and d["store"]["sqlite"].startswith("3.")
    assert "CPU" in d["system_info"] or "AVX" in d["system_info"]
    assert sum(d["buffer_types_mib"].values()) > 100
    rel = d["step"]["relative_cost"]
    assert rel["0"] == 1.0 and (set(rel) == {str(k) for k in range(17)} or d["warnings"])
    assert all(v > 0 for v in rel.values())
    plan = d["plan"]["draft_len_by_acceptance"]
    assert plan["0.95"] >= plan["0.50"]  # a draft that is accepted more is drafted further


def test_doctor_text_names_a_broken_runtime_and_the_fix() -> None:
    proc = _doctor(env=dict(os.environ, **{FAULT_ENV: "sigill"}))
    assert proc.returncode == 1
    assert "selfcheck: FAILED: self-check crashed with SIGILL" in proc.stdout
    assert "verdict:   runtime unusable" in proc.stdout and "make install" in proc.stdout
    assert "store:     SQLite 3." in proc.stdout and "ranking bm25_df" in proc.stdout
