"""The whole product end to end: real cloud-stub + real edge-agent subprocesses, real
model, real gRPC over a unix socket and loopback TCP."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import Cloud, Service, agent_token, start_agent, tcp_channel
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, cloud: Cloud) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("agent")
    svc = start_agent(data, EDGE_AGENT_LISTEN="127.0.0.1:0", EDGE_AGENT_CLOUD=cloud.address, EDGE_AGENT_CLOUD_TOKEN=cloud.token)
    yield svc
    assert svc.stop() == 0, svc.log()


def _targets(agent: Service) -> tuple[str, str]:
    # "edge-agent ready on unix:/path and 127.0.0.1:PORT"
    where = agent.ready_line.split(" on ", 1)[1]
    unix, tcp = where.split(" and ")
    return unix, tcp


@pytest.fixture(scope="module")
def stub(agent: Service) -> Iterator[pb_grpc.EdgeAgentStub]:
    with grpc.insecure_channel(_targets(agent)[0]) as ch:
        yield pb_grpc.EdgeAgentStub(ch)


def _generate(stub: pb_grpc.EdgeAgentStub, req: pb.GenerateRequest) -> tuple[str, pb.GenerateDone]:
    parts: list[str] = []
    done = None
    for msg in stub.Generate(req, timeout=120):
        if msg.HasField("done"):
            assert done is None, "exactly one final message"
            done = msg.done
        else:
            assert done is None, "no text after the final message"
            parts.append(msg.delta)
    assert done is not None, "the stream must end with a final message"
    return "".join(parts), done


def test_unix_socket_is_private(agent: Service) -> None:
    sock = Path(_targets(agent)[0].removeprefix("unix:"))
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600


def test_health_serving_on_both_listeners(agent: Service) -> None:
    for target in _targets(agent):  # health is open on TCP too: probes carry no token
        with grpc.insecure_channel(target) as ch:
            h = health_pb2_grpc.HealthStub(ch)
            for service in ("", "edgecloud.v1.EdgeAgent"):
                r = h.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_personal_question_answered_locally_from_context(stub: pb_grpc.EdgeAgentStub) -> None:
    ids = stub.PutContext(pb.PutContextRequest(items=[
        pb.ContextItem(kind="event", title="Dentist", body="Dentist appointment with Dr. Alvarez on Thursday at 3pm.", source="t", source_id="1"),
    ])).ids
    assert len(ids) == 1
    hits = stub.SearchContext(pb.SearchContextRequest(query="dentist")).hits
    assert [h.item.id for h in hits] == list(ids)
    text, done = _generate(stub, pb.GenerateRequest(
        prompt="When is my dentist appointment?", use_context=True,
        params=common_pb2.GenerationParams(max_tokens=12),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
    ))
    assert done.route.target == pb.ROUTE_TARGET_LOCAL, done.route
    assert list(done.route.context_item_ids) == list(ids)
    assert done.route.rules_fired and done.route.explanation
    assert text and 0 < done.usage.completion_tokens <= 12
    assert done.usage.prompt_tokens > 10  # the context went into the prompt
    assert stub.DeleteContext(pb.DeleteContextRequest(ids=ids)).deleted == 1
    assert not stub.SearchContext(pb.SearchContextRequest(query="dentist")).hits


def test_general_question_goes_to_the_cloud(stub: pb_grpc.EdgeAgentStub) -> None:
    text, done = _generate(stub, pb.GenerateRequest(
        prompt="The three primary colours of light are",
        params=common_pb2.GenerationParams(max_tokens=10),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
    ))
    assert done.route.target == pb.ROUTE_TARGET_CLOUD, done.route
    assert not done.route.fallback, done.route.fallback_reason
    assert text and done.usage.completion_tokens > 0
    stats = stub.GetStats(pb.GetStatsRequest())
    assert stats.requests_by_route["cloud"] >= 1 and stats.cloud_spend > 0


def test_marked_personal_stays_local_even_when_cloud_preferred(stub: pb_grpc.EdgeAgentStub) -> None:
    _, done = _generate(stub, pb.GenerateRequest(
        prompt="Write a line about the sea.",
        params=common_pb2.GenerationParams(max_tokens=4),
        routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED, personal=True),
    ))
    assert done.route.target == pb.ROUTE_TARGET_LOCAL


def test_explain_route_over_tcp_matches_generate(agent: Service) -> None:
    with tcp_channel(_targets(agent)[1], agent_token(agent)) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        req = pb.GenerateRequest(prompt="My card is 4111 1111 1111 1111, is it valid?",
                                 routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED))
        d = stub.ExplainRoute(req, timeout=30)
        assert d.target == pb.ROUTE_TARGET_LOCAL
        assert d.pii_kinds and len(d.options) >= 2


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GenerateRequest(prompt=""), "prompt"),
        (pb.GenerateRequest(prompt="hi", params=common_pb2.GenerationParams(max_tokens=-1)), "params.max_tokens"),
        (pb.GenerateRequest(prompt="hi", routing=pb.Routing(preference=99)), "routing.preference"),  # type: ignore[arg-type]
        (pb.GenerateRequest(prompt="hi", params=common_pb2.GenerationParams(temperature=-0.5)), "params.temperature"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(stub: pb_grpc.EdgeAgentStub, request_: pb.GenerateRequest, field: str) -> None:
    for call in (lambda: list(stub.Generate(request_, timeout=10)), lambda: stub.Complete(request_, timeout=10)):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith(field + ":"), info.value.details()


def test_bad_context_item_is_invalid_argument(stub: pb_grpc.EdgeAgentStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.PutContext(pb.PutContextRequest(items=[pb.ContextItem(kind="note", body="ok"), pb.ContextItem(kind="spaceship", body="x")]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "items[1].kind" in info.value.details()


def test_cloud_rejects_a_wrong_token(cloud: Cloud) -> None:
    from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc

    with grpc.insecure_channel(cloud.address) as ch:
        stub = cloud_pb2_grpc.CloudInferenceStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            stub.Info(cloud_pb2.InfoRequest(), metadata=(("authorization", "Bearer nope"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        info_ok = stub.Info(cloud_pb2.InfoRequest(), metadata=(("authorization", f"Bearer {cloud.token}"),), timeout=10)
        assert info_ok.context_length > 0 and info_ok.price_out_per_1k > 0


def test_sigterm_exits_zero_and_removes_socket(tmp_path: Path) -> None:
    svc = start_agent(tmp_path / "solo")
    sock = tmp_path / "solo" / "a.sock"
    assert sock.exists()
    assert svc.stop(signal.SIGTERM) == 0, svc.log()
    assert not sock.exists()
    assert "stopped" in svc.log()


def test_search_filters_and_forget_by_query(stub: pb_grpc.EdgeAgentStub) -> None:
    items = [
        pb.ContextItem(kind="note", body="Pottery class on Tuesday evenings", tags=["hobby"], sensitivity="public", created_at=1_700_000_000, source="f", source_id="a"),
        pb.ContextItem(kind="note", body="Pottery kiln costs and glaze list", tags=["hobby", "money"], sensitivity="secret", created_at=1_750_000_000, source="f", source_id="b"),
        pb.ContextItem(kind="message", body="Pottery fair next month?", sensitivity="personal", created_at=1_760_000_000, source="f", source_id="c"),
    ]
    a, b, c = stub.PutContext(pb.PutContextRequest(items=items)).ids

    def ids(**kw: object) -> set[str]:
        return {h.item.id for h in stub.SearchContext(pb.SearchContextRequest(query="pottery", **kw)).hits}

    assert ids() == {a, b, c}
    assert ids(kinds=["note"]) == {a, b}
    assert ids(tags=["hobby", "money"]) == {b}
    assert ids(sensitivities=["public", "personal"]) == {a, c}
    assert ids(since=1_740_000_000) == {b, c}
    assert ids(since=1_740_000_000, until=1_755_000_000) == {b}
    with pytest.raises(grpc.RpcError) as info:
        stub.SearchContext(pb.SearchContextRequest(query="pottery", since=10, until=5))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and info.value.details().startswith("until:")
    with pytest.raises(grpc.RpcError) as info:
        stub.DeleteContext(pb.DeleteContextRequest(ids=[a], query="pottery"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.DeleteContext(pb.DeleteContextRequest(query="kiln glaze")).deleted == 1
    assert ids() == {a, c}
    assert stub.DeleteContext(pb.DeleteContextRequest(source="f")).deleted == 2
    assert ids() == set()


def test_stats_report_the_runtime_measured_at_start(stub: pb_grpc.EdgeAgentStub) -> None:
    r = stub.GetStats(pb.GetStatsRequest()).runtime
    assert r.build_variant and r.llama_cpp_python and r.system_info
    assert r.selfcheck.startswith("passed:"), r.selfcheck
    assert sum(r.buffer_types_mib.values()) > 100  # the 235 MiB model's weights, by type
    assert r.plain_step_ms > 0 and len(r.verify_cost) == 16
    assert r.verify_cost[0] >= 1.0 and r.threads >= 1


def test_a_two_turn_chat_locally_and_through_the_cloud(stub: pb_grpc.EdgeAgentStub) -> None:
    """A conversation: rendered for the local model, sent as messages to the cloud (the
    cloud-stub's llama.cpp backend renders it again), the second turn on the first."""
    def turn(messages: list[tuple[str, str]], pref: int) -> tuple[str, pb.GenerateDone]:
        req = pb.GenerateRequest(
            messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in messages],
            params=common_pb2.GenerationParams(max_tokens=8),
            routing=pb.Routing(preference=pref),
        )
        return _generate(stub, req)

    history = [("user", "Name a fruit.")]
    first, done = turn(history, pb.ROUTE_PREFERENCE_LOCAL_ONLY)
    assert first and done.route.target == pb.ROUTE_TARGET_LOCAL and done.usage.completion_tokens > 0
    history += [("assistant", first), ("user", "Name another one.")]
    second, done = turn(history, pb.ROUTE_PREFERENCE_LOCAL_ONLY)
    assert second and done.usage.prompt_tokens > 10
    text, done = turn(history, pb.ROUTE_PREFERENCE_CLOUD_PREFERRED)
    assert text and done.route.target == pb.ROUTE_TARGET_CLOUD
