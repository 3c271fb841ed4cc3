"""Does the draft policy's probing and carrying pay on this host? Replayed on real answers.

The policy gates a draft source off where verifying its drafts does not pay, probes a
gated source with one token every ``retry_every`` skipped opportunities, and carries what
one request learnt into the next with a weight of ``carry`` trials. Both cost verify rows
where drafts fail and gain where they land, so whether they pay depends on the host's cost
curve. This benchmark replays the greedy answer of every benchmark prompt (the same
answers and measured cost curve as ``tree_drafts.py``) under the engine's real drafters,
with one policy shared across the requests as in the daemon (``reset()`` between them),
in the prompt file's order and in four shuffled orders, twice over, for each variant:

- ``default``: the shipped policy;
- ``no_carry``: every request starts from the prior;
- ``carry_1``: a carry of one trial;
- ``retry_64``: probes four times rarer;
- ``no_probe``: a gated source is never tried again in that request.

Predicted speed is tokens per plain-step unit (1 = plain decoding), median over each
suite's prompts of the per-prompt medians over orders.

    python benchmarks/draft_policy.py --json benchmarks/results/draft_policy.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tree_drafts import MAX_DRAFT, MAX_N, MIN_N, ROOT, accepted, greedy_answer

from common.model_files import default_model_path
from edge_agent.engine import costs
from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.costs import CostCurve
from edge_agent.engine.decoder import choose_draft
from edge_agent.engine.drafters import ContextDrafter, CorpusDrafter
from edge_agent.engine.llama_model import LlamaModel

Answer = tuple[str, str, list[int], list[int], list[list[int]]]


def replay(policy: DraftPolicy, curve: CostCurve, prompt: list[int], answer: list[int],
           texts: list[list[int]]) -> float:
    """Predicted speed of one answer (tokens per plain-step unit)."""
    context, corpus = ContextDrafter(MIN_N, MAX_N), CorpusDrafter(MIN_N, MAX_N)
    for t in texts:
        corpus.add(t)
    drafters = [context, corpus]
    for d in drafters:
        d.begin(prompt)
        d.extend(answer[:1])
    produced, cost = 1, 0.0
    while produced < len(answer):
        room = len(answer) - produced - 1
        draft, k = choose_draft(drafters, policy, room) if room > 0 else (None, 0)
        take = 0
        if draft is not None and k > 0:
            take = accepted(list(draft.tokens[:k]), answer[produced:])
            policy.update(draft, k, take)
        else:
            k = 0
        new = answer[produced : produced + take + 1]
        for d in drafters:
            d.extend(new)
        produced += len(new)
        cost += curve.cost(k)
    return len(answer) / (cost + 1)  # + the prefill's first token


def run_variant(make: Callable[[], DraftPolicy], curve: CostCurve, answers: list[Answer],
                orders: list[list[int]]) -> dict[str, float]:
    """Per-prompt median predicted speed over the orders."""
    speeds: dict[str, list[float]] = {}
    for order in orders:
        policy = make()
        for second in (False, True):  # the second pass: every request has a predecessor
            for i in order:
                name, _suite, prompt, answer, texts = answers[i]
                policy.reset()
                speed = replay(policy, curve, prompt, answer, texts)
                if second:
                    speeds.setdefault(name, []).append(speed)
    return {name: statistics.median(v) for name, v in speeds.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5, help="calibration rounds")
    args = ap.parse_args()
    cases = [json.loads(line) for line in (ROOT / "prompts" / "speculative.jsonl").read_text().splitlines() if line.strip()]
    threads = os.cpu_count() or 1
    model = LlamaModel(default_model_path(progress=False), n_ctx=2048, n_threads=threads)
    answers: list[Answer] = []
    for case in cases:
        prompt = model.tokenize(case["prompt"], add_bos=True)
        texts = [model.tokenize(t, add_bos=False) for t in case.get("draft_texts", ())]
        answers.append((case["name"], case["suite"], prompt, greedy_answer(model, prompt, case["max_tokens"]), texts))
    points, plain_ms = costs.measure(model, repeats=args.repeats, prefix=answers[0][2][:256])
    model.close()
    curve = CostCurve.from_points(points, max_k=MAX_DRAFT)
    print("step cost by drafted tokens: " + " ".join(f"{k}:{v:.2f}" for k, v in sorted(points.items())), flush=True)

    def policy(**kw: Any) -> Callable[[], DraftPolicy]:
        return lambda: DraftPolicy(max_draft=MAX_DRAFT, costs=curve, **kw)

    variants = {
        "default": policy(), "no_carry": policy(carry=0.0), "carry_1": policy(carry=1.0),
        "retry_64": policy(retry_every=64), "no_probe": policy(retry_every=0),
    }
    rng = random.Random(1)
    orders = [list(range(len(answers)))] + [rng.sample(range(len(answers)), len(answers)) for _ in range(4)]
    per_prompt = {name: run_variant(make, curve, answers, orders) for name, make in variants.items()}
    suites = sorted({a[1] for a in answers})
    summary: dict[str, dict[str, float]] = {}
    for s in [*suites, "all"]:
        names = [a[0] for a in answers if s in ("all", a[1])]
        summary[s] = {
            v: round(statistics.median(per_prompt[v][n] for n in names), 3) for v in variants
        } | {f"{v}_min": round(min(per_prompt[v][n] for n in names), 3) for v in variants}
    print("| suite | " + " | ".join(variants) + " |")
    for s, e in summary.items():
        print(f"| {s} | " + " | ".join(f"{e[v]:.3f}" for v in variants) + " |")
    result = {
        "benchmark": "draft_policy", "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": threads, "plain_step_ms": round(plain_ms, 2),
        "cost_curve": {str(k): round(v, 3) for k, v in points.items()},
        "variants": list(variants), "orders": len(orders), "summary": summary,
        "prompts": {v: {n: round(x, 3) for n, x in p.items()} for v, p in per_prompt.items()},
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
