"""TLS and mutual TLS on the cloud-stub server, with certificates generated into tmp_path:
the right CA works, a wrong CA or a plaintext client fails, mTLS refuses clients without
a certificate from the configured CA; the CLI flags wire it up and reject bad files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stub_certs import CA, Issued
from stub_helpers import Result, ScriptedBackend, generate, serving, start_stub, stop_stub

from cloud_stub.server import StubSettings
from cloud_stub.tls import TLSConfigError, TLSFiles, server_credentials


@dataclass(frozen=True)
class PKI:
    ca: CA
    other_ca: CA
    server: Issued
    client: Issued
    rogue_client: Issued


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca, other = CA(tmp_path, "ca"), CA(tmp_path, "other-ca")
    return PKI(ca, other, ca.issue("server", server=True), ca.issue("client", server=False), other.issue("rogue", server=False))


def _channel_creds(root: bytes, client: Issued | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    key, chain = client.pair()
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)


def _call(
    files: TLSFiles,
    clients: list[grpc.ChannelCredentials | None],
    settings: StubSettings | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> list[Result]:
    """Serve with ``files``; one Generate per client (None: plaintext)."""
    creds = server_credentials(files)
    assert creds is not None

    async def main() -> list[Result]:
        out = []
        async with serving(ScriptedBackend(), settings, credentials=creds) as addr:
            for c in clients:
                ch = grpc.aio.insecure_channel(addr) if c is None else grpc.aio.secure_channel(addr, c)
                async with ch:
                    out.append(await generate(ch, metadata=metadata, timeout=5))
        return out

    return asyncio.run(main())


def test_tls_with_the_right_ca_works_and_others_fail(pki: PKI) -> None:
    files = TLSFiles(str(pki.server.cert), str(pki.server.key))
    right, wrong_ca, plaintext = _call(files, [_channel_creds(pki.ca.pem), _channel_creds(pki.other_ca.pem), None])
    assert right.code is None and right.text == "Hello, world"
    assert wrong_ca.code == grpc.StatusCode.UNAVAILABLE and not wrong_ca.deltas
    assert plaintext.code == grpc.StatusCode.UNAVAILABLE and not plaintext.deltas


def test_mtls_requires_a_client_certificate_from_the_ca(pki: PKI) -> None:
    files = TLSFiles(str(pki.server.cert), str(pki.server.key), str(pki.ca.issued.cert))
    with_cert, without, rogue, plaintext = _call(
        files,
        [
            _channel_creds(pki.ca.pem, pki.client),
            _channel_creds(pki.ca.pem),
            _channel_creds(pki.ca.pem, pki.rogue_client),
            None,
        ],
    )
    assert with_cert.code is None and with_cert.text == "Hello, world"
    for refused in (without, rogue, plaintext):
        assert refused.code == grpc.StatusCode.UNAVAILABLE and not refused.deltas


def test_bearer_token_still_checked_over_tls(pki: PKI) -> None:
    files = TLSFiles(str(pki.server.cert), str(pki.server.key))
    settings = StubSettings(token="tok")
    (ok,) = _call(files, [_channel_creds(pki.ca.pem)], settings, metadata=(("authorization", "Bearer tok"),))
    (denied,) = _call(files, [_channel_creds(pki.ca.pem)], settings)
    assert ok.code is None
    assert denied.code == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_when_no_files() -> None:
    assert server_credentials(TLSFiles()) is None


@pytest.mark.parametrize(
    ("which", "option"),
    [
        ("cert_only", "--tls-key"),
        ("key_only", "--tls-cert"),
        ("ca_only", "--tls-cert"),
        ("missing_file", "--tls-cert"),
        ("key_is_a_cert", "--tls-key"),
        ("ca_not_pem", "--tls-client-ca"),
    ],
)
def test_bad_tls_options_name_the_option(pki: PKI, tmp_path: Path, which: str, option: str) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("not a certificate")
    cert, key, ca = str(pki.server.cert), str(pki.server.key), str(pki.ca.issued.cert)
    files = {
        "cert_only": TLSFiles(cert=cert),
        "key_only": TLSFiles(key=key),
        "ca_only": TLSFiles(client_ca=ca),
        "missing_file": TLSFiles(str(tmp_path / "nope.crt"), key),
        "key_is_a_cert": TLSFiles(cert, cert),
        "ca_not_pem": TLSFiles(cert, key, str(junk)),
    }[which]
    with pytest.raises(TLSConfigError) as exc:
        server_credentials(files)
    assert str(exc.value).startswith(f"{option}:")


def test_cli_serves_mtls(pki: PKI, tmp_path: Path) -> None:
    # The openai backend with a fixed model name needs no upstream for Info and health.
    proc, addr = start_stub(
        [
            "--backend", "openai", "--openai-url", "http://127.0.0.1:9", "--model", "m",
            "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
            "--tls-client-ca", str(pki.ca.issued.cert), "--price-in", "0.5",
        ],
        tmp_path / "stub.log",
    )

    async def main() -> tuple[cloud_pb2.InfoResponse, int, grpc.StatusCode]:
        async with grpc.aio.secure_channel(addr, _channel_creds(pki.ca.pem, pki.client)) as ch:
            info = await cloud_pb2_grpc.CloudInferenceStub(ch).Info(cloud_pb2.InfoRequest(), timeout=5)
            health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        async with grpc.aio.secure_channel(addr, _channel_creds(pki.ca.pem)) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return info, health.status, err.value.code()

    try:
        info, health, refused = asyncio.run(main())
    finally:
        rc = stop_stub(proc)
    assert (info.model, info.backend, info.price_in_per_1k) == ("m", "openai", 0.5)
    assert health == health_pb2.HealthCheckResponse.SERVING
    assert refused == grpc.StatusCode.UNAVAILABLE
    assert rc == 0


def test_cli_rejects_half_tls_config(pki: PKI, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cloud_stub.cli", "serve", "--listen", "127.0.0.1:0", "--backend", "openai",
         "--openai-url", "http://127.0.0.1:9", "--model", "m", "--tls-cert", str(pki.server.cert)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2
    assert r.stdout == ""
    assert "cloud-stub: --tls-key: required with --tls-cert" in r.stderr
