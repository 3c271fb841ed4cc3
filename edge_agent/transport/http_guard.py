"""The HTTP door's checks before any route runs: what a web page in the user's browser
could otherwise do with it (cross-site requests, DNS rebinding), and the token.

In order, on every request:

1. ``Host`` must be a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``, any
   port) or one of ``[http] allowed_hosts``: a page whose own name was rebound to
   127.0.0.1 sends its own name, and gets 403. The check runs on the unix socket too,
   so a forwarding proxy in front of it does not open it to web pages.
2. ``Origin``, when present (browsers send it on cross-origin and on POST requests),
   must be one of ``[http] allowed_origins`` (403 otherwise); clients that are not
   browsers send none.
3. A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an
   allowed origin gets 204 with explicit methods and headers, never ``*``; responses
   to an allowed origin carry ``Access-Control-Allow-Origin`` with that origin.
4. The bearer token (constant-time), where the door requires one; ``GET /health``
   is open: it tells readiness and the model name, nothing personal, and probes carry
   no token.
5. A POST body must be ``Content-Type: application/json`` (415 otherwise): a page can
   send ``text/plain`` cross-site without a preflight, never ``application/json``.

Errors are OpenAI error objects naming the header and what to configure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from common.rpc import bearer_token

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "authorization, content-type"
EXPOSE_HEADERS = "x-edgecloud-route, x-request-id, retry-after"
OPEN_PATHS = ("/health",)

ASGIApp = Callable[[Any, Any, Any], Any]


def _split_host(value: str) -> tuple[str, str]:
    """("name", "port") of a Host header value (IPv6 names keep their brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest.removeprefix(":")
    name, _, port = value.partition(":")
    return name, port


class HostRule:
    """Accepted Host values: loopback names and configured ones (a name alone allows
    every port, ``name:port`` that port only)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._names = set(LOOPBACK_HOSTS)
        self._exact: set[str] = set()
        for entry in extra:
            name, port = _split_host(entry)
            if port:
                self._exact.add(f"{name}:{port}")
            else:
                self._names.add(name)

    def allows(self, value: str) -> bool:
        name, port = _split_host(value)
        if port and not port.isdigit():
            return False
        return name in self._names or f"{name}:{port}" in self._exact


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class DoorGuard:
    """ASGI middleware in front of the door's routes (see the module docstring).

    ``token`` checks a bearer token (None: the door needs none, e.g. its unix socket).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostRule,
        origins: Iterable[str] = (),
        token: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = {o.strip().lower().rstrip("/") for o in origins}
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get("origin", "")
        refusal = self._refusal(scope, headers, origin)
        if refusal is not None:
            status, message, extra = refusal
            log.info("%s %s -> %d: %s", scope["method"], scope["path"][:128], status, message)
            await _json(send, status, message, extra)
            return
        if origin and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(send, origin)
            return
        await self.app(scope, receive, _with_cors(send, origin) if origin else send)

    def _refusal(self, scope: Any, headers: dict[str, str], origin: str) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        host = headers.get("host")
        if host is not None and not self.hosts.allows(host):
            return 403, (f"Host: {host[:100]!r} is not a name of this server (loopback names and "
                         "[http] allowed_hosts only; a web page's own name rebound to 127.0.0.1 is refused)"), []
        if origin and origin.lower().rstrip("/") not in self.origins:
            return 403, (f"Origin: {origin[:100]!r} may not call this server (cross-site request; "
                         "list the origin in [http] allowed_origins to allow it)"), []
        if scope["method"] == "OPTIONS" and origin:
            return None  # a preflight carries no token
        open_path = scope["method"] == "GET" and scope["path"] in OPEN_PATHS
        if self.token is not None and not open_path and not self.token(bearer_token(headers.get("authorization", ""))):
            return 401, ("Authorization: a valid bearer token is required (`edge-agent token show` "
                         "prints it)"), [(b"www-authenticate", b"Bearer")]
        if scope["method"] in ("POST", "PUT", "PATCH"):
            ctype = headers.get("content-type", "")
            if _media_type(ctype) != "application/json":
                return 415, f"Content-Type: must be application/json (got {ctype[:60]!r})", []
        return None


def _headers(scope: Any) -> dict[str, str]:
    """The request's headers, names lower-case; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
    return out


_KINDS = {401: "authentication_error", 403: "permission_error", 415: "invalid_request_error"}


async def _json(send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": {"message": message, "type": _KINDS.get(status, "invalid_request_error"),
                                 "param": None, "code": "invalid_api_key" if status == 401 else None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _preflight(send: Any, origin: str) -> None:
    headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Any, origin: str) -> Any:
    """``send`` adding the CORS headers of an allowed origin to the response."""
    cors = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *cors]}
        await send(message)

    return wrapped
