"""KV-cache element types: memory, speed and agreement with the f16 cache.

For each configuration (K/V types, flash attention) and each context fill (about 1k
and 4k tokens: the benchmark prompts joined until the fill is reached, then the prompt
of the case), on the real model with the plain decode loop:

* KV cache MiB as llama.cpp allocates it for a context of fill + 256 tokens;
* prefill tok/s (the whole prompt in batches of 512) and decode tok/s (64 greedy steps);
* greedy agreement with f16/f16 without flash attention over the benchmark prompts:
  the first position where the greedy token differs, with the f16 run's margin there
  (top-1 minus top-2 logit: a small margin is a near-tie, not a broken cache).

    python benchmarks/kv_cache.py --json benchmarks/results/kv_cache.json [--fills 1024 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from common.model_files import default_model_path
from edge_agent.engine.llama_model import LlamaModel

ROOT = Path(__file__).resolve().parent
CONFIGS = [  # (name, K, V, flash attention, swa_full)
    ("f16", "f16", "f16", "off", True),
    ("f16-swa", "f16", "f16", "off", False),  # sliding-window layers keep only their window
    ("f16+fa", "f16", "f16", "on", True),
    ("q8_0", "q8_0", "q8_0", "on", True),
    ("q8_0-k", "q8_0", "f16", "on", True),
    ("q4_0", "q4_0", "q4_0", "on", True),
]
DECODE = 64


def _prompts() -> list[str]:
    return [json.loads(line)["prompt"] for line in (ROOT / "prompts" / "speculative.jsonl").read_text().splitlines() if line.strip()]


def _filled(model: LlamaModel, fill: int, tail: str, background: list[str]) -> list[int]:
    """About ``fill`` tokens: background texts, then ``tail`` (the case's prompt)."""
    tail_tokens = model.tokenize(tail, add_bos=False)
    out = model.tokenize("", add_bos=True)
    i = 0
    while len(out) + len(tail_tokens) < fill:
        out += model.tokenize(background[i % len(background)] + "\n\n", add_bos=False)
        i += 1
    return (out + tail_tokens)[-fill:] if len(out) + len(tail_tokens) > fill else out + tail_tokens


def _run(model: LlamaModel, tokens: list[int]) -> tuple[list[int], list[float], float, float]:
    """Greedy tokens with their margins, prefill tok/s, decode tok/s."""
    model.truncate(0)
    t0 = time.perf_counter()
    logits = None
    for start in range(0, len(tokens), model.n_batch):
        chunk = tokens[start : start + model.n_batch]
        last = start + len(chunk) == len(tokens)
        logits = model.eval(chunk, [len(chunk) - 1] if last else [])
    t1 = time.perf_counter()
    out: list[int] = []
    margins: list[float] = []
    assert logits is not None
    row = np.array(logits[0])
    t_dec = time.perf_counter()
    for _ in range(DECODE):
        top2 = np.argpartition(row, -2)[-2:]
        a, b = (int(t) for t in top2[np.argsort(row[top2])[::-1]])
        out.append(a)
        margins.append(float(row[a] - row[b]))
        row = np.array(model.eval([a], [0])[0])
    t2 = time.perf_counter()
    return out, margins, len(tokens) / (t1 - t0), DECODE / (t2 - t_dec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--fills", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--cases", type=int, default=6, help="benchmark prompts per fill")
    args = ap.parse_args()
    path = default_model_path(progress=False)
    prompts = _prompts()
    cases = prompts[: args.cases]
    threads = os.cpu_count() or 1
    results: list[dict[str, object]] = []
    baseline: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
    for fill in args.fills:
        for name, k, v, fa, swa_full in CONFIGS:
            model = LlamaModel(path, n_ctx=fill + 256, n_threads=threads, kv_types=(k, v), flash_attn=fa, swa_full=swa_full)
            prefill, decode, firsts, agree = [], [], [], 0
            for ci, case in enumerate(cases):
                tokens = _filled(model, fill, case, prompts)
                out, margins, p_tps, d_tps = _run(model, tokens)
                prefill.append(p_tps)
                decode.append(d_tps)
                if name == "f16":
                    baseline[(fill, ci)] = (out, margins)
                    continue
                ref, ref_margins = baseline[(fill, ci)]
                first = next((i for i, (x, y) in enumerate(zip(out, ref, strict=True)) if x != y), None)
                if first is None:
                    agree += 1
                firsts.append({"case": ci, "first_divergence": first, "f16_margin": None if first is None else round(ref_margins[first], 3)})
            row = {
                "fill": fill, "config": name, "kv_type_k": k, "kv_type_v": v, "flash_attn": fa, "swa_full": swa_full,
                "kv_cache_mib": model.kv_cache_mib,
                "prefill_tok_s": statistics.median(prefill), "decode_tok_s": statistics.median(decode),
                "identical_cases": len(cases) if name == "f16" else agree, "cases": len(cases),
                "divergences": firsts,
            }
            results.append(row)
            model.close()
            print(f"fill {fill:5d} {name:8s} KV {row['kv_cache_mib']:7.1f} MiB  prefill {row['prefill_tok_s']:7.0f} tok/s  "
                  f"decode {row['decode_tok_s']:6.1f} tok/s  identical {row['identical_cases']}/{len(cases)}  "
                  + " ".join(f"{d['first_divergence']}@{d['f16_margin']}" for d in firsts if d["first_divergence"] is not None),
                  flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": threads,
        "decode_tokens": DECODE, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
