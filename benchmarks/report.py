"""Regenerate ``BENCHMARKS.md`` and the PNG plots from ``benchmarks/results/*.json``.

Every figure states the command, the machine and the date of the run that made it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

COMMANDS = {
    "speculative": "python benchmarks/speculative.py --json benchmarks/results/speculative.json",
    "context_store": "python benchmarks/context_store.py --json benchmarks/results/context_store.json",
    "routing": "chrt -f 10 python benchmarks/routing.py --iterations 5000 --json benchmarks/results/routing.json",
    "e2e": "python benchmarks/e2e.py --json benchmarks/results/e2e.json",
    "runtime": "python benchmarks/runtime.py --json benchmarks/results/runtime.json",
    "chat_turns": "python benchmarks/chat_turns.py --json benchmarks/results/chat_turns.json",
    "json_extraction": "python benchmarks/json_extraction.py --json benchmarks/results/json_extraction.json",
    "http_overhead": "python benchmarks/http_overhead.py --json benchmarks/results/http_overhead.json",
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
    return (
        f"Command: `{COMMANDS[name]}` (or `make bench`) · run {data['_date']} · "
        f"{os.cpu_count()} cores, {platform.machine()}, model `gemma-3-270m-q4_k_m.gguf`"
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
    if (ctx := _load(results, "context_store")) is not None:
        lines += _table("context_store", "Personal-context store", ctx, [
            ("items", "items"), ("searches", "searches"),
            ("import_items_per_s", "import, items/s wall clock (target ≥ 5,000)"),
            ("import_items_per_cpu_s", "import, items per CPU second"),
            ("import_jsonl_items_per_s", "import through the JSON-lines importer, items/s"),
            ("search_p50_ms", "search p50, ms (target ≤ 5)"), ("search_p99_ms", "search p99, ms (target ≤ 20)"),
            ("search_cpu_p50_ms", "search p50, CPU ms"), ("search_cpu_p99_ms", "search p99, CPU ms"),
            ("db_bytes", "database size, bytes"), ("load_average_before", "load average before the run (1/5/15 min)"),
        ])
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
    notes = results.parent / "notes.md"  # hand-written analysis kept beside the generator
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    target.write_text("\n".join(lines).rstrip() + "\n")
