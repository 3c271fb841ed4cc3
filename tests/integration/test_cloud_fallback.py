"""A cloud stream cut mid-answer: the local model continues from the text received, and
the user gets one answer whose final message records both parts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import Service, start_agent, start_service
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def flaky_cloud(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("flaky")
    svc = start_service(
        ["cloud_stub.cli", "serve", "--listen", "127.0.0.1:0", "--threads", "1", "--fault-drop-after", "5"],
        dict(os.environ, CLOUD_STUB_TOKEN="t0ken"), "listening on", tmp / "cloud.log",
    )
    yield svc.ready_line.split()[-1]
    svc.stop()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, flaky_cloud: str) -> Iterator[Service]:
    svc = start_agent(tmp_path_factory.mktemp("agent"), EDGE_AGENT_CLOUD=flaky_cloud, EDGE_AGENT_CLOUD_TOKEN="t0ken")
    yield svc
    assert svc.stop() == 0, svc.log()


def test_cut_stream_is_continued_locally(agent: Service) -> None:
    req = pb.GenerateRequest(
        prompt="The history of the printing press begins",
        params=common_pb2.GenerationParams(max_tokens=24),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
    )
    with grpc.insecure_channel(agent.ready_line.split(" on ", 1)[1]) as ch:
        msgs = list(pb_grpc.EdgeAgentStub(ch).Generate(req, timeout=60))
    deltas = [m.delta for m in msgs if not m.HasField("done")]
    done = msgs[-1].done
    assert msgs[-1].HasField("done") and len(deltas) > 5
    r = done.route
    assert r.target == pb.ROUTE_TARGET_CLOUD and r.fallback
    assert "continued" in r.fallback_reason
    text = "".join(deltas)
    cloud_part = "".join(deltas[:5])
    assert r.cloud_chars == len(cloud_part) and text.startswith(cloud_part)
    assert len(text) > len(cloud_part)  # the local model added to it
    # 5 tokens from the cloud + the local rest, within the request's max_tokens
    if done.finish_reason == "length":
        assert done.usage.completion_tokens == 24
    else:
        assert 5 < done.usage.completion_tokens < 24
    assert "local model continued the answer" in agent.log()
