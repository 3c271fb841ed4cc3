"""Concurrency benchmark: N requests at once on one engine, against one at a time.

    python benchmarks/concurrency.py --json benchmarks/results/concurrency.json [--tokens 128]

One ``LlamaEngine`` with ``parallel = max(N)`` serves, for each N in ``--streams``,
N greedy requests started together (open prompts, ``--tokens`` each, one thread per
request as the daemon's workers are); aggregate tok/s is all completion tokens over
the wall time from the first start to the last end, per-stream tok/s each request's
tokens over its own wall time. The baseline is the same N requests one at a time on
an engine without concurrency (``parallel = 1``, calibrated the same way), as a daemon
serves them today: "x one at a time" is aggregate / that, "x alone" the median over
requests of its tok/s together / its tok/s alone. Every text is compared with the same
request's text alone. Then TTFT: 8 clients with ~256-token
prompts while one ~4k-token prompt arrives just before them (p50/p99 of the short
ones, and one such prompt's alone). Both modes run, drafting on and off (``--drafts`` /
``--plain``: one of them). A plot of aggregate and per-stream tok/s against N goes
beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPEN = [
    "Autumn in the city\n\nThe leaves",
    "The history of the bicycle begins",
    "Photosynthesis is the process by which",
    "Ten ideas for a rainy weekend:\n1.",
    "The lighthouse keeper climbed the stairs and",
    "Why exercise matters: a short essay.\n\n",
    "A letter to my younger self.\n\nDear",
    "How bread is made, step by step:",
]
FILLER = ("The committee met on Tuesday to review the garden plots, the water supply, the seed order "
          "and the schedule for the spring work days, and agreed to write to every member. ")


def _run(eng: Any, prompt: str, tokens: int, out: dict[str, Any], t_go: float) -> None:
    from edge_agent.engine.api import Finished, SamplingParams, TextDelta

    t0 = time.perf_counter()
    text, first, usage = "", 0.0, None
    for ev in eng.generate(prompt, SamplingParams(max_tokens=tokens, temperature=0.0)):
        if isinstance(ev, TextDelta):
            if not first:
                first = time.perf_counter()
            text += ev.text
        elif isinstance(ev, Finished):
            usage = ev.usage
    t1 = time.perf_counter()
    assert usage is not None
    out[prompt] = {"text": text, "tokens": usage.completion_tokens, "start": t0, "end": t1,
                   "ttft_s": (first or t1) - t_go, "tok_s": usage.completion_tokens / (t1 - t0)}


def _together(eng: Any, prompts: list[str], tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t_go = time.perf_counter()
    threads = [threading.Thread(target=_run, args=(eng, p, tokens, out, t_go)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _prompts(n: int) -> list[str]:
    return [OPEN[i % len(OPEN)] + ("" if i < len(OPEN) else f" ({i})") for i in range(n)]


def _streams(eng: Any, n: int, tokens: int, alone: dict[str, dict[str, Any]]) -> dict[str, Any]:
    prompts = _prompts(n)
    out = _together(eng, prompts, tokens)
    wall = max(r["end"] for r in out.values()) - min(r["start"] for r in out.values())
    total = sum(r["tokens"] for r in out.values())
    one_by_one = sum(alone[p]["tokens"] for p in prompts) / sum(alone[p]["end"] - alone[p]["start"] for p in prompts)
    return {
        "streams": n, "wall_s": wall, "tokens": total, "aggregate_tok_s": total / wall,
        "one_at_a_time_tok_s": one_by_one, "aggregate_vs_1": total / wall / one_by_one,
        "per_stream_tok_s": statistics.median(r["tok_s"] for r in out.values()),
        "per_stream_vs_alone": statistics.median(out[p]["tok_s"] / alone[p]["tok_s"] for p in prompts),
        "identical": sum(out[p]["text"] == alone[p]["text"] for p in prompts), "compared": len(prompts),
    }


def _ttft(eng: Any, tokens: int) -> dict[str, Any]:
    long_prompt = FILLER * 100  # ~4k tokens
    shorts = [FILLER * 6 + f"Question {i}: what did the committee agree?" for i in range(8)]
    out: dict[str, Any] = {}
    t_go = time.perf_counter()
    lt = threading.Thread(target=_run, args=(eng, long_prompt, 16, out, t_go))
    lt.start()
    time.sleep(0.05)  # the long prompt is in first
    threads = [threading.Thread(target=_run, args=(eng, p, tokens, out, time.perf_counter())) for p in shorts]
    for t in threads:
        t.start()
    for t in [*threads, lt]:
        t.join()
    tt = sorted(out[p]["ttft_s"] for p in shorts)
    eng.reset_cache()
    alone: dict[str, Any] = {}
    _run(eng, shorts[0] + " Again.", 1, alone, time.perf_counter())
    return {"short_prompt_tokens": eng.count_tokens(shorts[0]), "long_prompt_tokens": eng.count_tokens(long_prompt),
            "ttft_p50_s": statistics.median(tt), "ttft_p99_s": tt[-1], "long_ttft_s": out[long_prompt]["ttft_s"],
            "alone_ttft_s": next(iter(alone.values()))["ttft_s"]}


def measure(path: Path, speculative: bool, streams: list[int], tokens: int) -> dict[str, Any]:
    """One mode (drafting on or off): the streams table and the TTFT figures."""
    from edge_agent.engine.llama_engine import LlamaEngine

    # the same requests one at a time, as a daemon without concurrency serves them
    solo = LlamaEngine(path, n_ctx=1024, n_threads=2, speculative=speculative, remember_answers=False)
    solo.calibrate()
    _together(solo, [OPEN[-1]], 16)  # warm
    solo.reset_cache()
    alone: dict[str, dict[str, Any]] = {}
    for p in _prompts(max(streams)):
        alone[p] = _together(solo, [p], tokens)[p]
        solo.reset_cache()
    solo.close()
    eng = LlamaEngine(path, n_ctx=5120, n_threads=2, speculative=speculative, remember_answers=False,
                      parallel=max(streams))
    eng.calibrate()
    rows = []
    for n in streams:
        eng.reset_cache()
        rows.append(_streams(eng, n, tokens, alone))
    eng.reset_cache()
    ttft = _ttft(eng, 32)
    stats = eng.scheduler.stats if eng.scheduler else None
    eng.close()
    return {"rows": rows, "ttft": ttft, "rows_per_shared_step": (stats.rows / stats.steps) if stats and stats.steps else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--plain", action="store_true", help="drafting off only")
    ap.add_argument("--drafts", action="store_true", help="drafting on only")
    args = ap.parse_args()
    from common.model_files import resolve_model_path
    from edge_agent.runtime import report

    path = resolve_model_path(None)
    modes = [m for m, on in (("drafts", not args.plain), ("plain", not args.drafts)) if on]
    data = {"benchmark": "concurrency", "host": report.host(), "build": report.build(), "tokens": args.tokens,
            "modes": {m: measure(path, m == "drafts", args.streams, args.tokens) for m in modes}}
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    _plot(data, Path(args.json).with_suffix(".png"))
    print("\n".join(table(data)))
    return 0


def table(data: dict[str, Any]) -> list[str]:
    """The streams table of both modes and their TTFT lines (Markdown)."""
    out = [("| drafting | streams | aggregate tok/s | one at a time tok/s | x one at a time | per-stream tok/s | "
           "x alone | texts identical |"), "|---|---|---|---|---|---|---|---|"]
    notes = []
    for mode, m in data["modes"].items():
        for r in m["rows"]:
            out.append(f"| {'on' if mode == 'drafts' else 'off'} | {r['streams']} | {r['aggregate_tok_s']:.1f} | "
                       f"{r['one_at_a_time_tok_s']:.1f} | {r['aggregate_vs_1']:.2f} | {r['per_stream_tok_s']:.1f} | "
                       f"{r['per_stream_vs_alone']:.2f} | {r['identical']}/{r['compared']} |")
        t = m["ttft"]
        notes.append(f"drafting {'on' if mode == 'drafts' else 'off'}: {m['rows_per_shared_step']:.1f} rows per shared "
                     f"step; TTFT of 8 clients with {t['short_prompt_tokens']}-token prompts while a "
                     f"{t['long_prompt_tokens']}-token prompt arrives first: p50 {t['ttft_p50_s']:.2f} s, p99 "
                     f"{t['ttft_p99_s']:.2f} s (one such prompt alone: {t['alone_ttft_s']:.2f} s; the long one: "
                     f"{t['long_ttft_s']:.2f} s)")
    return [*out, "", *notes]


def _plot(data: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for mode, m in data["modes"].items():
        rows = m["rows"]
        n = [r["streams"] for r in rows]
        ax.plot(n, [r["aggregate_tok_s"] for r in rows], "o-", label=f"aggregate, {mode}")
        ax.plot(n, [r["per_stream_tok_s"] for r in rows], "s--", label=f"per stream, {mode}")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("tokens/s")
    ax.set_xticks(n)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
