"""The daemon's doors and their bounds: file handles, connections per door, gRPC
server options.

Each door (the gRPC unix socket, gRPC on loopback TCP, the HTTP door) has its own
connection bound, and the bounds together stay inside the process's open-file limit
with room for the daemon's own files (``RESERVE_FDS``). A flood on the TCP door thus
ends at its own bound and leaves the unix socket the handles it needs. At start the
soft open-file limit is raised to the hard one (up to ``FD_TARGET``), as Go programs
do; where the limit is still too low for the configured bounds, every bound is scaled
down for this run and a warning names the limit.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from edge_agent.config import Config

log = logging.getLogger(__name__)

FD_TARGET = 65536
# The daemon's own handles: model file, databases with WAL and SHM, the lock, gRPC's
# and asyncio's pollers and wake-up pipes, the metrics server, the cloud channel, the
# self-check child's pipes (27 measured when serving), and room to spare.
RESERVE_FDS = 64
MIN_PER_DOOR = 4


@dataclass(frozen=True)
class Caps:
    """Open connections allowed per door."""

    grpc_unix: int
    grpc_tcp: int
    http: int


def raise_fd_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard one; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, want, exc)
    return FD_TARGET if soft == resource.RLIM_INFINITY else int(soft)


def connection_caps(cfg: Config, fd_limit: int) -> Caps:
    """The configured bounds, scaled down where ``fd_limit`` cannot hold them all."""
    want = {
        "grpc_unix": cfg.server.max_connections,
        "grpc_tcp": cfg.server.max_connections if cfg.server.listen else 0,
        "http": cfg.http.max_connections if cfg.http.listen else 0,
    }
    total = sum(want.values())
    room = fd_limit - RESERVE_FDS
    if total <= room:
        return Caps(**want)
    scale = max(room, 0) / total
    got = {k: (max(MIN_PER_DOOR, int(v * scale)) if v else 0) for k, v in want.items()}
    log.warning(
        "the open-file limit (%d) leaves room for %d connections, not %d: bounds lowered for this run to %s "
        "(raise the limit: LimitNOFILE= in the systemd unit, ulimit -n)",
        fd_limit, max(room, 0), total, ", ".join(f"{k} {v}" for k, v in got.items() if v),
    )
    return Caps(**got)


def grpc_options(cfg: Config, max_connections: int) -> list[tuple[str, int]]:
    """gRPC server options for one door: message size, connections, streams, idle
    and handshake timeouts, keepalive (a dead peer is found within ~1.5 min)."""
    s = cfg.server
    return [
        ("grpc.max_receive_message_length", s.max_message_bytes),
        ("grpc.max_send_message_length", s.max_message_bytes),
        ("grpc.max_allowed_incoming_connections", max_connections),
        ("grpc.max_concurrent_streams", s.max_streams),
        ("grpc.max_connection_idle_ms", int(s.idle_timeout_s * 1000)),
        ("grpc.server_handshake_timeout_ms", int(s.handshake_timeout_s * 1000)),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]
