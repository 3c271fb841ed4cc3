"""The daemon under pressure: cancellation frees the model, a full queue answers
RESOURCE_EXHAUSTED, a dead cloud falls back to the local model, the breaker opens and
half-opens. Real daemon subprocess, real model, real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from conftest import Service, agent_token, start_agent
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.model

LONG = pb.GenerateRequest(
    prompt="Write a very long story about a lighthouse keeper, chapter by chapter.",
    params=common_pb2.GenerationParams(max_tokens=1500, temperature=0.8, seed=7),
    routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
)
SHORT = pb.GenerateRequest(
    prompt="The sky is",
    params=common_pb2.GenerationParams(max_tokens=4),
    routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_LOCAL_ONLY),
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("resilience")
    cfg = data / "edge-agent.toml"
    cfg.write_text(f"[server]\nqueue_depth = 1\nparallel = 1\n[cloud]\nbreaker_failures = 2\nbreaker_cooldown_s = {COOLDOWN_S}\n")
    svc = start_agent(
        data, EDGE_AGENT_CONFIG=str(cfg), EDGE_AGENT_CLOUD=f"127.0.0.1:{_closed_port()}", EDGE_AGENT_METRICS="127.0.0.1:0"
    )
    yield svc
    assert svc.stop() == 0, svc.log()


@pytest.fixture(scope="module")
def channel(agent: Service) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(agent.ready_line.split(" on ", 1)[1].split(";")[0]) as ch:
        yield ch


def _drain(call: grpc.Call) -> None:
    try:
        next(call)  # type: ignore[call-overload]
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.CANCELLED


def _finish(stub: pb_grpc.EdgeAgentStub, req: pb.GenerateRequest, timeout: float = 60) -> pb.GenerateDone:
    done = [m.done for m in stub.Generate(req, timeout=timeout) if m.HasField("done")]
    assert len(done) == 1
    return done[0]


def test_liveness_and_readiness_are_separate_health_names(channel: grpc.Channel) -> None:
    h = health_pb2_grpc.HealthStub(channel)
    for name in ("liveness", "", "edgecloud.v1.EdgeAgent"):
        assert h.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING


def test_cancel_frees_the_model_for_the_next_request(agent: Service, channel: grpc.Channel) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    call = stub.Generate(LONG, timeout=120)
    got = [next(call).delta for _ in range(3)]
    assert all(isinstance(d, str) for d in got)
    call.cancel()
    # The next request gets the model although the first asked for 1500 tokens.
    done = _finish(stub, SHORT, timeout=20)
    assert done.usage.completion_tokens > 0
    deadline = time.monotonic() + 10
    while "finish=cancelled" not in agent.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "finish=cancelled" in agent.log()


def test_queue_beyond_depth_is_resource_exhausted_with_retry_hint(channel: grpc.Channel) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    first = stub.Generate(LONG, timeout=120)
    next(first)  # holds the model
    second = stub.Generate(LONG, timeout=120)
    waiter = threading.Thread(target=_drain, args=(second,), daemon=True)
    waiter.start()  # waits in the queue (depth 1)
    time.sleep(1.0)
    try:
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Generate(SHORT, timeout=20))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "retry after" in info.value.details()
    finally:
        first.cancel()
        second.cancel()
        waiter.join(20)
    assert _finish(stub, SHORT, timeout=30).usage.completion_tokens > 0


COOLDOWN_S = 4.0


def test_dead_cloud_falls_back_locally_then_breaker_opens_and_half_opens(channel: grpc.Channel) -> None:
    stub = pb_grpc.EdgeAgentStub(channel)
    general = pb.GenerateRequest(
        prompt="The largest planet in the solar system is",
        params=common_pb2.GenerationParams(max_tokens=6),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
    )
    # The start-up Info probe was the first failure of two; this request is the second.
    assert stub.GetStats(pb.GetStatsRequest()).cloud_circuit == "closed"
    before = time.monotonic()  # the breaker opens after this, during the request
    done = _finish(stub, general)
    assert done.route.target == pb.ROUTE_TARGET_CLOUD
    assert done.route.fallback and "answered locally" in done.route.fallback_reason
    assert done.usage.completion_tokens > 0
    state = stub.GetStats(pb.GetStatsRequest()).cloud_circuit
    d = stub.ExplainRoute(general)
    if time.monotonic() - before < COOLDOWN_S:  # surely still inside the cooldown
        assert state == "open"
        assert d.target == pb.ROUTE_TARGET_LOCAL
        cloud_opt = [o for o in d.options if o.target == pb.ROUTE_TARGET_CLOUD]
        assert cloud_opt and not cloud_opt[0].allowed
    else:  # a machine slow enough to outlast the cooldown: it must have moved on
        assert state in ("open", "half_open")
    deadline = time.monotonic() + 4 * COOLDOWN_S
    while stub.GetStats(pb.GetStatsRequest()).cloud_circuit != "half_open":
        assert time.monotonic() < deadline, "the breaker never half-opened"
        time.sleep(0.1)
    assert stub.ExplainRoute(general).target == pb.ROUTE_TARGET_CLOUD  # one probe is let through
    assert stub.GetStats(pb.GetStatsRequest()).fallbacks >= 1


def test_prometheus_metrics_on_loopback(agent: Service, channel: grpc.Channel) -> None:
    import httpx

    _finish(pb_grpc.EdgeAgentStub(channel), SHORT)
    url = agent.ready_line.split("metrics on ", 1)[1]
    assert url.startswith("http://127.0.0.1:")
    # like every TCP listener, /metrics requires the daemon's token
    refused = httpx.get(url, timeout=10)
    assert refused.status_code == 401 and "edge_agent_" not in refused.text
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    text = httpx.get(url, headers={"Authorization": f"Bearer {agent_token(agent)}"}, timeout=10).text
    assert 'edge_agent_requests_total{route="local"}' in text
    assert 'edge_agent_cloud_circuit{state=' in text and "edge_agent_ttft_ms{quantile=\"0.5\"}" in text
