"""Who may call the daemon: the bearer token of its TCP listeners, the peer check of
its unix sockets.

* The token lives in a 0600 file (``server.token_file``, default ``<data_dir>/token``):
  ``ensure_token`` generates it at the first start, ``read_token`` is what clients
  connecting over TCP use, ``rotate_token`` replaces it atomically (``edge-agent token
  rotate``).
* ``TokenCheck`` is the daemon's side: it re-reads the file when it changes (looked at
  no more than once a second), so a rotation takes effect on the next call without a
  restart, and compares in constant time. A file that vanishes or is emptied keeps the
  last token (a warning says so); an empty token matches nothing.
* ``peer_uid`` reads ``SO_PEERCRED`` of a unix-socket connection (Linux): the HTTP
  door's unix socket refuses another user's process on top of the socket's 0600 mode.
  gRPC's Python API does not expose the socket of a connection, so its unix socket
  relies on the mode (0600, in a 0700 directory: the kernel refuses other users'
  ``connect``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import stat
import struct
import time
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.rpc import token_matches
from edge_agent import datadir

log = logging.getLogger(__name__)

TOKEN_KEY = "server.token_file"
_TOKEN_BYTES = 32  # 256 bits, 43 URL-safe characters


def _new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _valid(text: str) -> bool:
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


def _write_new(path: Path, token: str, *, replace: bool) -> bool:
    """Write ``token`` to ``path`` 0600 through a temporary file; without ``replace``
    an existing file wins (False)."""
    if not path.parent.exists():
        datadir.make_private(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if someone made it meanwhile
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def read_token(path: Path) -> str:
    """The token in ``path``; a missing, unreadable, foreign or empty file is a ConfigError."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(str(path), TOKEN_KEY, "a regular file holding the token")
        if st.st_uid != os.geteuid():
            raise ConfigError(str(path), TOKEN_KEY, f"a file owned by uid {os.geteuid()} (owned by uid {st.st_uid})")
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        raise ConfigError(str(path), TOKEN_KEY, "an existing token file (the daemon makes it at its first start; or run `edge-agent token show`)") from None
    except OSError as exc:
        raise ConfigError(str(path), TOKEN_KEY, f"a readable token file ({exc.strerror})") from None
    if not _valid(text):
        raise ConfigError(str(path), TOKEN_KEY, "one line of printable ASCII without spaces (`edge-agent token rotate` writes a new one)")
    return text


def ensure_token(path: Path) -> str:
    """The token in ``path``, generated (0600) if there is none; a looser mode is tightened."""
    if not path.exists() and _write_new(path, _new_token(), replace=False):
        log.info("generated the TCP bearer token in %s (show it with `edge-agent token show`)", path)
    token = read_token(path)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return token


def rotate_token(path: Path) -> str:
    """Replace the token with a new one; a running daemon takes it within a second."""
    token = _new_token()
    _write_new(path, token, replace=True)
    return token


class TokenCheck:
    """The daemon's token: a fixed one, or the file's, re-read when the file changes."""

    def __init__(self, path: Path | None, fixed: str = "", recheck_s: float = 1.0) -> None:
        self.path = path
        self._fixed = fixed.encode()
        self._recheck_s = recheck_s
        self._token = b""
        self._stamp: tuple[int, int, int, int] | None = None
        self._checked = float("-inf")
        self._warned = False
        if not fixed:
            assert path is not None, "a token file or a fixed token"
            self._token = ensure_token(path).encode()
            self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def expected(self) -> bytes:
        if self._fixed:
            return self._fixed
        now = time.monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            self._refresh()
        return self._token

    def _refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        assert self.path is not None
        try:
            token = read_token(self.path).encode()
        except ConfigError as exc:
            if not self._warned:
                log.warning("token file unusable, the last token stays valid: %s", exc.message)
                self._warned = True
            return
        self._stamp, self._warned = stamp, False
        if token != self._token:
            self._token = token
            log.info("bearer token changed (%s): calls need the new one from now on", self.path)

    def accepts(self, given: bytes) -> bool:
        return token_matches(given, self.expected())


def peer_uid(sock: Any) -> int | None:
    """The uid of the process at the other end of a unix socket, where the OS tells."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None or sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)
