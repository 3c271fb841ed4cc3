"""Would tree drafts pay on this host? Linear vs tree drafting, replayed on real answers.

A tree draft verifies several candidate continuations of the current tail in one step
(the batch's sequences share the prefix's KV cells). It only gains where the n-gram
indexes know more than one continuation and the best one is not the most recent one,
and it always costs the extra rows. This benchmark measures both sides before any of
it is built:

1. the greedy answer of the real model to every benchmark prompt (plain decoding: the
   speculative engine's output is the same text, so the accepted tokens are known);
2. the cost of a step by the number of rows it evaluates, measured on this host with the
   engine's own calibration (``costs.measure``: k drafted tokens cost ``cost(k)`` plain
   steps; the 262k-entry output layer makes every row expensive without AMX tiles);
3. a replay of each answer under the engine's real drafters (prompt lookup, the
   request's draft texts) and its real draft-length policy, once linear (the engine
   today) and once as a tree: the linear draft plus up to ``branches - 1`` other
   continuations of the same tail (every earlier occurrence, longest n-gram first,
   distinct continuations), each as long as the linear one, merged into a trie; a step
   evaluates ``1 + trie nodes`` rows and accepts the longest branch the target agrees
   with.

Predicted time is the sum of step costs in plain-step units; the replay ignores the
tree's own overheads (sequence bookkeeping in the KV cache, copying the accepted
branch), so it is optimistic for the tree. Also reported: the extra cost per row at
which the tree would break even, for hosts whose rows are cheaper.

    python benchmarks/tree_drafts.py --json benchmarks/results/tree_drafts.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.model_files import default_model_path
from edge_agent.engine import costs
from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.costs import CostCurve
from edge_agent.engine.decoder import choose_draft
from edge_agent.engine.drafters import ContextDrafter, CorpusDrafter
from edge_agent.engine.llama_model import LlamaModel

ROOT = Path(__file__).resolve().parent
MIN_N, MAX_N, MAX_DRAFT = 2, 4, 16


def greedy_answer(model: LlamaModel, prompt: list[int], max_tokens: int) -> list[int]:
    """The plain greedy continuation (what the speculative engine also produces)."""
    model.truncate(0)
    rows = None
    for start in range(0, len(prompt), model.n_batch):
        chunk = prompt[start : start + model.n_batch]
        rows = model.eval(chunk, [len(chunk) - 1] if start + len(chunk) == len(prompt) else [])
    assert rows is not None
    out: list[int] = []
    tok = int(np.argmax(rows[0]))
    while not model.is_eog(tok) and len(out) < max_tokens:
        out.append(tok)
        if len(out) == max_tokens:
            break
        tok = int(np.argmax(model.eval([tok], [0])[0]))
    return out


def continuations(seq: Sequence[int], texts: Sequence[Sequence[int]], length: int, limit: int) -> list[tuple[int, ...]]:
    """Distinct continuations of ``seq``'s tail found in ``seq`` itself and ``texts``:
    longest matching n-gram first, most recent occurrence first."""
    found: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    sources = [list(seq)] + [list(t) for t in texts]
    for n in range(min(MAX_N, len(seq)), MIN_N - 1, -1):
        tail = list(seq[len(seq) - n :])
        for src_index, src in enumerate(sources):
            end = len(src) - (1 if src_index == 0 else 0)  # own tail is not its own match
            for pos in range(end - n, -1, -1):
                if src[pos : pos + n] == tail and pos + n < len(src):
                    cont = tuple(src[pos + n : pos + n + length])
                    if cont and cont not in seen:
                        seen.add(cont)
                        found.append(cont)
                        if len(found) >= limit:
                            return found
    return found


def trie_nodes(branches: Sequence[Sequence[int]]) -> int:
    prefixes = {tuple(b[: i + 1]) for b in branches for i in range(len(b))}
    return len(prefixes)


def accepted(draft: Sequence[int], target: Sequence[int]) -> int:
    n = 0
    for d, t in zip(draft, target, strict=False):
        if d != t:
            break
        n += 1
    return n


def replay(
    prompt: list[int], answer: list[int], texts: list[list[int]], curve: CostCurve, branches: int
) -> dict[str, float]:
    """Steps, tokens and predicted cost (plain steps) of one answer; ``branches`` = 1 is linear."""
    policy = DraftPolicy(max_draft=MAX_DRAFT, costs=curve)
    context, corpus = ContextDrafter(MIN_N, MAX_N), CorpusDrafter(MIN_N, MAX_N)
    for t in texts:
        corpus.add(t)
    drafters = [context, corpus]
    seq = list(prompt) + answer[:1]
    for d in drafters:
        d.begin(prompt)
        d.extend(answer[:1])
    produced, steps, cost, rows_total, tree_wins = 1, 0, 0.0, 0, 0
    while produced < len(answer):
        room = len(answer) - produced - 1
        draft, k = choose_draft(drafters, policy, room) if room > 0 else (None, 0)
        target = answer[produced:]
        if draft is None:
            take, rows = 0, 0
        else:
            primary = list(draft.tokens[:k])
            take = accepted(primary, target)
            policy.update(draft, k, take)
            tree = [primary]
            if branches > 1:
                for alt in continuations(seq, texts, k, branches * 4):
                    if len(tree) >= branches:
                        break
                    if list(alt) != primary:
                        tree.append(list(alt))
            rows = trie_nodes(tree)
            if rows > MAX_DRAFT:  # keep within the measured curve
                tree, rows = [primary], k
            best_take = max(accepted(b, target) for b in tree)
            tree_wins += best_take > take
            take = best_take
        new = answer[produced : produced + take + 1]
        for d in drafters:
            d.extend(new)
        seq += new
        produced += len(new)
        steps += 1
        cost += curve.cost(rows)
        rows_total += rows
    return {"steps": steps, "tokens": produced - 1, "cost": cost, "rows": rows_total, "tree_wins": tree_wins}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--branches", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--repeats", type=int, default=5, help="calibration rounds")
    args = ap.parse_args()
    cases = [json.loads(line) for line in (ROOT / "prompts" / "speculative.jsonl").read_text().splitlines() if line.strip()]
    threads = os.cpu_count() or 1
    model = LlamaModel(default_model_path(progress=False), n_ctx=2048, n_threads=threads)
    answers = []
    for case in cases:
        prompt = model.tokenize(case["prompt"], add_bos=True)
        texts = [model.tokenize(t, add_bos=False) for t in case.get("draft_texts", ())]
        answers.append((case, prompt, greedy_answer(model, prompt, case["max_tokens"]), texts))
    points, plain_ms = costs.measure(model, repeats=args.repeats, prefix=answers[0][1][:256])
    model.close()
    curve = CostCurve.from_points(points, max_k=MAX_DRAFT)
    print("step cost by drafted tokens: " + " ".join(f"{k}:{v:.2f}" for k, v in sorted(points.items())), flush=True)

    def run_all(curve: CostCurve, b: int) -> list[dict[str, float]]:
        return [replay(p, a, t, curve, b) for _, p, a, t in answers]

    linear = run_all(curve, 1)
    rows: list[dict[str, Any]] = []
    for (case, _, answer, _), lin in zip(answers, linear, strict=True):
        rows.append({"name": case["name"], "suite": case["suite"], "answer_tokens": len(answer),
                     "linear": lin, "tree": {}})
    for b in args.branches:
        for row, tr in zip(rows, run_all(curve, b), strict=True):
            row["tree"][str(b)] = tr

    def speed(r: dict[str, float]) -> float:  # tokens per plain-step unit of time
        return (r["tokens"] + 1) / (r["cost"] + 1)  # + the prefill's first token

    suites = sorted({r["suite"] for r in rows})
    summary: dict[str, Any] = {}
    for s in [*suites, "all"]:
        sel = [r for r in rows if s in ("all", r["suite"])]
        entry: dict[str, Any] = {
            "linear_tokens_per_step": statistics.median(r["linear"]["tokens"] / max(1, r["linear"]["steps"]) for r in sel),
            "linear_speed_vs_plain": statistics.median(speed(r["linear"]) for r in sel),
        }
        for b in args.branches:
            key = str(b)
            entry[f"tree{b}_tokens_per_step"] = statistics.median(r["tree"][key]["tokens"] / max(1, r["tree"][key]["steps"]) for r in sel)
            entry[f"tree{b}_speed_vs_plain"] = statistics.median(speed(r["tree"][key]) for r in sel)
            entry[f"tree{b}_over_linear"] = statistics.median(speed(r["tree"][key]) / speed(r["linear"]) for r in sel)
            entry[f"tree{b}_steps_won"] = sum(int(r["tree"][key]["tree_wins"]) for r in sel)
        summary[s] = entry

    # The per-row cost at which the tree would break even (a linear curve 1 + c*k).
    def ratio_at(c: float, b: int) -> float:
        lin_curve = CostCurve.linear(c, max_k=MAX_DRAFT)
        lin = run_all(lin_curve, 1)
        tree = run_all(lin_curve, b)
        return sum(speed(t) for t in tree) / sum(speed(x) for x in lin)

    b = max(args.branches)
    break_even: float | None = None
    for c in (0.4, 0.2, 0.1, 0.05, 0.02, 0.01):
        if ratio_at(c, b) > 1.0:
            break_even = c
            break
    table = ["| suite | linear tok/step | " + " | ".join(f"tree{b} tok/step | tree{b}/linear" for b in args.branches) + " |"]
    for s, e in summary.items():
        table.append(f"| {s} | {e['linear_tokens_per_step']:.2f} | " + " | ".join(
            f"{e[f'tree{b}_tokens_per_step']:.2f} | {e[f'tree{b}_over_linear']:.3f}" for b in args.branches) + " |")
    print("\n".join(table))
    print(f"tree with {b} branches beats linear once an extra row costs at most: {break_even} plain steps")
    result = {
        "benchmark": "tree_drafts", "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": threads, "plain_step_ms": round(plain_ms, 2), "cost_curve": {str(k): round(v, 3) for k, v in points.items()},
        "branches": args.branches, "summary": summary, "prompts": rows,
        "break_even_row_cost": break_even, "break_even_branches": b,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
