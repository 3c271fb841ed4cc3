"""Runtime benchmark: what a decode step costs on this build, quiet and with the CPU shared.

    python benchmarks/runtime.py --json benchmarks/results/runtime.json [--repeats 9]

For each configuration (threads x OpenMP wait policy; each in its own process, since
libgomp reads ``OMP_WAIT_POLICY`` once at start) it times, interleaved, a plain step
(1 token, 1 logits row) and a verification step (9 tokens, 9 rows), first on a quiet
machine and then with a bounded busy loop pinned to one core (another app on the
device). It also records the build, llama.cpp's system info, the weights' buffer types
and the verification cost curve for 1..16 drafted tokens, and runs the engine itself
(128 greedy tokens, adaptive threads) quiet vs contended. Medians; ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = [
    {"threads": 2, "wait": "active"},
    {"threads": 2, "wait": "passive"},
    {"threads": 1, "wait": "passive"},
]
PROMPT = (
    "Write a short note to a colleague about the quarterly report: the figures are in, "
    "the summary is attached, and the meeting moves to Thursday at ten."
)


def _busy(seconds: float, cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


class Contention:
    """A busy loop on one core for at most ``limit`` seconds (stopped on exit)."""

    def __init__(self, limit: float = 120.0) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.proc = mp.get_context("spawn").Process(target=_busy, args=(limit, cpus[-1]), daemon=True)

    def __enter__(self) -> Contention:  # noqa: PYI034
        self.proc.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.join(5)


def _steps(model: Any, repeats: int) -> dict[str, float]:
    from edge_agent.engine import costs

    prefix = model.tokenize(costs.CALIBRATION_TEXT, add_bos=True)
    points, plain_ms = costs.measure(model, ks=(0, 8), repeats=repeats, prefix=prefix)
    return {"plain_ms": plain_ms, "verify9_ms": plain_ms * points[8]}


def child(cfg: dict[str, Any], repeats: int, model_path: str) -> dict[str, Any]:
    """Run inside a process whose OMP_WAIT_POLICY is already set."""
    from edge_agent.engine.llama_model import LlamaModel

    model = LlamaModel(model_path, n_ctx=512, n_threads=cfg["threads"])
    try:
        quiet = _steps(model, repeats)
        with Contention():
            busy = _steps(model, repeats)
    finally:
        model.close()
    return {**cfg, "quiet": quiet, "contended": busy}


def engine_run(model_path: str, contended: bool, adapt: bool, threads: int = 2) -> dict[str, Any]:
    from edge_agent.engine.api import Finished, SamplingParams
    from edge_agent.engine.llama_engine import LlamaEngine

    eng = LlamaEngine(model_path, n_ctx=1024, n_threads=threads, adapt_threads=adapt)
    try:
        eng.calibrate()
        params = SamplingParams(max_tokens=128, temperature=0.0)
        for _ in eng.generate("Hello", SamplingParams(max_tokens=4)):
            pass
        eng.reset_cache()

        def one() -> float:
            usage = None
            for ev in eng.generate(PROMPT, params):
                if isinstance(ev, Finished):
                    usage = ev.usage
            assert usage is not None
            eng.reset_cache()
            return float(usage.tokens_per_s)

        def go() -> dict[str, Any]:
            # three requests in a row: a daemon keeps what its tuner learnt
            speeds = [one() for _ in range(3)]
            return {"tokens_per_s": speeds[-1], "tokens_per_s_each": speeds,
                    "threads_end": eng.model.n_threads,
                    "switches": eng.tuner.switches if eng.tuner else 0}

        if contended:
            with Contention():
                return go()
        return go()
    finally:
        eng.close()


def _in_child(func: str, payload: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import runtime as r; "
        "a = json.loads(sys.argv[1]); print(json.dumps(getattr(r, a['f'])(**a['kw'])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps({"f": func, "kw": payload})],
        capture_output=True, text=True, env=env, check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    from common.model_files import resolve_model_path
    from edge_agent.engine import costs
    from edge_agent.engine.llama_model import LlamaModel
    from edge_agent.runtime import report

    model_path = str(resolve_model_path(None))
    model = LlamaModel(model_path, n_ctx=512, n_threads=2)
    prefix = model.tokenize(costs.CALIBRATION_TEXT, add_bos=True)
    curve, plain_ms = costs.measure(model, ks=range(17), repeats=args.repeats, prefix=prefix)
    info = {"system_info": report.system_info(), "buffer_types_mib": model.buffer_types}
    model.close()
    rows = []
    for cfg in CONFIGS:
        env = dict(os.environ, OMP_WAIT_POLICY=cfg["wait"].upper())
        rows.append(_in_child("child", {"cfg": cfg, "repeats": args.repeats,
                                        "model_path": model_path}, env))
    env = dict(os.environ)
    engine = {}
    for name, contended, adapt, threads in (
        ("quiet", False, True, 2),
        ("quiet_fixed_1_thread", False, False, 1),
        ("contended_adaptive", True, True, 2),
        ("contended_fixed_2_threads", True, False, 2),
        ("contended_fixed_1_thread", True, False, 1),
    ):
        engine[name] = _in_child("engine_run", {"model_path": model_path, "contended": contended,
                                                "adapt": adapt, "threads": threads}, env)
    data = {
        "benchmark": "runtime",
        "host": report.host(),
        "build": report.build(),
        **info,
        "cost_curve": {"plain_ms": plain_ms, "relative": curve},
        "steps": rows,
        "engine_128_tokens": engine,
        "omp_wait_policy_default": os.environ.get("OMP_WAIT_POLICY", ""),
    }
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    print(f"build {data['build']['variant']}; weights {info['buffer_types_mib']}")
    print("k     " + " ".join(f"{k:>5}" for k in range(1, 17)))
    print("cost  " + " ".join(f"{curve[k]:5.2f}" for k in range(1, 17)))
    print(f"plain step {plain_ms:.1f} ms")
    print("| threads | wait | plain quiet | plain busy | x | verify9 quiet | verify9 busy | x |")
    for r in rows:
        q, b = r["quiet"], r["contended"]
        print(f"| {r['threads']} | {r['wait']} | {q['plain_ms']:.1f} | {b['plain_ms']:.1f} | "
              f"{b['plain_ms'] / q['plain_ms']:.2f} | {q['verify9_ms']:.1f} | {b['verify9_ms']:.1f} | "
              f"{b['verify9_ms'] / q['verify9_ms']:.2f} |")
    for name, r in engine.items():
        each = ", ".join(f"{x:.1f}" for x in r["tokens_per_s_each"])
        print(f"engine {name}: requests 1-3 {each} tok/s, threads at end {r['threads_end']}, "
              f"switches {r['switches']}")
    _ = statistics  # medians come from costs.measure
    return 0


if __name__ == "__main__":
    sys.exit(main())
