"""The ``edge-agent`` command line: help on every option, serve's options, ``stats
--json`` and ``ask --explain`` as text (against an in-process fake daemon)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from edge_agent.cli.main import build_parser, main


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, "/".join(action.option_strings) or action.dest, action


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{path} {name}" for path, name, action in _options(build_parser(), "edge-agent") if not action.help]
    assert not missing, f"no help text: {missing}"


def test_serve_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--listen", "--http", "--metrics", "--model", "--keep-alive", "--threads", "--no-calibrate"):
        assert flag in out


def test_serve_options_override_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.cli.main import _serve_config
    from edge_agent.config import load_config

    monkeypatch.setenv("EDGE_AGENT_DATA_DIR", str(tmp_path))
    args = build_parser().parse_args(["serve", "--http", "unix", "--keep-alive", "0", "--threads", "1", "--no-calibrate"])
    cfg = _serve_config(args, load_config(None))
    assert (cfg.http.listen, cfg.model.keep_alive, cfg.model.n_threads, cfg.model.calibrate) == ("unix", "0", 1, False)


class _FakeDaemon(pb_grpc.EdgeAgentServicer):
    def GetStats(self, request: Any, context: Any) -> Any:
        return pb.StatsResponse(
            requests_by_route={"local": 3}, cloud_spend=0.00192, cloud_circuit="closed",
            model=pb.ModelState(name="gemma-3-270m", state="ready", keep_alive_s=300, expires_in_s=212.4,
                                active=1, waiting=2, queue_depth=16),
            runtime=pb.RuntimeInfo(buffer_types_mib={"CPU_REPACK": 150.0, "CPU_Mapped": 91.0}, kv_cache_mib=36.0,
                                   resident_mib=207.4),
        )

    def ExplainRoute(self, request: Any, context: Any) -> Any:
        return pb.RouteDecision(
            target=pb.ROUTE_TARGET_LOCAL, rules_fired=["personal-stays-local"], explanation="personal data stays on the device",
            options=[pb.RouteOption(target=pb.ROUTE_TARGET_LOCAL, estimated_latency_ms=120, allowed=True, note="chosen"),
                     pb.RouteOption(target=pb.ROUTE_TARGET_CLOUD, estimated_latency_ms=900, estimated_cost=0.0004,
                                    allowed=False, note="personal")],
        )


@pytest.fixture()
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("EDGE_AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EDGE_AGENT_CONFIG", raising=False)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_EdgeAgentServicer_to_server(_FakeDaemon(), server)
    address = f"unix:{tmp_path / 'd.sock'}"
    server.add_insecure_port(address)
    server.start()
    try:
        yield address
    finally:
        server.stop(None)


def test_stats_json(daemon: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--json", "--address", daemon]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["requests_by_route"] == {"local": "3"} or stats["requests_by_route"] == {"local": 3}
    assert stats["cloud_spend"] == pytest.approx(0.00192) and stats["errors"] in (0, "0")


def test_ask_explain_prints_text_not_protobuf(daemon: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "what is on tuesday", "--explain", "--address", daemon]) == 0
    out = capsys.readouterr().out
    assert out.startswith("route: local\n")
    assert "why:   personal data stays on the device" in out and "rules: personal-stays-local" in out
    assert "cloud" in out and "blocked  (personal)" in out
    assert "target:" not in out and "ROUTE_TARGET" not in out  # not the protobuf text format


def test_ps_shows_the_model_memory_expiry_and_queue(daemon: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", "--address", daemon]) == 0
    head, row = capsys.readouterr().out.splitlines()
    assert head.split()[:5] == ["MODEL", "STATE", "WEIGHTS", "KV", "RESIDENT"]
    assert row.split()[:2] == ["gemma-3-270m", "ready"]
    assert "241 MiB" in row and "36 MiB" in row and "207 MiB" in row and "300 s" in row and "in 212 s" in row and "2/16" in row
    assert main(["ps", "--json", "--address", daemon]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["memory_mib"]["weights"] == 241.0 and st["memory_mib"]["resident"] == 207.4
    assert st["requests"] == {"active": 1, "waiting": 2, "queue_depth": 16}
