"""Start-up: time from `edge-agent serve` to ready, on a quiet host and with one busy
process per core.

Each run starts the daemon as a user does (fresh data directory, default config: the
runtime self-check (the pass `make install` recorded, as a user's first start finds it), model load, bounded calibration, warm-up) and
times it to the "ready" line on stdout; the log's own figures say where the time went.
Quiet and busy runs alternate. The busy processes are pure-Python loops, one per core,
started before the daemon and stopped after it is ready. `edge-agent doctor` is run
once under the same load: it must warn that the host is contended.

    python benchmarks/startup.py --json benchmarks/results/startup.json

Target (issue: a quick start on a busy host): ready within 30 s with one busy process
per core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"


def busy(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def env_for(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EDGE_AGENT_CONFIG", None)
    env.update(EDGE_AGENT_DATA_DIR=str(data), EDGE_AGENT_SOCKET=str(data / "a.sock"))
    return env


def start_once(loaded: bool, cores: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        hogs = busy(cores) if loaded else []
        try:
            time.sleep(1.0 if loaded else 0.0)  # the load is there before the daemon starts
            t0 = time.perf_counter()
            log = (data / "agent.log").open("w")
            proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli.main", "serve"], env=env_for(data),
                                    stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            ready_s = time.perf_counter() - t0
        finally:
            stop(hogs)
        proc.terminate()
        proc.wait(timeout)
        text = (data / "agent.log").read_text(errors="replace")
    if "ready" not in line:
        raise SystemExit(f"the daemon did not become ready: {line!r}\n{text[-3000:]}")

    def figure(pattern: str) -> float | None:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    return {
        "busy": loaded, "ready_s": ready_s,
        "selfcheck_s": figure(r"self-check passed in ([0-9.]+) s"),
        "warm_up_ms": figure(r"warm-up done in ([0-9.]+) ms"),
        "calibration_s": figure(r"calibration done in ([0-9.]+) s"),
        "calibration_kept_prior": "keeping the prior cost curve" in text,
    }


def doctor_under_load(cores: int) -> dict[str, Any]:
    hogs = busy(cores)
    try:
        time.sleep(2.0)
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-m", "edge_agent.cli.main", "doctor"], env=env_for(Path(tmp)),
                                  capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    finally:
        stop(hogs)
    warnings = [ln.split(":", 1)[1].strip() for ln in done.stdout.splitlines() if ln.startswith("WARNING:")]
    return {"exit": done.returncode, "warnings": warnings}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each kind (quiet, busy), alternated")
    ap.add_argument("--json", type=Path, dest="out")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    runs = []
    for _ in range(args.runs):
        for loaded in (False, True):
            runs.append(start_once(loaded, cores, 60))
            print(f"  {'busy' if loaded else 'quiet'}: ready in {runs[-1]['ready_s']:.1f} s", file=sys.stderr, flush=True)
    quiet = [r["ready_s"] for r in runs if not r["busy"]]
    loaded = [r["ready_s"] for r in runs if r["busy"]]
    doc = doctor_under_load(cores)
    data = {
        "benchmark": "startup", "cores": cores, "busy_processes": cores, "runs": runs,
        "ready_quiet_s_median": statistics.median(quiet), "ready_busy_s_median": statistics.median(loaded),
        "ready_busy_s_max": max(loaded), "doctor_under_load": doc,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(table(data))
    return 0


def table(data: dict[str, Any]) -> str:
    doc = data["doctor_under_load"]
    return "\n".join([
        "| figure | value |", "|---|---|",
        f"| ready, quiet host, median s | {data['ready_quiet_s_median']:.1f} |",
        f"| ready, one busy process per core ({data['busy_processes']}), median s (target ≤ 30) | {data['ready_busy_s_median']:.1f} |",
        f"| ready, busy, slowest of {len(data['runs']) // 2}, s | {data['ready_busy_s_max']:.1f} |",
        f"| doctor under that load: exit, warnings | {doc['exit']}, {'; '.join(doc['warnings'])[:300] or 'none'} |",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
