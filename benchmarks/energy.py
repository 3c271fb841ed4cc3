"""Tokens per joule, plain vs speculative decoding, on the benchmark prompts.

Each prompt is generated greedily by the plain loop and by the speculative engine
(same model, threads and cache state: the cache is reset before every run, answers are
not remembered for drafting), alternating; the engine's own meter gives the energy
(RAPL where the host exposes it, else CPU time x watts per core: an estimate, and then
the ratio is a ratio of CPU time, independent of the watts figure). Speculation should
cut energy per token about as much as it cuts time: compare the two ratios.

    python benchmarks/energy.py --json benchmarks/results/energy.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common.model_files import default_model_path
from edge_agent.engine.api import Finished, SamplingParams
from edge_agent.engine.llama_engine import LlamaEngine

ROOT = Path(__file__).resolve().parent


def _once(engine: LlamaEngine, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    engine.reset_cache()
    engine.forget_drafts()
    t0 = time.perf_counter()
    for ev in engine.generate(prompt, SamplingParams(max_tokens=max_tokens)):
        if isinstance(ev, Finished):
            return ev.usage.energy_j, time.perf_counter() - t0, ev.usage.completion_tokens
    raise RuntimeError("no Finished event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cases = [json.loads(line) for line in (ROOT / "prompts" / "speculative.jsonl").read_text().splitlines() if line.strip()]
    path = default_model_path(progress=False)
    plain = LlamaEngine(path, n_ctx=2048, speculative=False, remember_answers=False)
    spec = LlamaEngine(path, n_ctx=2048, speculative=True, remember_answers=False)
    spec.calibrate()
    rows = []
    for case in cases:
        fig: dict[str, list[tuple[float, float, int]]] = {"plain": [], "spec": []}
        for _ in range(args.repeats):
            fig["plain"].append(_once(plain, case["prompt"], case["max_tokens"]))
            fig["spec"].append(_once(spec, case["prompt"], case["max_tokens"]))
        row: dict[str, object] = {"name": case["name"], "suite": case["suite"]}
        for k, runs in fig.items():
            row[f"{k}_tokens_per_j"] = statistics.median(n / j for j, _, n in runs if j > 0)
            row[f"{k}_tokens_per_s"] = statistics.median(n / s for _, s, n in runs)
        row["energy_ratio"] = float(row["spec_tokens_per_j"]) / float(row["plain_tokens_per_j"])  # type: ignore[arg-type]
        row["speed_ratio"] = float(row["spec_tokens_per_s"]) / float(row["plain_tokens_per_s"])  # type: ignore[arg-type]
        rows.append(row)
        print(f"{case['name']:24s} tokens/J plain {row['plain_tokens_per_j']:7.2f} spec {row['spec_tokens_per_j']:7.2f} "
              f"(x{row['energy_ratio']:.2f})   tok/s x{row['speed_ratio']:.2f}", flush=True)
    suites = sorted({str(r["suite"]) for r in rows})
    summary = {
        s: {
            "energy_ratio": statistics.median(float(r["energy_ratio"]) for r in rows if r["suite"] == s),  # type: ignore[arg-type]
            "speed_ratio": statistics.median(float(r["speed_ratio"]) for r in rows if r["suite"] == s),  # type: ignore[arg-type]
        }
        for s in suites
    }
    summary["all"] = {
        "energy_ratio": statistics.median(float(r["energy_ratio"]) for r in rows),  # type: ignore[arg-type]
        "speed_ratio": statistics.median(float(r["speed_ratio"]) for r in rows),  # type: ignore[arg-type]
    }
    for s, v in summary.items():
        print(f"suite {s:10s} tokens/J x{v['energy_ratio']:.2f}   tok/s x{v['speed_ratio']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "energy_source": spec.energy.source, "watts_per_core": spec.energy.watts_per_core,
        "repeats": args.repeats, "summary": summary, "prompts": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
