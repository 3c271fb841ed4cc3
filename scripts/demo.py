"""`make demo`: start cloud-stub and edge-agent on this machine, run a short scripted
session through the real gRPC API, then a two-turn chat, a JSON-schema answer and a tool call
through the OpenAI-compatible HTTP front door with the `openai` SDK, print each answer
with its route, then stop both.

Everything lives in a temporary data directory that is removed at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import jsonschema
import openai
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

BIN = Path(sys.executable).parent

RECEIPT = (
    "Receipt from Harbour Books, 12 Quay Road, on 2026-11-28: 'The Dispossessed' 12.99 EUR, "
    "'A Wizard of Earthsea' 9.50 EUR, total 22.49 EUR, paid by card."
)
RECEIPT_SCHEMA = {
    "type": "object",
    "properties": {
        "shop": {"type": "string", "maxLength": 40},
        "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "total": {"type": "number"},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "books": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 2},
    },
    "required": ["shop", "date", "total", "currency", "books"],
    "additionalProperties": False,
}


def openai_session(sock: Path) -> None:
    """A two-turn chat and a JSON-schema answer with the unmodified openai SDK."""
    http = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)))
    with openai.OpenAI(base_url="http://localhost/v1", api_key="unused", http_client=http, max_retries=0, timeout=120) as client:
        model = client.models.list().data[0].id
        print(f"== the OpenAI-compatible front door (unix:{sock}), model {model}: a two-turn chat")
        messages: list[dict[str, str]] = []
        for question in ("What is the capital of France?", "And the capital of Italy?"):
            messages.append({"role": "user", "content": question})
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=24, temperature=0, stop=["\n\n"],  # type: ignore[arg-type]
            )
            reply = raw.parse()
            answer = (reply.choices[0].message.content or "").strip()
            messages.append({"role": "assistant", "content": answer})
            print(f"> {question}\n{answer}")
            print(f"   route: {raw.headers.get('x-edgecloud-route')}   tokens: {reply.usage.completion_tokens if reply.usage else '?'}")
        print("\n== a JSON-schema answer (response_format): a personal item read into a schema")
        print(f"> {RECEIPT}")
        # a completion (the shipped model is a base model); response_format rides in the body
        done = client.completions.create(
            model=model, max_tokens=200, temperature=0,
            prompt=f"{RECEIPT}\n\nThe receipt above as JSON, with the shop's name, the date, the total, the currency and the book titles:\n",
            extra_body={
                "response_format": {"type": "json_schema", "json_schema": {"name": "receipt", "schema": RECEIPT_SCHEMA}},
                "edgecloud": {"preference": "local_only"},
            },
        )
        text = done.choices[0].text
        if done.choices[0].finish_reason != "stop":
            raise SystemExit(f"the JSON answer did not finish ({done.choices[0].finish_reason}): {text!r}")
        value = json.loads(text)
        jsonschema.validate(value, RECEIPT_SCHEMA)
        print(json.dumps(value, indent=2))
        print("   valid against the schema: yes\n")
        print("== a tool call (tools, tool_choice required): the arguments match the function's schema")
        ask = "Remind me to call Maria at 18:30."
        print(f"> {ask}")
        call = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": ask}], tools=[REMINDER_TOOL],  # type: ignore[list-item]
            tool_choice="required", max_tokens=96, temperature=0, extra_body={"edgecloud": {"preference": "local_only"}},
        ).choices[0]
        calls = call.message.tool_calls or []
        if call.finish_reason != "tool_calls" or not calls:
            raise SystemExit(f"no tool call came back ({call.finish_reason}): {call.message}")
        for c in calls:
            args = json.loads(c.function.arguments)  # type: ignore[union-attr]
            jsonschema.validate(args, REMINDER_TOOL["function"]["parameters"])
            print(f"   {c.function.name}({json.dumps(args)})")  # type: ignore[union-attr]
        print("   valid against the function's schema: yes\n")

REMINDER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "set_reminder", "description": "Set a reminder at a time of day.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["what", "hour", "minute"],
                   "properties": {"what": {"type": "string", "maxLength": 60},
                                  "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                                  "minute": {"type": "integer", "minimum": 0, "maximum": 59}}}}}

PERSONAL_ITEMS = [
    pb.ContextItem(kind="event", title="Dentist", body="Dentist appointment with Dr. Alvarez on Thursday 14 March at 3pm, 12 Harbour Street.", sensitivity="personal", source="demo", source_id="e1"),
    pb.ContextItem(kind="contact", title="Maria Lopez", body="Maria Lopez, sister. Phone +1 415 555 0134. Birthday 2 May.", sensitivity="personal", source="demo", source_id="c1"),
    pb.ContextItem(kind="note", title="Book club", body="Book club reads 'The Left Hand of Darkness' this month; meeting at Maria's place.", sensitivity="personal", source="demo", source_id="n1"),
]

SESSION = [
    ("a personal question, answered from the context store", dict(prompt="When is my dentist appointment and where?", use_context=True), pb.Routing(), 40),
    ("a general question, sent to the cloud", dict(prompt="The three primary colours of light are", use_context=False), pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED), 40),
    # kept local by a policy rule on the request's label, not by racing the measured
    # latencies against the deadline, so it is local on any host, however loaded
    ("a realtime question (tight deadline), kept local by a policy rule", dict(prompt="The capital of France is", use_context=False), pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED, deadline_ms=600, labels=["realtime"]), 16),
]
# The demo's policy: the built-in defaults and one rule, so what each step shows does
# not depend on the host's speed or the time of day.
DEMO_POLICY = """\
[[rules]]
name = "realtime-stays-local"
action = "local"
match = { labels = ["realtime"] }
"""


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


def stop(proc: subprocess.Popen[str], name: str, log: Path) -> bool:
    """SIGTERM, wait; a non-zero exit prints the end of the service's log."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    print(f"  {name} stopped (exit code {code})")
    if code != 0:
        print(f"  last lines of {name}'s log:\n" + "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:]))
    return code == 0


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
        (data / "policy.toml").write_text(DEMO_POLICY)
        env.update(
            EDGE_AGENT_DATA_DIR=str(data / "agent"), EDGE_AGENT_CLOUD=address, EDGE_AGENT_CLOUD_TOKEN=token,
            EDGE_AGENT_HTTP="unix", EDGE_AGENT_POLICY=str(data / "policy.toml"),
        )
        print("starting edge-agent ...")
        agent, line = start([str(BIN / "edge-agent"), "serve"], env, "ready", data / "edge-agent.log")
        print(f"  {line}")
        target = line.split(" on ")[1].split(" and ")[0].split(";")[0]
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
                openai_session(data / "agent" / "openai.sock")
                s = stub.GetStats(pb.GetStatsRequest())
                print(f"stats: by route {dict(s.requests_by_route)}, ttft p50 {s.ttft_p50_ms:.0f} ms, circuit {s.cloud_circuit}")
        finally:
            print("\nstopping ...")
            clean = stop(agent, "edge-agent", data / "edge-agent.log")
            clean = stop(cloud, "cloud-stub", data / "cloud-stub.log") and clean
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
