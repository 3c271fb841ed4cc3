"""The model directory and keep_alive on the real model and daemon: `edge-agent model`
list/add/use/rm/show (names, modes, refusals), the daemon running the chosen model and
holding it against `rm`, and an idle daemon freeing the model and loading it again."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import agent_env, start_agent
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.model

SHIPPED = "gemma-3-270m-q4_k_m"


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "model", *args],
        env=agent_env(data), capture_output=True, text=True, timeout=120, check=False,
    )


def test_model_commands(tmp_path: Path, model_path: Path) -> None:
    data = tmp_path / "data"
    shown = cli(data, "list", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [(r["name"], r["in_use"], r["shipped"]) for r in rows] == [(SHIPPED, True, True)]
    assert rows[0]["quantization"] == "Q4_K_M" and rows[0]["context_length"] > 0 and rows[0]["chat_template"] is False

    src = tmp_path / "Downloaded Model.gguf"
    shutil.copy(model_path, src)
    added = cli(data, "add", str(src))
    assert added.returncode == 0, added.stderr
    assert "Downloaded-Model" in added.stdout  # the name made from the file name
    assert cli(data, "add", str(src), "--name", "mine").returncode == 0
    models = data / "models"
    assert stat.S_IMODE(os.stat(models).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(models / "mine.gguf").st_mode) == 0o600
    src.unlink()  # the directory holds its own copy

    for args, expected in [
        (("add", str(model_path), "--name", "mine"), "exists already"),
        (("add", "/etc/hostname"), "not a GGUF file"),
        (("add", str(model_path), "--name", "../escape"), "name: must be"),
        (("add", str(model_path), "--name", SHIPPED), "shipped model's name"),
        (("use", "nope"), "no model named 'nope'"),
        (("rm", SHIPPED), "shipped model, always available"),
    ]:
        r = cli(data, *args)
        assert r.returncode == 1 and expected in r.stderr, (args, r.stderr)
    assert not (tmp_path / "escape.gguf").exists() and not list(models.glob(".add-*"))

    assert cli(data, "use", "mine").returncode == 0
    rows = json.loads(cli(data, "list", "--json").stdout)
    assert {r["name"]: r["in_use"] for r in rows} == {SHIPPED: False, "Downloaded-Model": False, "mine": True}
    refused = cli(data, "rm", "mine")
    assert refused.returncode == 1 and "is the model in use" in refused.stderr
    shown = json.loads(cli(data, "show", "mine", "--json").stdout)
    assert shown["buffer_types_mib"] and sum(shown["buffer_types_mib"].values()) > 100
    assert shown["parameters"] == "270M" and shown["size_mib"] > 200
    removed = cli(data, "rm", "Downloaded-Model")
    assert removed.returncode == 0, removed.stderr
    assert not (models / "Downloaded-Model.gguf").exists()


def _ask(stub: pb_grpc.EdgeAgentStub, prompt: str) -> str:
    req = pb.GenerateRequest(
        prompt=prompt, params=common_pb2.GenerationParams(max_tokens=12),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
    )
    return "".join(m.delta for m in stub.Generate(req, timeout=120) if not m.HasField("done"))


def test_daemon_runs_the_chosen_model_frees_it_when_idle_and_holds_it_against_rm(tmp_path: Path, model_path: Path) -> None:
    data = tmp_path / "data"
    src = tmp_path / "copy.gguf"
    shutil.copy(model_path, src)
    assert cli(data, "add", str(src), "--name", "mine").returncode == 0
    assert cli(data, "use", "mine").returncode == 0
    svc = start_agent(data, EDGE_AGENT_KEEP_ALIVE="0", EDGE_AGENT_HTTP="unix")
    try:
        http = httpx.Client(transport=httpx.HTTPTransport(uds=str(data / "openai.sock")), base_url="http://localhost")
        assert http.get("/v1/models").json()["data"][0]["id"] == "mine"
        with grpc.insecure_channel(f"unix:{data / 'a.sock'}") as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            assert stub.GetStats(pb.GetStatsRequest(), timeout=10).model.name == "mine"
            # chosen no longer (from the next start only), but the running daemon holds it
            assert cli(data, "use", SHIPPED, "--next-start").returncode == 0
            held = cli(data, "rm", "mine")
            assert held.returncode == 1 and "in use by a running edge-agent" in held.stderr
            first = _ask(stub, "The capital of France is")
            state = None
            for _ in range(600):  # keep_alive 0: freed right after the answer
                state = stub.GetStats(pb.GetStatsRequest(), timeout=10).model
                if state.state == "unloaded":
                    break
                time.sleep(0.05)
            assert state is not None and state.state == "unloaded" and state.unloads >= 1, state
            assert http.get("/health").json() == {"status": "unloaded", "model": "mine"}
            # one readiness at both doors: freed when idle and loading again are still ready
            health = health_pb2_grpc.HealthStub(ch)
            seen: set[tuple[str, int, int]] = set()
            with futures.ThreadPoolExecutor(1) as pool:
                again = pool.submit(_ask, stub, "The capital of France is")
                while not again.done():
                    r = http.get("/health")
                    g = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
                    seen.add((r.json()["status"], r.status_code, g))
                    time.sleep(0.01)
                assert again.result() == first  # loaded again, same answer
            assert any(st == "loading" for st, _, _ in seen), seen  # the reload was watched
            assert all(code == 200 and g == health_pb2.HealthCheckResponse.SERVING for _, code, g in seen), seen
            assert stub.GetStats(pb.GetStatsRequest(), timeout=10).model.loads >= 1
    finally:
        assert svc.stop() == 0, svc.log()
    assert "model unloaded after 0 s idle" in svc.log() and "model loaded in" in svc.log()
    assert cli(data, "rm", "mine").returncode == 0  # nothing holds it now


def test_model_use_switches_the_running_daemon_after_its_requests_finish(tmp_path: Path, model_path: Path) -> None:
    """``model use`` on a running daemon: a stream in progress finishes on the old model,
    then the new one answers under its name at both doors; the old file is free again."""
    data = tmp_path / "data"
    src = tmp_path / "copy.gguf"
    shutil.copy(model_path, src)
    assert cli(data, "add", str(src), "--name", "mine").returncode == 0
    svc = start_agent(data, EDGE_AGENT_HTTP="unix")
    try:
        http = httpx.Client(transport=httpx.HTTPTransport(uds=str(data / "openai.sock")), base_url="http://localhost",
                            timeout=120)
        assert http.get("/v1/models").json()["data"][0]["id"] == SHIPPED
        with grpc.insecure_channel(f"unix:{data / 'a.sock'}") as ch:
            stub = pb_grpc.EdgeAgentStub(ch)
            long = pb.GenerateRequest(prompt="Write a long story about a lighthouse keeper.",
                                      params=common_pb2.GenerationParams(max_tokens=96),
                                      routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY))
            stream = stub.Generate(long, timeout=120)
            first = next(stream)  # decoding has started on the shipped model
            assert first.HasField("delta")
            with futures.ThreadPoolExecutor(1) as pool:
                switching = pool.submit(cli, data, "use", "mine")
                rest = list(stream)  # the running request is not cut by the switch
                done = switching.result()
            assert rest[-1].HasField("done") and rest[-1].done.finish_reason in ("length", "stop")
            assert rest[-1].done.usage.completion_tokens > 1
            assert done.returncode == 0, done.stderr
            assert "switched from gemma-3-270m-q4_k_m to mine" in done.stdout, done.stdout
            assert stub.GetStats(pb.GetStatsRequest(), timeout=10).model.name == "mine"
            assert _ask(stub, "The capital of France is")  # answered by the new model
        listed = {r["name"]: (r["in_use"], r["running"]) for r in json.loads(cli(data, "list", "--json").stdout)}
        assert listed == {SHIPPED: (False, False), "mine": (True, True)}
        assert cli(data, "use", SHIPPED, "--next-start").returncode == 0  # chosen apart from running
        listed = {r["name"]: (r["in_use"], r["running"]) for r in json.loads(cli(data, "list", "--json").stdout)}
        assert listed == {SHIPPED: (True, False), "mine": (False, True)}
        assert "the running daemon serves mine" in cli(data, "list").stdout
        assert http.get("/v1/models").json()["data"][0]["id"] == "mine"
        r = http.post("/v1/chat/completions", json={"model": "mine", "messages": [{"role": "user", "content": "Hi"}],
                                                    "max_tokens": 4})
        assert r.status_code == 200 and r.json()["model"] == "mine", r.text
        assert http.post("/v1/chat/completions", json={"model": SHIPPED, "messages": [{"role": "user", "content": "Hi"}],
                                                       "max_tokens": 4}).status_code == 404
        # back to the shipped model: the file of "mine" is no longer held
        assert cli(data, "use", SHIPPED).returncode == 0
        removed = cli(data, "rm", "mine")
        assert removed.returncode == 0, removed.stderr
        # an unknown name: the daemon says so and keeps running its model
        bad = cli(data, "use", "nope")
        assert bad.returncode == 1 and "nope" in bad.stderr
    finally:
        assert svc.stop() == 0, svc.log()
    assert "model switched live: gemma-3-270m-q4_k_m -> mine" in svc.log()
