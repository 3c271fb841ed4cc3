"""Benchmark: our self-speculative engine against llama-cpp-python, greedy, one run.

Contenders per prompt, interleaved (the order rotates from prompt to prompt), all on the
same GGUF file with the same thread count:

* ``peer_plain``: llama-cpp-python ``Llama.create_completion``;
* ``peer_pld``: the same with ``LlamaPromptLookupDecoding`` as draft model;
* ``own_plain``: our decode loop without drafting;
* ``own_spec``: our engine with drafting.

Every contender starts each prompt from an empty KV cache. tok/s is the decode rate
after the first token: ``(completion_tokens - 1) / (t_last - t_first)``.

For each prompt where our speculative text differs from our plain text, the first
diverging position is evaluated again twice from an empty cache: one token at a time
(as the plain run did) and inside the same batches as the speculative run. The
divergence is *explained* when the plain run's top-2 logit margin there is no larger
than the largest absolute difference between the two logit rows; it is *reproduced*
when the one-by-one row picks the plain token and the batched row the speculative one
(a verifier that accepted a token the target would not choose fails this).

    python benchmarks/speculative.py --json benchmarks/results/speculative.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_agent.engine.api import Finished, SamplingParams, TextDelta
from edge_agent.engine.llama_engine import LlamaEngine
from edge_agent.engine.llama_model import on_model_thread
from edge_agent.engine.sampling import greedy, top2_margin
from edge_agent.engine.token_model import TokenModel

DEFAULT_PROMPTS = Path(__file__).resolve().parent / "prompts" / "speculative.jsonl"
SUITES = ("copy", "grounded", "open")
CONTENDERS = ("peer_plain", "peer_pld", "own_plain", "own_spec")


@dataclass
class Run:
    """One contender on one prompt."""

    text: str
    tokens: int
    ttft_ms: float
    tok_s: float
    e2e_tok_s: float
    accepted_per_step: float | None = None


def _rates(n: int, t0: float, t_first: float, t_end: float) -> tuple[float, float, float]:
    decode = t_end - t_first
    tok_s = (n - 1) / decode if n > 1 and decode > 0 else 0.0
    e2e = n / (t_end - t0) if t_end > t0 else 0.0
    return (t_first - t0) * 1000.0, tok_s, e2e


class PeerRunner:
    """llama-cpp-python, plain or with prompt-lookup decoding."""

    def __init__(self, model_path: Path, n_ctx: int, threads: int, pld: bool) -> None:
        # loaded and run on the thread our engine runs llama.cpp on: a second OpenMP
        # team in the process would slow both sides (engine.llama_model.on_model_thread)
        on_model_thread(lambda: self._load(model_path, n_ctx, threads, pld))

    def _load(self, model_path: Path, n_ctx: int, threads: int, pld: bool) -> None:
        from llama_cpp import Llama, StoppingCriteriaList
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        self._criteria = StoppingCriteriaList
        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            flash_attn=True,  # what llama.cpp's "auto" picks for our context on this CPU
            verbose=False,
            draft_model=LlamaPromptLookupDecoding() if pld else None,
        )

    def run(self, prompt: str, max_tokens: int) -> Run:
        return on_model_thread(lambda: self._run(prompt, max_tokens))

    def _run(self, prompt: str, max_tokens: int) -> Run:
        stamps: list[float] = []

        def record(_ids: Any, _logits: Any) -> bool:
            stamps.append(time.perf_counter())
            return False

        self.llm.reset()
        t0 = time.perf_counter()
        out = self.llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=0.0,
            repeat_penalty=1.0,
            stopping_criteria=self._criteria([record]),
        )
        t_end = time.perf_counter()
        text = out["choices"][0]["text"]  # type: ignore[index]
        n = int(out["usage"]["completion_tokens"])  # type: ignore[index]
        t_first = stamps[0] if stamps else t_end
        ttft, tok_s, e2e = _rates(n, t0, t_first, stamps[-1] if stamps else t_end)
        return Run(text, n, ttft, tok_s, e2e)


class OwnRunner:
    """Our engine, with or without drafting."""

    def __init__(self, model_path: Path, n_ctx: int, threads: int, speculative: bool) -> None:
        self.engine = LlamaEngine(
            model_path, n_ctx=n_ctx, n_threads=threads, speculative=speculative
        )
        if speculative:
            self.engine.calibrate()  # as the daemon does at start
        self.trace: list[tuple[int, tuple[int, ...], int]] = []
        self.tokens: list[int] = []

    def run(self, prompt: str, max_tokens: int, draft_texts: Sequence[str] = ()) -> Run:
        self.engine.reset_cache()
        parts: list[str] = []
        fin: Finished | None = None
        t0 = time.perf_counter()
        traced = self.engine.traced(prompt, SamplingParams(max_tokens=max_tokens), draft_texts=draft_texts)
        for ev in traced.events:
            if isinstance(ev, TextDelta):
                parts.append(ev.text)
            else:
                fin = ev
        assert fin is not None
        st = traced.stats
        self.trace = list(st.trace or [])
        self.tokens = list(traced.tokens)
        n = fin.usage.completion_tokens
        ttft, tok_s, e2e = _rates(n, t0, st.t_first, st.t_end)
        per_step = st.accepted_tokens / st.verify_steps if st.verify_steps else 0.0
        return Run("".join(parts), n, ttft, tok_s, e2e, per_step)


def _prefill(model: TokenModel, prompt: Sequence[int], chunk: int = 512) -> np.ndarray:
    model.truncate(0)
    row = np.empty(0, dtype=np.float32)
    for i in range(0, len(prompt), chunk):
        part = list(prompt[i : i + chunk])
        last = i + chunk >= len(prompt)
        rows = model.eval(part, [len(part) - 1] if last else [])
        if last:
            row = rows[0].copy()
    return row


def divergence(
    model: TokenModel,
    prompt: Sequence[int],
    plain: Sequence[int],
    spec: Sequence[int],
    trace: Sequence[tuple[int, tuple[int, ...], int]],
) -> dict[str, Any] | None:
    """Margin and batch/one-by-one logit difference at the first differing token."""
    j = next((i for i, (a, b) in enumerate(zip(plain, spec)) if a != b), None)
    if j is None:
        return None
    # one token at a time, as the plain run evaluated it
    one = _prefill(model, prompt)
    for t in plain[:j]:
        one = model.eval([t], [0])[0].copy()
    # inside the batches of the speculative run
    target = len(prompt) + j - 1  # position whose logits predict token j
    batched = _prefill(model, prompt)
    if j > 0:
        for start, batch, keep in trace:
            if start <= target < keep:  # the step that evaluated and kept that position
                rows = model.eval(list(batch), list(range(len(batch))))
                batched = rows[target - start].copy()
                break
            model.eval(list(batch), list(range(len(batch))))
            model.truncate(keep)
    model.truncate(0)
    margin = top2_margin(one)
    diff = float(np.max(np.abs(one - batched)))
    return {
        "position": j,
        "margin": margin,
        "max_abs_logit_diff": diff,
        "explained": margin <= diff,
        "replay_consistent": greedy(one) == plain[j] and greedy(batched) == spec[j],
    }


def load_prompts(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row["suite"] not in SUITES:
                raise ValueError(f"{path}: unknown suite {row['suite']!r} in {row['name']!r}")
            rows.append(row)
    return rows


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite in (*SUITES, "all"):
        sel = [r for r in rows if suite == "all" or r["suite"] == suite]
        if not sel:
            continue
        tps = {c: [r[c]["tok_s"] for r in sel] for c in CONTENDERS}

        def ratio(a: str, b: str, tps: dict[str, list[float]] = tps) -> float | None:
            return _median([x / y for x, y in zip(tps[a], tps[b], strict=True) if y > 0])

        out[suite] = {
            "prompts": len(sel),
            "vs_peer_plain": ratio("own_spec", "peer_plain"),
            "vs_own_plain": ratio("own_spec", "own_plain"),
            "vs_peer_pld": ratio("own_spec", "peer_pld"),
            "own_plain_vs_peer_plain": ratio("own_plain", "peer_plain"),
            "faster_than_pld_on": sum(
                1 for r in sel if r["own_spec"]["tok_s"] > r["peer_pld"]["tok_s"]
            ),
            "median_accepted_per_step": _median(
                [r["own_spec"]["accepted_per_step"] or 0.0 for r in sel]
            ),
            "median_tok_s": {c: _median(tps[c]) for c in CONTENDERS},
            "identical_rate": round(sum(1 for r in sel if r["identical"]) / len(sel), 3),
            "unreproduced_divergences": sum(
                1
                for r in sel
                if r["divergence"] is not None and not r["divergence"]["replay_consistent"]
            ),
            "unexplained_divergences": sum(
                1 for r in sel if r["divergence"] is not None and not r["divergence"]["explained"]
            ),
        }
    return out


def print_table(
    rows: list[dict[str, Any]], summary: dict[str, Any], out: Callable[[str], None] = print
) -> None:
    out(
        f"{'prompt':24} {'suite':8} "
        + " ".join(f"{c:>10}" for c in CONTENDERS)
        + "  acc/step  same"
    )
    for r in rows:
        cells = " ".join(f"{r[c]['tok_s']:10.1f}" for c in CONTENDERS)
        acc = r["own_spec"]["accepted_per_step"] or 0.0
        out(
            f"{r['name'][:24]:24} {r['suite']:8} {cells}  {acc:8.2f}  {'yes' if r['identical'] else 'no'}"
        )
    out("")
    out(
        f"{'suite':8} {'vs_peer_plain':>13} {'vs_own_plain':>12} {'vs_peer_pld':>11} {'own_vs_peer':>11} {'>pld':>5} {'ident':>6} {'unexpl':>6}"
    )
    for suite, s in summary.items():
        out(
            f"{suite:8} {s['vs_peer_plain']:13.2f} {s['vs_own_plain']:12.2f} {s['vs_peer_pld']:11.2f} "
            f"{s['own_plain_vs_peer_plain']:11.2f} {s['faster_than_pld_on']:>2}/{s['prompts']:<2} "
            f"{s['identical_rate']:6.2f} {s['unexplained_divergences']:6d}"
        )


def _runtime(engine: LlamaEngine | None) -> dict[str, Any]:
    """The build, llama.cpp's system info, the weights' buffer types, the cost curve."""
    from edge_agent.runtime import report

    out: dict[str, Any] = {"build": report.build(), "host": report.host(),
                           "system_info": report.system_info()}
    if engine is not None:
        out.update(engine.runtime_state())
        if engine.calibration is not None:
            out["calibrated_points"] = engine.calibration.points
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS)
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    ap.add_argument(
        "--model", type=Path, default=None, help="GGUF file (default: the shipped model)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument(
        "--max-tokens", type=int, default=None, help="override every prompt's max_tokens"
    )
    ap.add_argument("--suite", action="append", choices=SUITES, help="only these suites")
    ap.add_argument("--limit", type=int, default=None, help="at most this many prompts per suite")
    args = ap.parse_args(argv)

    if args.model is None:
        from common.model_files import default_model_path

        args.model = default_model_path()
    prompts = load_prompts(args.prompts)
    if args.suite:
        prompts = [p for p in prompts if p["suite"] in args.suite]
    if args.limit:
        kept: list[dict[str, Any]] = []
        for suite in SUITES:
            kept += [p for p in prompts if p["suite"] == suite][: args.limit]
        prompts = kept

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    peer_plain = PeerRunner(args.model, args.n_ctx, args.threads, pld=False)
    peer_pld = PeerRunner(args.model, args.n_ctx, args.threads, pld=True)
    own_plain = OwnRunner(args.model, args.n_ctx, args.threads, speculative=False)
    own_spec = OwnRunner(args.model, args.n_ctx, args.threads, speculative=True)
    warm = "<start_of_turn>user\nSay hello.<end_of_turn>\n<start_of_turn>model\n"
    for runner in (peer_plain, peer_pld, own_plain, own_spec):
        runner.run(warm, 8)

    rows: list[dict[str, Any]] = []
    for i, p in enumerate(prompts):
        max_tokens = args.max_tokens or int(p["max_tokens"])
        draft_texts = tuple(p.get("draft_texts", ()))
        results: dict[str, Run] = {}
        order = CONTENDERS[i % 4 :] + CONTENDERS[: i % 4]
        for name in order:
            if name == "peer_plain":
                results[name] = peer_plain.run(p["prompt"], max_tokens)
            elif name == "peer_pld":
                results[name] = peer_pld.run(p["prompt"], max_tokens)
            elif name == "own_plain":
                results[name] = own_plain.run(p["prompt"], max_tokens)
            else:
                results[name] = own_spec.run(p["prompt"], max_tokens, draft_texts)
        prompt_tokens = own_plain.engine.tokenize_prompt(p["prompt"])
        identical = own_plain.tokens == own_spec.tokens
        div = None
        if not identical:
            div = divergence(
                own_plain.engine.model,
                prompt_tokens,
                own_plain.tokens,
                own_spec.tokens,
                own_spec.trace,
            )
            own_plain.engine.reset_cache()
        row: dict[str, Any] = {
            "name": p["name"],
            "suite": p["suite"],
            "prompt_tokens": len(prompt_tokens),
            "max_tokens": max_tokens,
            **{c: asdict(results[c]) for c in CONTENDERS},
            "identical": identical,
            "own_plain_text_equals_peer_plain": results["own_plain"].text
            == results["peer_plain"].text,
            "divergence": div,
        }
        for c in CONTENDERS:
            row[c].pop("text")
        row["own_spec_text"] = results["own_spec"].text
        rows.append(row)
        print(
            f"[{i + 1}/{len(prompts)}] {p['name']}: "
            + " ".join(f"{c}={results[c].tok_s:.1f}" for c in CONTENDERS)
            + f" acc/step={results['own_spec'].accepted_per_step or 0:.2f} identical={identical}",
            file=sys.stderr,
            flush=True,
        )

    summary = summarize(rows)
    result = {
        "benchmark": "speculative",
        "model": str(args.model.name),
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # other work on the machine distorts wall-clock rates: the 1-minute load average
            "load_avg_1m_start": round(load_start[0], 2),
            "load_avg_1m_end": round(os.getloadavg()[0], 2),
        },
        "runtime": _runtime(own_spec.engine),
        "tok_s_definition": "(completion_tokens - 1) / (time of last token - time of first token)",
        "elapsed_s": round(time.perf_counter() - t_start, 1),
        "summary": summary,
        "prompts": rows,
    }
    print_table(rows, summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
