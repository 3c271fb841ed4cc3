"""`edge-agent doctor`: the host, the runtime build, its self-check and its costs.

Runs the self-check in a child first, and loads the model in this process only when
the child passed, so a broken runtime is reported rather than crashing the command.
Then it measures a verification step for 1..16 drafted tokens relative to a plain step
and says what the decoder will do with that curve.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge_agent.runtime import report, selfcheck

BUDGET_S = 30.0  # the cost curve's timing, at most (a busy host gets fewer repeats)


def collect(model_path: Path, n_threads: int, repeats: int = 5) -> dict[str, Any]:
    """Everything `doctor` shows, as one JSON-able dict."""
    out: dict[str, Any] = {"host": report.host(), "build": report.build(), "model": str(model_path),
                           "store": store_ranking()}
    check = selfcheck.run(model_path, n_threads=n_threads)
    out["selfcheck"] = {"ok": check.ok, "cause": check.cause, "summary": check.summary,
                        "identical": check.identical}
    if not check.ok:
        out["verdict"] = f"runtime unusable: {check.cause}; {selfcheck.FIX}"
        return out
    from edge_agent.engine import costs
    from edge_agent.engine.llama_model import LlamaModel

    model = LlamaModel(model_path, n_ctx=512, n_threads=n_threads)
    try:
        out["system_info"] = report.system_info()
        out["buffer_types_mib"] = model.buffer_types
        prefix = model.tokenize(costs.CALIBRATION_TEXT, add_bos=True)
        points, plain_ms = costs.measure(model, ks=range(17), repeats=repeats, prefix=prefix, budget_s=BUDGET_S)
        _, again_ms = costs.measure(model, ks=(0,), repeats=3, prefix=prefix)
        note = costs.implausible(points, plain_ms, again_ms, 17)
        threads: dict[int, float] = {}
        for n in sorted({n_threads, 1}):
            model.set_threads(n)
            _, threads[n] = costs.measure(model, ks=(0,), repeats=repeats, prefix=prefix)
        model.set_threads(n_threads)
    finally:
        model.close()
    curve = costs.CostCurve.from_points(points).as_list()
    h = out["host"]
    out["warnings"] = report.warnings(cores=h["cores"], n_threads=n_threads, load_avg=h["load_avg"],
                                      plain_ms_by_threads=threads, calibration_note=note)
    out["step"] = {
        "plain_ms": round(plain_ms, 2),
        "relative_cost": {k: round(v, 3) for k, v in points.items()},
        "per_token": round((curve[16] - 1.0) / 16, 3),
        "plain_ms_by_threads": {n: round(v, 2) for n, v in threads.items()},
    }
    out["plan"] = report.draft_plan(curve, 16)
    n = len(out["warnings"])
    out["verdict"] = "ok" if not n else f"usable, {n} warning(s) above"
    return out


def store_ranking() -> dict[str, Any]:
    """The context store's SQLite and how it ranks (see ``context/ftsrank.py``)."""
    from common.sqlite import driver
    from edge_agent.context import ftsrank

    native = ftsrank.LIBRARY is not None
    return {"sqlite": driver.sqlite_version, "ranking": "bm25_df" if native else "bm25",
            "library": str(ftsrank.LIBRARY) if native else None, "expiry": expiry_note()}


def expiry_note() -> str:
    """When an expired item leaves ``context.db`` (``context/store.py``)."""
    from edge_agent.context.store import PURGE_INTERVAL_S

    return (f"an expired item is hidden from search at once and deleted by writes, every {PURGE_INTERVAL_S / 60:g} min "
            "and at each start; one that expired just before a kill -9 (or a power loss) stays in context.db "
            "until the daemon next starts")


def render(d: dict[str, Any]) -> str:
    h, b = d["host"], d["build"]
    st = d["store"]
    lines = [
        f"host:      {h['cpu']} ({h['cores']} cores, {h['machine']}"
        + (f", load average {h['load_avg']:.1f}" if h.get("load_avg") is not None else "") + ")",
        f"features:  {' '.join(h['features']) or 'none detected'}",
        f"store:     SQLite {st['sqlite']}, ranking " + (
            "bm25_df (cached word counts)" if st["ranking"] == "bm25_df"
            else "bm25() (the bm25_df extension is not built: slower at scale, same results; pip install -e . rebuilds it)"),
    ]
    if st.get("expiry"):
        lines.append(f"           expiry: {st['expiry']}")
    if h["amx_granted"] is not None:
        lines.append(f"AMX:       {'granted by the kernel' if h['amx_granted'] else 'NOT granted'}")
    lines += [
        f"runtime:   llama-cpp-python {b['llama_cpp_python']}, build {b['variant']} {b['key']}",
        f"           patches: {', '.join(b['patches']) or 'none'}; compiler: {b['compiler'] or '?'}",
        f"           install check: {b['install_check']}",
    ]
    for f in b["fallbacks"]:
        lines.append(f"           fell back from {f['variant']}: {f['cause']}")
    sc = d["selfcheck"]
    lines.append(f"selfcheck: {'ok, ' + sc['summary'] if sc['ok'] else 'FAILED: ' + sc['cause']}")
    if sc["ok"]:
        lines.append("           speculative decoding: " + (
            "exact (verify batches give the one-token logits)" if sc["identical"]
            else "off (batched logits differ from one-token logits)"))
    if "step" in d:
        st = d["step"]
        lines.append(f"llama.cpp: {d['system_info']}")
        bufs = ", ".join(f"{k} {v:.0f} MiB" for k, v in d["buffer_types_mib"].items())
        lines.append(f"weights:   {bufs or 'unknown'}")
        lines.append(f"step:      plain {st['plain_ms']:.1f} ms; by threads "
                     + ", ".join(f"{n}: {v:.1f} ms" for n, v in st["plain_ms_by_threads"].items()))
        rel = st["relative_cost"]
        lines.append("verify k:  " + " ".join(f"{k:>5}" for k in range(1, 17)))
        lines.append("cost x:    " + " ".join(f"{rel[k]:5.2f}" if k in rel else "    -" for k in range(1, 17)))
        plan = d["plan"]
        lens = ", ".join(f"p={p}: {k}" for p, k in plan["draft_len_by_acceptance"].items())
        lines.append(f"drafting:  length by acceptance {lens}")
        lines.append(f"           plain steps below acceptance {plan['gate_below_acceptance']:.2f}")
    for w in d.get("warnings", []):
        lines.append(f"WARNING:   {w}")
    lines.append(f"verdict:   {d['verdict']}")
    return "\n".join(lines)


def run(args: argparse.Namespace, model_path: Path, n_threads: int) -> int:
    d = collect(model_path, n_threads, repeats=args.repeats)
    print(json.dumps(d, indent=2) if args.json else render(d))
    return 1 if d["verdict"].startswith("runtime unusable") else 0


def register(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "doctor", help="check the runtime: CPU, build, self-check, step costs, drafting plan"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per draft length")
    return p
