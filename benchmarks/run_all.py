"""`make bench`: run every benchmark, keep its JSON and printed table in
``benchmarks/results/``, then regenerate ``BENCHMARKS.md`` and the plots.

    python benchmarks/run_all.py [--only NAME ...] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from edge_agent.runtime import report as runtime_report

# name -> extra arguments; each script takes --json OUT.
BENCHMARKS: dict[str, list[str]] = {
    "routing": ["--iterations", "5000"],
    "context_store": [],
    "retrieval": [],
    "startup": [],
    "runtime": [],
    "kernels": [],
    "concurrency": [],
    "speculative": [],
    "e2e": [],
    "chat_turns": [],
    "json_extraction": [],
    "http_overhead": [],
    "kv_cache": [],
    "energy": [],
    "tree_drafts": [],
    "draft_policy": [],
}


def _realtime_prefix() -> list[str]:
    """``chrt -f 10`` where permitted: microsecond timings without preemption by other work."""
    chrt = shutil.which("chrt")
    if chrt and subprocess.run([chrt, "-f", "10", "true"], capture_output=True, check=False).returncode == 0:
        return [chrt, "-f", "10"]
    return []


def run(name: str, extra: list[str]) -> float:
    out = RESULTS / f"{name}.json"
    prefix = _realtime_prefix() if name == "routing" else []
    cmd = [*prefix, sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--json", str(out), *extra]
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    with (RESULTS / f"{name}.txt").open("w") as table:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=table, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"benchmark {name} failed (exit {proc.returncode})")
    data = json.loads(out.read_text())
    data["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    data.setdefault("host", runtime_report.host())  # which machine, for the report
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print((RESULTS / f"{name}.txt").read_text(), flush=True)
    print(f"   {name} took {elapsed:.0f} s", flush=True)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    ap.add_argument("--report-only", action="store_true", help="only regenerate BENCHMARKS.md and plots")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        total = 0.0
        for name, extra in BENCHMARKS.items():
            if args.only and name not in args.only:
                continue
            total += run(name, extra)
        print(f"all benchmarks took {total:.0f} s")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report

    report.write(RESULTS, ROOT / "BENCHMARKS.md")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
