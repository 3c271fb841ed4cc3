"""Benchmark: the OpenAI-compatible HTTP front door's overhead against gRPC, on the same
daemon, for a greedy 128-token answer.

The real daemon runs as a subprocess (temporary data dir, no cloud, keep_alive -1, HTTP
on loopback TCP). Each round sends the same request three ways, in an order that rotates
from round to round: a streaming gRPC ``Generate`` over the unix socket, a streaming
``POST /v1/completions`` (``stream: true``, server-sent events) and a non-streaming one,
over one kept-alive httpx connection; routing local only, no personal context. A first
round warms everything up and is dropped.

Client-side wall time per request: start to last byte (total) and start to the first
non-empty piece of text (TTFT; the non-streaming request has none). The daemon's own
``total_ms`` for each request (gRPC ``Usage``, the ``edgecloud`` field over HTTP) is kept
too, so the transport's share is the client time minus the daemon's. Reported: medians,
and the medians of per-round HTTP/gRPC ratios (target: HTTP total <= 1.05 x gRPC). The
answer must run the full 128 tokens (finish reason "length") and be the same text on
all three. ``--plain`` runs the daemon without speculative decoding.

    python benchmarks/http_overhead.py --json benchmarks/results/http_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import httpx
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

PROMPT = "Write a long story about a lighthouse keeper.\nOnce upon a time"
WAYS = ("grpc", "http_stream", "http_whole")
EXTENSION = {"preference": "local_only", "use_context": False}


def start_daemon(data: Path, plain: bool, timeout: float = 300) -> tuple[subprocess.Popen[str], str, str]:
    """The daemon in its own process group; (process, gRPC target, HTTP base URL)."""
    env = dict(os.environ)
    env.pop("EDGE_AGENT_CONFIG", None)
    if plain:
        (data / "edge-agent.toml").write_text("[model]\nspeculative = false\n")
        env["EDGE_AGENT_CONFIG"] = str(data / "edge-agent.toml")
    env.update(
        EDGE_AGENT_DATA_DIR=str(data), EDGE_AGENT_SOCKET=str(data / "a.sock"), EDGE_AGENT_CLOUD="",
        EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_TOKEN="", EDGE_AGENT_KEEP_ALIVE="-1",  # TCP: the token file
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli.main", "serve"], env=env, stdout=subprocess.PIPE,
        stderr=(data / "agent.log").open("w"), text=True, start_new_session=True,
    )
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    line = box[0].strip() if box else ""
    m = re.search(r"openai on (http://\S+)", line)
    if "ready" not in line or not m:
        stop_daemon(proc)
        raise SystemExit(f"daemon did not start ({line!r}):\n{(data / 'agent.log').read_text(errors='replace')}")
    target = line.split(" on ", 1)[1].split(";")[0].split(" and ")[0]
    return proc, target, m.group(1)


def stop_daemon(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the daemon's process group, SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass


def via_grpc(stub: pb_grpc.EdgeAgentStub, max_tokens: int) -> dict[str, Any]:
    req = pb.GenerateRequest(
        prompt=PROMPT,
        params=common_pb2.GenerationParams(max_tokens=max_tokens, temperature=0.0),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
        use_context=False,
    )
    parts: list[str] = []
    t_first = 0.0
    done = None
    t0 = time.perf_counter()
    for msg in stub.Generate(req, timeout=300):
        if msg.HasField("done"):
            done = msg.done
        elif msg.delta:
            if not t_first:
                t_first = time.perf_counter()
            parts.append(msg.delta)
    t_end = time.perf_counter()
    assert done is not None
    return {
        "text": "".join(parts), "total_ms": (t_end - t0) * 1000, "ttft_ms": (t_first - t0) * 1000,
        "finish_reason": done.finish_reason, "tokens": done.usage.completion_tokens,
        "server_total_ms": done.usage.total_ms, "server_ttft_ms": done.usage.ttft_ms,
    }


def via_http(client: httpx.Client, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
            "stream": stream, "edgecloud": EXTENSION}
    t0 = time.perf_counter()
    if not stream:
        resp = client.post("/v1/completions", json=body)
        resp.raise_for_status()
        data = resp.json()
        t_end = time.perf_counter()
        choice, ext = data["choices"][0], data["edgecloud"]
        return {
            "text": choice["text"], "total_ms": (t_end - t0) * 1000, "ttft_ms": None,
            "finish_reason": choice["finish_reason"], "tokens": data["usage"]["completion_tokens"],
            "server_total_ms": ext["total_ms"], "server_ttft_ms": ext["ttft_ms"],
        }
    parts: list[str] = []
    t_first = 0.0
    last: dict[str, Any] = {}
    with client.stream("POST", "/v1/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"stream failed: {chunk['error']}")
            text = chunk["choices"][0]["text"]
            if text:
                if not t_first:
                    t_first = time.perf_counter()
                parts.append(text)
            if chunk.get("usage"):
                last = chunk
    t_end = time.perf_counter()
    ext = last["edgecloud"]
    return {
        "text": "".join(parts), "total_ms": (t_end - t0) * 1000, "ttft_ms": (t_first - t0) * 1000,
        "finish_reason": last["choices"][0]["finish_reason"], "tokens": last["usage"]["completion_tokens"],
        "server_total_ms": ext["total_ms"], "server_ttft_ms": ext["ttft_ms"],
    }


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    ap.add_argument("--repeats", type=int, default=15, help="measured rounds (after one warm-up round)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--plain", action="store_true", help="the daemon without speculative decoding")
    args = ap.parse_args()

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {w: [] for w in WAYS}
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        proc, target, base = start_daemon(Path(tmp), args.plain)
        try:
            token = (Path(tmp) / "token").read_text().strip()  # made by the daemon at its first start
            with grpc.insecure_channel(target) as ch, httpx.Client(
                base_url=base, timeout=300, headers={"authorization": f"Bearer {token}"},
            ) as client:
                stub = pb_grpc.EdgeAgentStub(ch)
                model = client.get("/v1/models").json()["data"][0]["id"]
                for rnd in range(args.repeats + 1):  # round 0 warms up and is dropped
                    order = WAYS[rnd % 3:] + WAYS[: rnd % 3]
                    for way in order:
                        if way == "grpc":
                            r = via_grpc(stub, args.max_tokens)
                        else:
                            r = via_http(client, model, args.max_tokens, stream=way == "http_stream")
                        if rnd:
                            runs[way].append(r)
                    if rnd:
                        print(f"[{rnd}/{args.repeats}] " + " ".join(
                            f"{w}={runs[w][-1]['total_ms']:.0f}ms" for w in WAYS), file=sys.stderr, flush=True)
        finally:
            stop_daemon(proc)

    def med(way: str, key: str) -> float | None:
        xs = [r[key] for r in runs[way] if r[key] is not None]
        return _median(xs) if xs else None

    def ratio(way: str, key: str) -> float:
        return _median([h[key] / g[key] for h, g in zip(runs[way], runs["grpc"], strict=True)])

    texts = Counter(r["text"] for w in WAYS for r in runs[w])
    rounds_same = sum(1 for i in range(args.repeats) if len({runs[w][i]["text"] for w in WAYS}) == 1)
    summary: dict[str, Any] = {
        w: {
            "total_ms": med(w, "total_ms"), "ttft_ms": med(w, "ttft_ms"),
            "server_total_ms": med(w, "server_total_ms"), "server_ttft_ms": med(w, "server_ttft_ms"),
            "client_minus_server_ms": _median([r["total_ms"] - r["server_total_ms"] for r in runs[w]]),
            "tokens": sorted({r["tokens"] for r in runs[w]}),
            "finish_reasons": sorted({r["finish_reason"] for r in runs[w]}),
        }
        for w in WAYS
    }
    result = {
        "benchmark": "http_overhead",
        "prompt": PROMPT,
        "max_tokens": args.max_tokens,
        "speculative": not args.plain,
        "rounds": args.repeats,
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_avg_1m_start": round(load_start[0], 2), "load_avg_1m_end": round(os.getloadavg()[0], 2),
        },
        "summary": summary,
        "http_stream_over_grpc_total": ratio("http_stream", "total_ms"),
        "http_whole_over_grpc_total": ratio("http_whole", "total_ms"),
        "http_stream_over_grpc_ttft": ratio("http_stream", "ttft_ms"),
        "all_full_length": all(r["finish_reason"] == "length" and r["tokens"] == args.max_tokens
                               for w in WAYS for r in runs[w]),
        "texts_identical": len(texts) == 1,
        "rounds_with_identical_texts": rounds_same,
        "distinct_texts": len(texts),
        "texts": [{"requests": n, "text": t} for t, n in texts.most_common()],
        # the transport alone: client time minus the daemon's, HTTP minus gRPC
        "http_stream_extra_ms": round(summary["http_stream"]["client_minus_server_ms"]
                                      - summary["grpc"]["client_minus_server_ms"], 3),
        "http_whole_extra_ms": round(summary["http_whole"]["client_minus_server_ms"]
                                     - summary["grpc"]["client_minus_server_ms"], 3),
        "samples_ms": {w: [round(r["total_ms"], 1) for r in runs[w]] for w in WAYS},
        "elapsed_s": round(time.perf_counter() - t_start, 1),
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(f"{'request':12} {'total ms':>9} {'TTFT ms':>8} {'daemon ms':>9} {'client-daemon':>13}  finish")
    for w in WAYS:
        s = summary[w]
        ttft = f"{s['ttft_ms']:8.1f}" if s["ttft_ms"] is not None else f"{'-':>8}"
        print(f"{w:12} {s['total_ms']:9.1f} {ttft} {s['server_total_ms']:9.1f} {s['client_minus_server_ms']:13.1f}"
              f"  {','.join(s['finish_reasons'])} {s['tokens']}")
    print(f"\nHTTP/gRPC (median of per-round ratios): stream total {result['http_stream_over_grpc_total']:.3f}, "
          f"non-stream total {result['http_whole_over_grpc_total']:.3f} (target <= 1.05), "
          f"stream TTFT {result['http_stream_over_grpc_ttft']:.3f}; full length: {result['all_full_length']}; "
          f"texts identical: {result['texts_identical']} ({len(texts)} distinct; all three equal in "
          f"{rounds_same}/{args.repeats} rounds); transport beyond gRPC: stream "
          f"{result['http_stream_extra_ms']:+.1f} ms, non-stream {result['http_whole_extra_ms']:+.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
