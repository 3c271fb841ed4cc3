"""Server-side TLS and mTLS credentials from PEM files (standard ``grpc.ssl_server_credentials``).

``--tls-cert`` and ``--tls-key`` turn on TLS; ``--tls-client-ca`` additionally requires
every client to present a certificate signed by that CA (mutual TLS). Clients use the
stock ``grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


class TLSConfigError(ValueError):
    """A TLS option is missing, unreadable or not PEM; the message names the option and file."""


@dataclass(frozen=True)
class TLSFiles:
    """Paths of the server's PEM files; all empty means plaintext."""

    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.key or self.client_ca)


def _read_pem(option: str, path: str, marker: bytes) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data or marker not in data:
        raise TLSConfigError(f"{option}: {path} is not a PEM file holding {marker.decode()!s}")
    return data


def server_credentials(files: TLSFiles) -> grpc.ServerCredentials | None:
    """Credentials for ``server.add_secure_port``, or None when TLS is off."""
    if not files.enabled:
        return None
    if not files.cert:
        given = "--tls-key" if files.key else "--tls-client-ca"
        raise TLSConfigError(f"--tls-cert: required with {given}")
    if not files.key:
        raise TLSConfigError("--tls-key: required with --tls-cert")
    cert = _read_pem("--tls-cert", files.cert, b"CERTIFICATE")
    key = _read_pem("--tls-key", files.key, b"PRIVATE KEY")
    ca = _read_pem("--tls-client-ca", files.client_ca, b"CERTIFICATE") if files.client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )
