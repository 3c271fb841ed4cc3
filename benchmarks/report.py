"""Regenerate ``BENCHMARKS.md`` and the PNG plots from ``benchmarks/results/*.json``.

Every figure states the command, the machine and the date of the run that made it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

COMMANDS = {
    "speculative": "python benchmarks/speculative.py --json benchmarks/results/speculative.json",
    "context_store": "python benchmarks/context_store.py --json benchmarks/results/context_store.json",
    "context_store_1m": "python benchmarks/context_store.py --items 1000000 --json benchmarks/results/context_store_1m.json",
    "routing": "chrt -f 10 python benchmarks/routing.py --iterations 5000 --json benchmarks/results/routing.json",
    "e2e": "python benchmarks/e2e.py --json benchmarks/results/e2e.json",
    "runtime": "python benchmarks/runtime.py --json benchmarks/results/runtime.json",
    "chat_turns": "python benchmarks/chat_turns.py --json benchmarks/results/chat_turns.json",
    "json_extraction": "python benchmarks/json_extraction.py --json benchmarks/results/json_extraction.json",
    "http_overhead": "python benchmarks/http_overhead.py --json benchmarks/results/http_overhead.json",
    "kv_cache": "python benchmarks/kv_cache.py --json benchmarks/results/kv_cache.json",
    "energy": "python benchmarks/energy.py --json benchmarks/results/energy.json",
    "tree_drafts": "python benchmarks/tree_drafts.py --json benchmarks/results/tree_drafts.json",
    "draft_policy": "python benchmarks/draft_policy.py --json benchmarks/results/draft_policy.json",
    "kernels": "python benchmarks/kernels.py --json benchmarks/results/kernels.json",
    "concurrency": "python benchmarks/concurrency.py --json benchmarks/results/concurrency.json",
    "retrieval": "python benchmarks/retrieval.py --json benchmarks/results/retrieval.json",
    "startup": "python benchmarks/startup.py --json benchmarks/results/startup.json",
}


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    data["_date"] = data.get("run_at") or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    return data


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _provenance(name: str, data: dict[str, Any]) -> str:
    host = data.get("host") or {}
    cpu = f"{host['cpu']}, " if host.get("cpu") else ""
    cores = host.get("cores") or os.cpu_count()
    return (
        f"Command: `{COMMANDS[name]}` (or `make bench`) · run {data['_date']} · "
        f"{cpu}{cores} cores, {host.get('machine') or platform.machine()}, model `gemma-3-270m-q4_k_m.gguf`"
    )


def _speculative(data: dict[str, Any], results: Path, plots: list[str]) -> list[str]:
    out = ["## Self-speculative decoding", "", _provenance("speculative", data), ""]
    out += [
        (
            "Greedy, same model file and thread count for every contender, contenders interleaved per prompt. "
            "Ratios are medians over the suite's prompts of per-prompt tok/s ratios. "
            "`peer_plain` = llama-cpp-python `create_completion`; `peer_pld` = llama-cpp-python with "
            "`LlamaPromptLookupDecoding`; `own_plain` = our decode loop without drafting; `own_spec` = our engine."
        ),
        "",
        "| suite | prompts | vs peer plain | vs own plain | vs peer PLD | own plain vs peer plain | faster than PLD on | accepted/step | identical | unexplained divergences |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for suite, s in data.get("summary", {}).items():
        out.append(
            f"| {suite} | {s['prompts']} | {_f(s['vs_peer_plain'])}x | {_f(s['vs_own_plain'])}x | {_f(s['vs_peer_pld'])}x | "
            f"{_f(s['own_plain_vs_peer_plain'])}x | {s['faster_than_pld_on']}/{s['prompts']} | "
            f"{_f(s['median_accepted_per_step'])} | {_f(s['identical_rate'])} | {s['unexplained_divergences']} |"
        )
    out += ["", "Targets: copy ≥ 3.0x, grounded ≥ 1.5x, open ≥ 0.95x vs peer plain; faster than PLD on every prompt; own plain ≥ 1.15x peer plain.", ""]
    rows = data.get("prompts", [])
    if rows:
        contenders = [c for c in ("peer_plain", "peer_pld", "own_plain", "own_spec") if c in rows[0]]
        out += ["| prompt | suite | " + " | ".join(f"{c} tok/s" for c in contenders) + " | accepted/step | identical |",
                "|---|---|" + "---|" * len(contenders) + "---|---|"]
        for r in rows:
            cells = " | ".join(_f(r[c]["tok_s"], 1) for c in contenders)
            out.append(f"| {r['name']} | {r['suite']} | {cells} | {_f(r['own_spec'].get('accepted_per_step'))} | {'yes' if r['identical'] else 'no'} |")
        out.append("")
        plots += _speculative_plots(rows, results)
        out += [f"![{p}](benchmarks/results/{p})" for p in plots if p.startswith("speculative")] + [""]
    return out


def _speculative_plots(rows: list[dict[str, Any]], results: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['suite']}:{r['name']}" for r in rows]
    colours = {"copy": "tab:blue", "grounded": "tab:green", "open": "tab:orange"}
    c = [colours.get(r["suite"], "tab:gray") for r in rows]
    made = []
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(range(len(rows)), [r["own_spec"]["tok_s"] / r["peer_plain"]["tok_s"] for r in rows], color=c)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)), names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("speedup vs llama-cpp-python plain")
    ax.set_title("Self-speculative decoding: speedup per prompt (blue copy, green grounded, orange open)")
    fig.tight_layout()
    fig.savefig(results / "speculative_speedup.png", dpi=110)
    plt.close(fig)
    made.append("speculative_speedup.png")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(range(len(rows)), [r["own_spec"].get("accepted_per_step") or 0 for r in rows], color=c)
    ax.set_xticks(range(len(rows)), names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("tokens accepted per verification step")
    ax.set_title("Accepted tokens per step")
    fig.tight_layout()
    fig.savefig(results / "speculative_accepted.png", dpi=110)
    plt.close(fig)
    made.append("speculative_accepted.png")
    return made


def _table(name: str, title: str, data: dict[str, Any], keys: list[tuple[str, str]]) -> list[str]:
    out = [f"## {title}", "", _provenance(name, data), "", "| figure | value |", "|---|---|"]
    for key, label in keys:
        if key in data:
            out.append(f"| {label} | {_f(data[key])} |")
    return out + [""]


def _hist(values: list[float], path: Path, xlabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=40)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _e2e(data: dict[str, Any], results: Path) -> list[str]:
    ov, ld = data.get("overhead", {}), data.get("load", {})
    out = ["## End to end", "", _provenance("e2e", data), ""]
    out += [
        (
            f"**gRPC overhead** ({ov.get('max_tokens')}-token greedy generation, {ov.get('rounds')} interleaved rounds): "
            f"in-process {_f(ov.get('in_process_s_median'), 3)} s, through the daemon over the unix socket "
            f"{_f(ov.get('daemon_s_median'), 3)} s; median ratio **{_f(ov.get('ratio_median'), 3)}** (target ≤ 1.05)."
        ),
        "",
        (
            f"**Load**: {ld.get('clients')} concurrent streaming clients for {_f(ld.get('seconds'), 0)} s "
            f"(max_tokens {ld.get('max_tokens')}): {ld.get('completed')} completed; errors by code {ld.get('errors_by_code')}; "
            f"TTFT p50/p99 {_f(ld.get('ttft_p50_ms'), 0)}/{_f(ld.get('ttft_p99_ms'), 0)} ms; queue wait p50/p99 "
            f"{_f(ld.get('queue_wait_p50_ms'), 0)}/{_f(ld.get('queue_wait_p99_ms'), 0)} ms; daemon RSS "
            f"{_f(ld.get('rss_start_mb'), 0)} → peak {_f(ld.get('rss_peak_mb'), 0)} MB."
        ),
        "",
    ]
    if ld.get("ttft_samples_ms"):
        _hist(ld["ttft_samples_ms"], results / "e2e_ttft_load.png", "TTFT (ms)", f"TTFT under load ({ld.get('clients')} clients)")
        out += ["![TTFT under load](benchmarks/results/e2e_ttft_load.png)", ""]
    return out


def _context_store(results: Path) -> list[str]:
    """100k (``make bench``) and 1M items (run by hand) side by side."""
    runs = [(n, d) for n in ("context_store", "context_store_1m") if (d := _load(results, n)) is not None]
    if not runs:
        return []
    out = ["## Personal-context store", ""]
    out += [f"{_provenance(n, d)}; SQLite {d.get('machine', {}).get('sqlite')}" for n, d in runs]
    rows = [
        ("import_items_per_s", "import, items/s wall clock (target ≥ 5,000)"),
        ("import_items_per_cpu_s", "import, items per CPU second"),
        ("import_jsonl_items_per_s", "import through the JSON-lines importer (20,000 items), items/s"),
        ("open_ms", "open the existing store, ms"),
        ("index_segments_imported", "search index segments after the import"),
        ("tidy_index_s", "merging them (tidy_index), s"),
        ("index_segments", "search index segments when searched"),
        ("search_p50_ms", "search p50, ms (target ≤ 5)"), ("search_p99_ms", "search p99, ms (target ≤ 20)"),
        ("search_cpu_p50_ms", "search p50, CPU ms"), ("search_cpu_p99_ms", "search p99, CPU ms"),
        ("retrieve_p50_ms", "context for a prompt p50, ms"), ("retrieve_p99_ms", "context for a prompt p99, ms"),
        ("retrieve_builtin_bm25_p50_ms", "... ranked with FTS5's bm25() instead of bm25_df, p50, ms"),
        ("retrieve_builtin_bm25_p99_ms", "... ranked with FTS5's bm25() instead of bm25_df, p99, ms"),
        ("retrieve_same_items", "prompts given the same items by both rankers"),
        ("forget_one_p50_ms", "forget one item p50 (in-place index delete + checkpoint), ms"),
        ("forget_one_max_ms", "forget one item, slowest of 20, ms"),
        ("forget_items", "items forgotten by source"), ("forget_s", "forget by source (delete + index merge + checkpoint), s"),
        ("db_bytes", "database size, bytes"), ("db_bytes_after_forget", "database size after the forget, bytes"),
        ("rss_anon_mib_before", "process private memory before opening, MiB"),
        ("rss_anon_mib_searching", "process private memory while searching, MiB"),
        ("rss_file_mib_searching", "mapped database pages resident while searching, MiB"),
        ("load_average_before", "load average before the run (1/5/15 min)"),
    ]
    out += ["", "| figure | " + " | ".join(f"{d['items']:,} items" for _, d in runs) + " |",
            "|---|" + "---|" * len(runs)]
    for key, label in rows:
        if any(key in d for _, d in runs):
            out.append(f"| {label} | " + " | ".join(_f(d.get(key)) for _, d in runs) + " |")
    return out + [""]


def _json_extraction(data: dict[str, Any]) -> list[str]:
    s = data.get("summary", {})
    valid = ", ".join(f"{c.replace('_', ' ')} {n}/{s.get('prompts')}" for c, n in s.get("valid", {}).items())
    out = ["## Structured output: speculative decoding under a JSON-schema grammar", "",
           _provenance("json_extraction", data), ""]
    out += [
        (
            f"Six grounded extraction prompts (a personal item, then its schema; values copied from the item), "
            f"greedy, at most {data.get('max_tokens')} tokens, {data.get('threads')} threads, every contender from an "
            f"empty cache, interleaved, median of {data.get('repeats')} repeats per prompt. `own_spec` = our engine "
            "with drafting (no past answers as drafts); `own_plain` = our loop without drafting; `peer` = "
            "llama-cpp-python `create_completion` with `LlamaGrammar.from_json_schema` of the same schema. "
            "tok/s after the first token; overall ratios are medians over prompts of per-prompt ratios."
        ),
        "",
        (
            f"Overall: own spec / peer **{_f(s.get('spec_vs_peer'))}x**, own spec / own plain "
            f"**{_f(s.get('spec_vs_plain'))}x**, own plain / peer {_f(s.get('plain_vs_peer'))}x; acceptance "
            f"{_f(s.get('acceptance'))}, median accepted per verification step {_f(s.get('median_accepted_per_step'))}; "
            f"answers valid (json.loads + jsonschema, every repeat): {valid}; speculative text = plain text on "
            f"{s.get('identical')}/{s.get('prompts')} prompts ({s.get('unexplained_divergences')} divergences not "
            "explained by a near-tie)."
        ),
        "",
        "| prompt | prompt tokens | answer tokens | own spec tok/s | own plain tok/s | peer tok/s | spec/peer | spec/plain | acceptance | accepted/step | valid (spec/plain/peer) | spec = plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data.get("prompts", []):
        ok = "/".join("yes" if r[c]["valid"] else "no" for c in ("own_spec", "own_plain", "peer"))
        div = r.get("divergence")
        same = "yes" if r["identical"] else "no" + (
            f" (near-tie at token {div['position']}: margin {_f(div['margin'], 3)} ≤ {_f(div['max_abs_logit_diff'], 3)})"
            if div and div["explained"] else (" (unexplained)" if div else ""))
        out.append(
            f"| {r['name']} | {r['prompt_tokens']} | {r['own_spec']['tokens']} | {_f(r['own_spec']['tok_s'], 1)} | "
            f"{_f(r['own_plain']['tok_s'], 1)} | {_f(r['peer']['tok_s'], 1)} | {_f(r['spec_vs_peer'])}x | "
            f"{_f(r['spec_vs_plain'])}x | {_f(r['acceptance'])} | {_f(r['accepted_per_step'])} | {ok} | {same} |"
        )
    return out + [""]


def _http_overhead(data: dict[str, Any]) -> list[str]:
    s = data.get("summary", {})
    out = ["## OpenAI HTTP front door vs gRPC", "", _provenance("http_overhead", data), ""]
    out += [
        (
            f"The same greedy {data.get('max_tokens')}-token answer (`{data.get('prompt', '')!r}`, local only, no context) "
            f"from one daemon ({'speculative' if data.get('speculative', True) else 'plain'} decoding), {data.get('rounds')} rounds after a warm-up, the order rotating per round: streaming gRPC "
            "`Generate` over the unix socket, streaming `POST /v1/completions` (SSE) and a non-streaming one over a "
            "kept-alive loopback connection. Client-side wall times, medians; the daemon's own `total_ms` beside them."
        ),
        "",
        "| request | total, ms | TTFT, ms | daemon total, ms | client − daemon, ms | finish |",
        "|---|---|---|---|---|---|",
    ]
    for way, label in (("grpc", "gRPC stream"), ("http_stream", "HTTP stream"), ("http_whole", "HTTP non-stream")):
        w = s.get(way)
        if w:
            out.append(
                f"| {label} | {_f(w['total_ms'], 1)} | {_f(w['ttft_ms'], 1)} | {_f(w['server_total_ms'], 1)} | "
                f"{_f(w['client_minus_server_ms'], 1)} | {', '.join(w['finish_reasons'])} |"
            )
    out += [
        "",
        (
            f"HTTP / gRPC, median of per-round ratios: stream total **{_f(data.get('http_stream_over_grpc_total'), 3)}**, "
            f"non-stream total **{_f(data.get('http_whole_over_grpc_total'), 3)}** (target ≤ 1.05), stream TTFT "
            f"{_f(data.get('http_stream_over_grpc_ttft'), 3)}. Transport time beyond gRPC's: stream "
            f"{_f(data.get('http_stream_extra_ms'), 1)} ms, non-stream {_f(data.get('http_whole_extra_ms'), 1)} ms. "
            f"Every answer ran the full length: {'yes' if data.get('all_full_length') else 'no'}; the three texts were equal "
            f"in {data.get('rounds_with_identical_texts')}/{data.get('rounds')} rounds ({data.get('distinct_texts')} distinct "
            "texts over all requests)."
        ),
        "",
    ]
    return out


def _kv_cache(data: dict[str, Any]) -> list[str]:
    out = ["## KV-cache types", "", _provenance("kv_cache", data), ""]
    out += [
        (
            f"The plain decode loop on the real model, {data.get('threads')} threads: each benchmark prompt after "
            f"background text up to the fill, prefill in batches of 512, then {data.get('decode_tokens')} greedy steps. "
            "Agreement: greedy tokens identical to f16/f16 without flash attention, keeping every position (`swa_full`); "
            "a divergence is shown as position@margin, the f16 run's top-1 minus top-2 logit there (a small margin is "
            "a near-tie, not a broken cache). `f16-swa`: the sliding-window layers keep only their window, which "
            "rejected drafts cannot be removed from."
        ),
        "",
        "| fill | config | K | V | flash attn | KV MiB | prefill tok/s | decode tok/s | identical | divergences |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data.get("results", []):
        div = " ".join(f"{d['first_divergence']}@{_f(d['f16_margin'], 2)}" for d in r["divergences"] if d["first_divergence"] is not None)
        out.append(
            f"| {r['fill']} | {r['config']} | {r['kv_type_k']} | {r['kv_type_v']} | {r['flash_attn']} | "
            f"{_f(r['kv_cache_mib'], 1)} | {_f(r['prefill_tok_s'], 0)} | {_f(r['decode_tok_s'], 1)} | "
            f"{r['identical_cases']}/{r['cases']} | {div or '–'} |"
        )
    return out + [""]


def _energy(data: dict[str, Any]) -> list[str]:
    src = data.get("energy_source")
    out = ["## Tokens per joule: plain vs speculative", "", _provenance("energy", data), ""]
    out += [
        (
            f"Energy from the engine's meter: source `{src}`"
            + (f" (CPU time x {data.get('watts_per_core')} W per core: an estimate; the ratio is then a ratio of CPU time)"
               if src != "rapl" else " (RAPL package counters)")
            + f". Each benchmark prompt greedy, plain and speculative alternating, median of {data.get('repeats')} repeats, "
            "cache reset before every run, no remembered answers."
        ),
        "",
        "| suite | tokens/J spec / plain | tok/s spec / plain |",
        "|---|---|---|",
    ]
    for suite, v in data.get("summary", {}).items():
        out.append(f"| {suite} | {_f(v['energy_ratio'])}x | {_f(v['speed_ratio'])}x |")
    out += ["", "| prompt | suite | plain tokens/J | spec tokens/J | plain tok/s | spec tok/s |", "|---|---|---|---|---|---|"]
    for r in data.get("prompts", []):
        out.append(
            f"| {r['name']} | {r['suite']} | {_f(r['plain_tokens_per_j'])} | {_f(r['spec_tokens_per_j'])} | "
            f"{_f(r['plain_tokens_per_s'], 1)} | {_f(r['spec_tokens_per_s'], 1)} |"
        )
    return out + [""]


def _draft_policy(data: dict[str, Any]) -> list[str]:
    variants = data.get("variants", [])
    out = ["## Draft policy: probing and carrying (replayed)", "", _provenance("draft_policy", data), ""]
    out += [
        (
            "Every benchmark prompt's real greedy answer replayed under the engine's real drafters with one policy "
            "shared across requests (reset between them, as in the daemon), in the file's order and "
            f"{data.get('orders', 1) - 1} shuffled orders, each twice (the second pass counted). Predicted speed vs "
            "plain decoding from the cost curve measured here (x plain step of "
            f"{_f(data.get('plain_step_ms'))} ms), median over each suite's prompts; worst prompt in brackets. "
            "`default` = the shipped policy (probe every 16 skipped opportunities, carry 4 trials)."
        ),
        "",
        "| suite | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for suite, e in data.get("summary", {}).items():
        out.append(f"| {suite} | " + " | ".join(f"{_f(e[v], 3)}x ({_f(e[f'{v}_min'], 3)})" for v in variants) + " |")
    return out + [""]


def _tree_drafts(data: dict[str, Any]) -> list[str]:
    out = ["## Tree drafts vs linear drafts (replayed)", "", _provenance("tree_drafts", data), ""]
    branches = data.get("branches", [])
    out += [
        (
            "Every benchmark prompt's real greedy answer replayed under the engine's real drafters and draft-length "
            "policy, once linear and once as a tree (the linear draft plus other continuations of the same tail, "
            "merged into a trie; a step costs 1 + trie nodes rows on the cost curve measured here and accepts the "
            "longest branch the answer agrees with). Speed is predicted from the measured curve, ignoring the tree's "
            "own bookkeeping (optimistic for the tree). Medians over each suite's prompts. Step cost by drafted "
            f"tokens (x plain step of {_f(data.get('plain_step_ms'))} ms): "
            + " ".join(f"{k}:{v}" for k, v in data.get("cost_curve", {}).items()) + "."
        ),
        "",
        "| suite | linear tok/step | linear speed vs plain | "
        + " | ".join(f"tree{b} tok/step | tree{b} / linear | steps tree{b} won" for b in branches) + " |",
        "|---|---|---|" + "---|---|---|" * len(branches),
    ]
    for suite, e in data.get("summary", {}).items():
        out.append(
            f"| {suite} | {_f(e['linear_tokens_per_step'])} | {_f(e['linear_speed_vs_plain'])}x | "
            + " | ".join(
                f"{_f(e[f'tree{b}_tokens_per_step'])} | {_f(e[f'tree{b}_over_linear'], 3)}x | {e[f'tree{b}_steps_won']}"
                for b in branches
            )
            + " |"
        )
    be = data.get("break_even_row_cost")
    out += [
        "",
        (
            f"With {data.get('break_even_branches')} branches the tree beats linear drafting once an extra row costs at "
            f"most {be} of a plain step (a linear cost curve 1 + c·k)."
            if be is not None
            else f"With {data.get('break_even_branches')} branches the tree does not beat linear drafting even at "
            "0.01 of a plain step per extra row."
        ),
        "",
    ]
    return out


def _runtime(data: dict[str, Any]) -> list[str]:
    host, build = data.get("host", {}), data.get("build", {})
    out = ["## Inference runtime", "", _provenance("runtime", data), ""]
    out += [
        (
            f"Host: {host.get('cpu')} ({host.get('cores')} cores; {', '.join(host.get('features', []))}; "
            f"AMX granted: {host.get('amx_granted')}). Build: llama-cpp-python {build.get('llama_cpp_python')} "
            f"`{build.get('variant')}` ({build.get('compiler')}; patches: {', '.join(build.get('patches', [])) or 'none'}). "
            f"Weights by buffer type (MiB): {data.get('buffer_types_mib')}."
        ),
        "",
    ]
    curve = data.get("cost_curve", {})
    if curve:
        rel = curve.get("relative", {})
        out += [
            (
                f"Verification cost curve: one `llama_decode` of 1 + k tokens with logits for every row, relative to a "
                f"plain step ({_f(curve.get('plain_ms'), 1)} ms here); the decoder drafts only as far as this curve "
                "and the measured acceptance make it pay."
            ),
            "",
            "| k | " + " | ".join(rel) + " |",
            "|---|" + "---|" * len(rel),
            "| cost / plain step | " + " | ".join(_f(v) for v in rel.values()) + " |",
            "",
        ]
    if data.get("steps"):
        out += [
            (
                "One step under each thread count and OpenMP wait policy, quiet and with a competing busy process "
                "per core (ms, median):"
            ),
            "",
            "| threads | wait policy | plain, quiet | verify 9, quiet | plain, contended | verify 9, contended |",
            "|---|---|---|---|---|---|",
        ]
        for st in data["steps"]:
            q, c = st["quiet"], st["contended"]
            out.append(
                f"| {st['threads']} | {st['wait']} | {_f(q['plain_ms'], 1)} | {_f(q['verify9_ms'], 1)} | "
                f"{_f(c['plain_ms'], 1)} | {_f(c['verify9_ms'], 1)} |"
            )
        out.append("")
    if data.get("engine_128_tokens"):
        out += ["The engine, 128 greedy tokens (tok/s, median of 3; the thread tuner adapts when not fixed):", "",
                "| case | tok/s | threads at the end | switches |", "|---|---|---|---|"]
        for case, r in data["engine_128_tokens"].items():
            out.append(f"| {case.replace('_', ' ')} | {_f(r['tokens_per_s'], 1)} | {r['threads_end']} | {r['switches']} |")
        out.append("")
    return out


def _kernels(data: dict[str, Any]) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kernels  # sibling benchmark: its table is the report

    return ["## Matrix kernels by rows", "", _provenance("kernels", data), "",
            ("Each of the model's weight matrices in the buffer type model loading picks on this host, one "
             "`mul_mat` of 1 row (a plain step) and of 2, 5, 9 and 17 rows (verify steps of k = 1, 4, 8, 16), "
             "2 threads, model-free; the 1-row column is ms per step for all matrices of that shape, the others "
             "are relative to one row."), "", kernels.table(data), ""]


def _concurrency(data: dict[str, Any]) -> list[str]:
    import concurrency  # sibling benchmark: its table is the report

    if "modes" not in data:
        return []
    first = next(iter(data["modes"].values()))
    intro = (f"One engine with `parallel = {max(r['streams'] for r in first['rows'])}`; N greedy requests of "
             f"{data.get('tokens')} tokens started together (open prompts), against the same N requests one at a "
             "time on an engine without concurrency (calibrated the same way); \"x alone\" is the median over "
             "requests of its tok/s together / alone; every text compared with the same request alone.")
    return ["## Several requests at once", "", _provenance("concurrency", data), "", intro, "",
            *concurrency.table(data), "", "![Concurrency](benchmarks/results/concurrency.png)", ""]


def _retrieval(data: dict[str, Any]) -> list[str]:
    import retrieval  # sibling benchmark: its table is the report

    return ["## Retrieval: BM25, vectors, hybrid", "", _provenance("retrieval", data), "",
            ("Recall@5 on the labelled set `benchmarks/data/retrieval_set.json` (243 items of one person's "
             "mail, messages, events, notes and contacts; 80 queries, 40 reusing their answer's words and 40 "
             "paraphrasing them), ranked by BM25 alone, by the query's vector alone and by the daemon's hybrid "
             "ranking; items pulled into the prompt for 10 general questions; the cost of embedding an item "
             "and a query; and search at 100,000 items with a vector each (query embedding excluded)."), "",
            retrieval.table(data["results"]), ""]


def write(results: Path, target: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        (
            "Regenerated by `make bench` (`benchmarks/run_all.py` → `benchmarks/report.py`) from the JSON in "
            "`benchmarks/results/`. Speed is always compared against a peer measured in the same run, since "
            "these machines are noisy; each section names its command, machine and date."
        ),
        "",
    ]
    if (spec := _load(results, "speculative")) is not None:
        lines += _speculative(spec, results, [])
    if (runtime := _load(results, "runtime")) is not None:
        lines += _runtime(runtime)
    if (kern := _load(results, "kernels")) is not None:
        lines += _kernels(kern)
    if (conc := _load(results, "concurrency")) is not None:
        lines += _concurrency(conc)
    lines += _context_store(results)
    if (ret := _load(results, "retrieval")) is not None:
        lines += _retrieval(ret)
    if (up := _load(results, "startup")) is not None:
        import startup  # sibling benchmark: its table is the report

        lines += ["## Start-up", "", _provenance("startup", up), "",
                  ("`edge-agent serve` with a fresh data directory and the default config (self-check: the pass "
                   "`make install` recorded for this runtime, model, CPU and thread count; model "
                   "load, bounded calibration, warm-up) to its ready line, quiet and with one busy process per "
                   "core, alternated; `doctor` once under that load."), "", startup.table(up), ""]
    if (turns := _load(results, "chat_turns")) is not None:
        lines += _table("chat_turns", "Time to first token by conversation turn", turns, [
            ("history_tokens_turn10", "prompt tokens at turn 10"), ("repeats", "conversations (medians)"),
            ("ttft_turn1_ms", "TTFT turn 1, ms"), ("ttft_turn10_ms", "TTFT turn 10, earlier turns' KV kept, ms"),
            ("ttft_turn10_cold_ms", "TTFT turn 10, cold cache, ms"),
            ("turn10_over_turn1", "turn 10 / turn 1"), ("cold_over_kept", "cold / kept at turn 10"),
        ])
    if (jx := _load(results, "json_extraction")) is not None:
        lines += _json_extraction(jx)
    if (rt := _load(results, "routing")) is not None:
        lines += _table("routing", "Routing decisions and PII detection", rt, [
            ("rules", "rules in the policy"), ("contacts", "contacts"), ("prompt_bytes", "prompt bytes"),
            ("decide_pii_spans", "PII spans in the prompt"),
            ("decide_p50_us", "decide p50, µs"), ("decide_p99_us", "decide p99, µs (target ≤ 1,000)"),
            ("decide_dense_pii_spans", "PII spans in the dense stress prompt"),
            ("decide_dense_p50_us", "dense prompt: decide p50, µs"), ("decide_dense_p99_us", "dense prompt: decide p99, µs"),
            ("precision", "PII precision (exact kind and span)"), ("recall", "PII recall (exact kind and span)"),
            ("precision_test_split", "PII precision, held-out split"), ("recall_test_split", "PII recall, held-out split"),
            ("sample_texts", "labelled texts"), ("sample_spans", "labelled PII spans"),
            ("scheduler", "scheduler of the timing run"), ("load_average_1m", "load average (1 min)"),
        ])
        if rt.get("per_kind"):
            held = rt.get("per_kind_test_split", {})
            lines += [
                "| PII kind | precision | recall | labelled spans | held-out precision | held-out recall | held-out spans |",
                "|---|---|---|---|---|---|---|",
            ]
            for k, v in rt["per_kind"].items():
                h = held.get(k, {})
                lines.append(
                    f"| {k} | {_f(v['precision'])} | {_f(v['recall'])} | {v['gold']} | "
                    f"{_f(h.get('precision'))} | {_f(h.get('recall'))} | {h.get('gold', 0)} |"
                )
            lines.append("")
        if rt.get("decide_samples_us"):
            _hist(rt["decide_samples_us"], results / "routing_latency.png", "decide() latency (µs)", "Routing decision latency")
            lines += ["![Routing latency](benchmarks/results/routing_latency.png)", ""]
    if (e2e := _load(results, "e2e")) is not None:
        lines += _e2e(e2e, results)
    if (http := _load(results, "http_overhead")) is not None:
        lines += _http_overhead(http)
    if (kv := _load(results, "kv_cache")) is not None:
        lines += _kv_cache(kv)
    if (energy := _load(results, "energy")) is not None:
        lines += _energy(energy)
    if (tree := _load(results, "tree_drafts")) is not None:
        lines += _tree_drafts(tree)
    if (policy := _load(results, "draft_policy")) is not None:
        lines += _draft_policy(policy)
    notes = results.parent / "notes.md"  # hand-written analysis kept beside the generator
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    target.write_text("\n".join(lines).rstrip() + "\n")
