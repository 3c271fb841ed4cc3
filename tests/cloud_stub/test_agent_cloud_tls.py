"""The edge agent's cloud link over mutual TLS: with the agent's client certificate the
cloud answers; without it the TLS handshake fails and the agent answers locally."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import start_agent
from edgecloud.v1 import common_pb2
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
from stub_certs import CA
from stub_helpers import start_stub, stop_stub

pytestmark = pytest.mark.model

REQ = pb.GenerateRequest(
    prompt="The tallest mountain in the world is",  # no word that could be a name: privacy keeps names local
    params=common_pb2.GenerationParams(max_tokens=6),
    routing=pb.Routing(preference=pb.ROUTE_PREFERENCE_CLOUD_PREFERRED),
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CA]:
    d = tmp_path_factory.mktemp("pki")
    return d, CA(d, "ca")


@pytest.fixture(scope="module")
def mtls_cloud(pki: tuple[Path, CA], model_path: Path) -> Iterator[str]:
    d, ca = pki
    server = ca.issue("server", server=True)
    os.environ["CLOUD_STUB_TOKEN"] = "s3cret"
    try:
        proc, addr = start_stub(
            ["--tls-cert", str(server.cert), "--tls-key", str(server.key), "--tls-client-ca", str(ca.issued.cert), "--threads", "1"],
            d / "stub.log",
        )
    finally:
        del os.environ["CLOUD_STUB_TOKEN"]
    try:
        yield addr
    finally:
        assert stop_stub(proc) == 0


def _ask(tmp: Path, cloud: str, ca: CA, client_cert: bool) -> pb.GenerateDone:
    cfg = tmp / "agent.toml"
    lines = ["[cloud]", f'address = "{cloud}"', 'token = "s3cret"', f'ca_file = "{ca.issued.cert}"']
    if client_cert:
        client = ca.issue("agent", server=False)
        lines += [f'cert_file = "{client.cert}"', f'key_file = "{client.key}"']
    cfg.write_text("\n".join(lines) + "\n")
    agent = start_agent(tmp / "data", EDGE_AGENT_CONFIG=str(cfg))
    try:
        with grpc.insecure_channel(agent.ready_line.split(" on ", 1)[1]) as ch:
            msgs = list(pb_grpc.EdgeAgentStub(ch).Generate(REQ, timeout=60))
    finally:
        assert agent.stop() == 0, agent.log()
    assert msgs[-1].HasField("done")
    return msgs[-1].done


def test_agent_reaches_the_cloud_over_mtls(tmp_path: Path, pki: tuple[Path, CA], mtls_cloud: str) -> None:
    done = _ask(tmp_path, mtls_cloud, pki[1], client_cert=True)
    assert done.route.target == pb.ROUTE_TARGET_CLOUD and not done.route.fallback, done.route
    assert done.usage.completion_tokens > 0


def test_agent_without_a_client_certificate_is_refused_and_answers_locally(tmp_path: Path, pki: tuple[Path, CA], mtls_cloud: str) -> None:
    done = _ask(tmp_path, mtls_cloud, pki[1], client_cert=False)
    # The start-up Info probe already failed, so the breaker may still be closed: either
    # the cloud was tried and the local model answered, or the route was local at once.
    assert done.usage.completion_tokens > 0
    assert done.route.fallback or done.route.target == pb.ROUTE_TARGET_LOCAL, done.route
