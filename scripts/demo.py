"""`make demo`: start cloud-stub and edge-agent on this machine, run a short scripted
session through the real gRPC API, print each answer with its route, then stop both.

Everything lives in a temporary data directory that is removed at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

BIN = Path(sys.executable).parent

PERSONAL_ITEMS = [
    pb.ContextItem(kind="event", title="Dentist", body="Dentist appointment with Dr. Alvarez on Thursday 14 March at 3pm, 12 Harbour Street.", sensitivity="personal", source="demo", source_id="e1"),
    pb.ContextItem(kind="contact", title="Maria Lopez", body="Maria Lopez, sister. Phone +1 415 555 0134. Birthday 2 May.", sensitivity="personal", source="demo", source_id="c1"),
    pb.ContextItem(kind="note", title="Book club", body="Book club reads 'The Left Hand of Darkness' this month; meeting at Maria's place.", sensitivity="personal", source="demo", source_id="n1"),
]

SESSION = [
    ("a personal question, answered from the context store", dict(prompt="When is my dentist appointment and where?", use_context=True), pb.Routing(), 40),
    ("a general question, sent to the cloud", dict(prompt="The three primary colours of light are", use_context=False), pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED), 40),
    ("a general question with a tight deadline, kept local", dict(prompt="The capital of France is", use_context=False), pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED, deadline_ms=600), 16),
]


def start(cmd: list[str], env: dict[str, str], marker: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a service; return it and the line that says it is ready."""
    err = log.open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if marker not in line:
        proc.kill()
        sys.exit(f"demo: {cmd[0]} did not start; its log:\n{log.read_text()}")
    return proc, line.strip()


def stop(proc: subprocess.Popen[str], name: str) -> None:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    print(f"  {name} stopped (exit code {code})")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="edgecloud-demo-") as tmp:
        data = Path(tmp)
        token = secrets.token_hex(16)
        (data / "cloud.token").write_text(token)
        env = dict(os.environ)
        print("starting cloud-stub ...")
        cloud, line = start(
            [str(BIN / "cloud-stub"), "serve", "--listen", "127.0.0.1:0", "--token-file", str(data / "cloud.token")],
            env, "listening on", data / "cloud-stub.log",
        )
        print(f"  {line}")
        address = line.split()[-1]
        env.update(EDGE_AGENT_DATA_DIR=str(data / "agent"), EDGE_AGENT_CLOUD=address, EDGE_AGENT_CLOUD_TOKEN=token)
        print("starting edge-agent ...")
        agent, line = start([str(BIN / "edge-agent"), "serve"], env, "ready", data / "edge-agent.log")
        print(f"  {line}")
        target = line.split(" on ")[1].split(" and ")[0]
        try:
            with grpc.insecure_channel(target) as ch:
                stub = pb_grpc.EdgeAgentStub(ch)
                ids = stub.PutContext(pb.PutContextRequest(items=PERSONAL_ITEMS)).ids
                print(f"\nstored {len(ids)} personal items (event, contact, note)\n")
                for title, fields, routing, max_tokens in SESSION:
                    req = pb.GenerateRequest(
                        params=common_pb2.GenerationParams(max_tokens=max_tokens, stop=["\n\n"]),
                        routing=routing,
                        **fields,
                    )
                    print(f"== {title}\n> {req.prompt}")
                    t0 = time.perf_counter()
                    text, done = [], None
                    for msg in stub.Generate(req, timeout=120):
                        if msg.HasField("done"):
                            done = msg.done
                        else:
                            text.append(msg.delta)
                    assert done is not None
                    r, u = done.route, done.usage
                    route = pb.RouteTarget.Name(r.target).removeprefix("ROUTE_TARGET_").lower()
                    print(f"{''.join(text).strip()}")
                    print(f"   route: {route}" + (" (fallback: " + r.fallback_reason + ")" if r.fallback else ""))
                    print(f"   rules: {', '.join(r.rules_fired)}")
                    print(f"   why:   {r.explanation}")
                    print(f"   {u.completion_tokens} tokens, {u.tokens_per_s:.1f} tok/s, ttft {u.ttft_ms:.0f} ms, "
                          f"wall {1000 * (time.perf_counter() - t0):.0f} ms\n")
                s = stub.GetStats(pb.GetStatsRequest())
                print(f"stats: by route {dict(s.requests_by_route)}, ttft p50 {s.ttft_p50_ms:.0f} ms, circuit {s.cloud_circuit}")
        finally:
            print("\nstopping ...")
            stop(agent, "edge-agent")
            stop(cloud, "cloud-stub")
    return 0


if __name__ == "__main__":
    sys.exit(main())
