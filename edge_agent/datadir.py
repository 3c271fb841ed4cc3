"""The data directory: private modes, one daemon per directory, a socket that is ours.

* ``make_private(path)`` creates the directory 0700 (whatever the umask) and fixes a
  group- or world-accessible directory or file in it to 0700 / 0600; something owned by
  another user is refused with a message naming the path. The entry point also sets the
  process umask to 077, so every file SQLite creates later (``-wal``, ``-shm``) is 0600.
* ``InstanceLock`` holds an exclusive ``flock`` on ``edge-agent.lock`` for the daemon's
  life; a second daemon on the same directory is refused, naming the holder's pid.
* ``claim_socket`` removes only a *stale socket* at the socket path: a live one (some
  process answers on it) or anything that is not a socket is refused, never deleted.
  ``release_socket`` removes it at shutdown only if it is still the one we bound.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
from pathlib import Path

from common.errors import ConfigError, FailedPrecondition

LOCK_NAME = "edge-agent.lock"


class AlreadyRunning(FailedPrecondition):
    """Another daemon holds the data directory."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"another edge-agent ({holder}) is serving the data directory {path}")


def _refuse(path: Path, why: str) -> ConfigError:
    return ConfigError(str(path), "data_dir", why)


def make_private(path: Path) -> None:
    """Create ``path`` 0700 if needed; tighten it and its entries to 0700 / 0600."""
    old = os.umask(0o077)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    finally:
        os.umask(old)
    _tighten(path, 0o700)
    for entry in path.iterdir():
        st = entry.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISREG(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            _tighten(entry, 0o600)


def _tighten(path: Path, mode: int) -> None:
    st = path.lstat()
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"expected to be owned by uid {os.geteuid()}, owned by uid {st.st_uid}")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077 | (mode & 0o700))


class InstanceLock:
    """An exclusive lock on the data directory for one daemon."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(self.path.parent, f"pid {holder}") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def claim_socket(path: Path, key: str = "server.socket") -> None:
    """Make room for our socket at ``path``: only a stale socket is removed; a refusal
    names ``key``, the setting that chose the path."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(
            str(path), key,
            "expected a free path or a stale socket, found something else (left in place)",
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # nobody listens: stale
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise ConfigError(str(path), key, "a live process serves on this socket (left in place)")


def socket_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def release_socket(path: Path, identity: tuple[int, int] | None) -> None:
    """Remove the socket we bound, and nothing else."""
    if identity is not None and socket_identity(path) == identity:
        path.unlink(missing_ok=True)
