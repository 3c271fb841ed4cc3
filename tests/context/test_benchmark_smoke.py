"""The context store benchmark runs end to end on a tiny corpus and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "context_store.py"


def test_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "ctx.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--items", "300", "--searches", "30", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    for key in ("import_items_per_s", "search_p50_ms", "search_p99_ms", "db_bytes"):
        assert figures[key] > 0
    assert figures["items"] == 300 and figures["searches"] == 30
    assert sum(figures["by_kind"].values()) == 300
    assert figures["forget_items"] == 30 and figures["retrieve_p50_ms"] > 0
