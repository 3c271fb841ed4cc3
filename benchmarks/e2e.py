"""End-to-end benchmark of the daemon.

(a) gRPC overhead: the same greedy generation in-process (the engine called directly)
    and through the daemon over its unix socket, interleaved; median ratio of wall times.
(b) load: N concurrent streaming clients for a bounded time: requests completed, errors
    by status code, p50/p99 queue wait and TTFT, peak RSS of the daemon.

    python benchmarks/e2e.py --json benchmarks/results/e2e.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

PROMPT = "Write a short story about a robot who learns to paint. Once upon a time"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_daemon(data: Path, threads: int, queue_depth: int) -> tuple[subprocess.Popen[str], str]:
    cfg = data / "edge-agent.toml"
    cfg.write_text(f"[server]\nqueue_depth = {queue_depth}\n[model]\nn_threads = {threads}\n")
    env = dict(os.environ, EDGE_AGENT_DATA_DIR=str(data), EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_CLOUD="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli.main", "serve"], env=env, stdout=subprocess.PIPE,
        stderr=(data / "agent.log").open("w"), text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"daemon did not start:\n{(data / 'agent.log').read_text()}")
    return proc, line.strip().split(" on ", 1)[1].split(" and ")[0].split(";")[0]


def overhead(target: str, model_path: Path, threads: int, max_tokens: int, rounds: int) -> dict[str, object]:
    from edge_agent.engine.api import Finished, SamplingParams
    from edge_agent.engine.llama_engine import LlamaEngine

    engine = LlamaEngine(model_path, n_threads=threads)
    params = SamplingParams(max_tokens=max_tokens)
    req = pb.GenerateRequest(
        prompt=PROMPT,
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
    )
    inproc, daemon, tokens = [], [], []
    with grpc.insecure_channel(target) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        for _ in range(rounds + 1):  # the first round warms both up and is dropped
            t0 = time.perf_counter()
            n_in = next(e.usage.completion_tokens for e in engine.generate(PROMPT, params) if isinstance(e, Finished))
            t1 = time.perf_counter()
            n_out = next(m.done.usage.completion_tokens for m in stub.Generate(req, timeout=300) if m.HasField("done"))
            t2 = time.perf_counter()
            inproc.append(t1 - t0)
            daemon.append(t2 - t1)
            tokens.append((n_in, n_out))
    engine.close()
    inproc, daemon, tokens = inproc[1:], daemon[1:], tokens[1:]
    ratios = [d / i for d, i in zip(daemon, inproc)]
    return {
        "max_tokens": max_tokens,
        "rounds": rounds,
        "in_process_s_median": statistics.median(inproc),
        "daemon_s_median": statistics.median(daemon),
        "ratio_median": statistics.median(ratios),
        "tokens": tokens,
    }


def load(target: str, pid: int, clients: int, seconds: float, max_tokens: int) -> dict[str, object]:
    req = pb.GenerateRequest(
        prompt="Name a colour:",
        params=common_pb2.GenerationParams(max_tokens=max_tokens),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
    )
    lock = threading.Lock()
    codes: Counter[str] = Counter()
    ttft: list[float] = []
    queue: list[float] = []
    rss_peak = _rss_kb(pid)
    rss_start = rss_peak
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with grpc.insecure_channel(target) as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            while time.monotonic() < stop_at:
                try:
                    for m in stub.Generate(req, timeout=seconds + 60):
                        if m.HasField("done"):
                            with lock:
                                codes["OK"] += 1
                                ttft.append(m.done.usage.ttft_ms)
                                queue.append(m.done.usage.queue_wait_ms)
                except grpc.RpcError as exc:
                    with lock:
                        codes[exc.code().name] += 1
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss_peak = max(rss_peak, _rss_kb(pid))
        time.sleep(0.2)
    return {
        "clients": clients,
        "seconds": seconds,
        "max_tokens": max_tokens,
        "completed": codes["OK"],
        "errors_by_code": {k: v for k, v in codes.items() if k != "OK"},
        "ttft_p50_ms": _percentile(ttft, 50),
        "ttft_p99_ms": _percentile(ttft, 99),
        "queue_wait_p50_ms": _percentile(queue, 50),
        "queue_wait_p99_ms": _percentile(queue, 99),
        "ttft_samples_ms": [round(t, 1) for t in ttft],
        "rss_start_mb": rss_start / 1024,
        "rss_peak_mb": rss_peak / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/e2e.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--queue-depth", type=int, default=32)
    args = ap.parse_args()
    from common.model_files import default_model_path

    model_path = default_model_path()
    with tempfile.TemporaryDirectory(prefix="e2e-bench-") as tmp:
        proc, target = start_daemon(Path(tmp), args.threads, args.queue_depth)
        try:
            ov = overhead(target, model_path, args.threads, args.max_tokens, args.rounds)
            ld = load(target, proc.pid, args.clients, args.seconds, 8)
        finally:
            proc.terminate()
            proc.wait(30)
    result = {
        "benchmark": "e2e",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "model": model_path.name},
        "command": "python benchmarks/e2e.py " + " ".join(sys.argv[1:]),
        "overhead": ov,
        "load": ld,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"gRPC overhead: in-process {ov['in_process_s_median']:.3f}s, daemon {ov['daemon_s_median']:.3f}s, "
          f"median ratio {ov['ratio_median']:.3f} (target <= 1.05)")
    print(f"load: {ld['clients']} clients x {ld['seconds']:.0f}s: {ld['completed']} completed, errors {ld['errors_by_code']}, "
          f"ttft p50/p99 {ld['ttft_p50_ms']:.0f}/{ld['ttft_p99_ms']:.0f} ms, queue p50/p99 "
          f"{ld['queue_wait_p50_ms']:.0f}/{ld['queue_wait_p99_ms']:.0f} ms, RSS {ld['rss_start_mb']:.0f}->{ld['rss_peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
