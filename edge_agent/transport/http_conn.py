"""The HTTP door's connections: how many, how long, whose.

uvicorn (HTTP/1.1 through h11) serves the door; this module adds the bounds it does
not have:

* ``AcceptLoop`` accepts one connection at a time: a unix-socket peer whose uid
  (``SO_PEERCRED``) is not ours is closed; at ``max_connections`` the connection that
  has waited longest without a request being answered is closed to make room (so a
  flood of idle or slow connections cannot lock real clients out: theirs send a
  request within a millisecond of connecting), and when every connection is busy
  answering, the new one gets ``503`` with ``Retry-After`` and is closed before the
  next accept. A flood never holds more handles than the bound plus one. (asyncio's own accept loop takes
  up to a whole backlog of connections per wake-up, several times over before the
  first is seen: 2048 handles past any bound with uvicorn's default backlog.) An
  accept that fails for want of handles waits a little and is counted, not logged
  once per attempt;
* ``GuardedH11`` gives a connection ``read_timeout_s`` to send a whole request (head
  and body) after it opens and after each response; one that sends nothing, or its
  headers or body a byte at a time, is closed then (uvicorn alone keeps a connection
  that never completes a request head forever). A request being answered is never cut.

Refusals are logged at most once per ``_LOG_EVERY_S`` per reason, with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge_agent.transport.auth import peer_uid

log = logging.getLogger(__name__)
_LOG_EVERY_S = 10.0
_ACCEPT_PAUSE_S = 0.05  # after an accept failed for want of handles or memory
_OUT_OF_HANDLES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_LISTENER_GONE = {errno.EBADF, errno.EINVAL, errno.ENOTSOCK}


@dataclass(frozen=True)
class ConnLimits:
    """The bounds of one door."""

    max_connections: int
    read_timeout_s: float
    owner_uid: int | None = None  # unix socket: the only uid let in; None: no check


class Tally:
    """Counts events by reason, logging one line per reason per interval."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def note(self, reason: str, detail: str) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        now = time.monotonic()
        last = self._last.get(reason)
        if last is None or now - last >= _LOG_EVERY_S:
            since = "" if last is None else f" in the last {now - last:.0f} s"
            log.warning("HTTP door: %s, %d time(s)%s: %s", reason, self._counts[reason], since, detail)
            self._last[reason] = now
            self._counts[reason] = 0


def busy_response(limit: int) -> bytes:
    """The whole 503 answer to a connection over the bound."""
    body = json.dumps({"error": {
        "message": f"connections: this server holds at most {limit} open connections ([http] max_connections); retry later",
        "type": "rate_limit_error", "param": None, "code": None,
    }}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"retry-after: 1\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class GuardedH11(H11Protocol):
    """H11Protocol with the door's read deadline; ``limits`` set by ``guarded_protocol``."""

    limits: ClassVar[ConnLimits]
    tally: ClassVar[Tally]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self.waiting_since = 0.0  # when it opened or last finished a response

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self.waiting_since = self.loop.time()
        self._deadline = self.loop.call_later(self.limits.read_timeout_s, self._expire)

    def evict(self) -> None:
        """Close it to make room for a new connection (it has no request being answered)."""
        self._disarm()
        self.transport.close()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def answering(self) -> bool:
        """A whole request has arrived and its response is not finished."""
        c = self.cycle
        return c is not None and not c.response_complete and (c.response_started or not c.more_body)

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.answering():
            return  # the response re-arms the deadline when it completes
        self.tally.note("closed slow or idle connections",
                        f"no whole request within {self.limits.read_timeout_s:g} s ([http] read_timeout_s)")
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(limits: ConnLimits) -> type[GuardedH11]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these bounds."""
    return type("DoorProtocol", (GuardedH11,), {"limits": limits, "tally": Tally()})


class AcceptLoop:
    """Accepts on ``sock`` one connection at a time (see the module docstring); has the
    ``close``/``wait_closed`` of an ``asyncio.Server``, which uvicorn's shutdown uses."""

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol], connections: set[Any],
                 limits: ConnLimits, tally: Tally) -> None:
        self._sock = sock
        self._factory = factory
        self._connections = connections
        self._limits = limits
        self._tally = tally
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:
                if exc.errno in _LISTENER_GONE:
                    return
                self._tally.note("accept failed", f"{exc.strerror}; new connections wait")
                if exc.errno in _OUT_OF_HANDLES:
                    await asyncio.sleep(_ACCEPT_PAUSE_S)
                continue
            if self._admit(conn):
                try:
                    await loop.connect_accepted_socket(self._factory, sock=conn)
                except OSError as exc:
                    conn.close()
                    self._tally.note("connection failed at setup", str(exc))

    def _admit(self, conn: socket.socket) -> bool:
        """Refuse another user's process and connections over the bound, closing them."""
        lim = self._limits
        if lim.owner_uid is not None:
            uid = peer_uid(conn)
            if uid is not None and uid != lim.owner_uid:
                self._tally.note("refused another user's connection on the unix socket", f"peer uid {uid}")
                conn.close()
                return False
        if len(self._connections) < lim.max_connections:
            return True
        waiting = [c for c in self._connections
                   if isinstance(c, GuardedH11) and not c.transport.is_closing() and not c.answering()]
        if waiting:  # the one waiting longest for its request goes: a flood of idle connections never locks out real ones
            min(waiting, key=lambda c: c.waiting_since).evict()
            self._tally.note("connection limit reached", f"{lim.max_connections} open ([http] max_connections); "
                             "the connection idle longest was closed for the new one")
            return True
        self._tally.note("connection limit reached", f"{lim.max_connections} open, all answering ([http] max_connections); new ones get 503")
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(busy_response(lim.max_connections))
        conn.close()
        return False

    def close(self) -> None:
        self._task.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class DoorServer(uvicorn.Server):
    """uvicorn on sockets bound by the daemon, accepting through ``AcceptLoop``; the
    daemon owns the signals."""

    def __init__(self, config: uvicorn.Config, limits: ConnLimits) -> None:
        super().__init__(config)
        self.limits = limits

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        config = self.config
        protocol = guarded_protocol(self.limits)
        config.http_protocol_class = protocol

        def create_protocol() -> asyncio.Protocol:
            return protocol(config=config, server_state=self.server_state, app_state=self.lifespan.state)

        loops: list[Any] = [
            AcceptLoop(sock, create_protocol, self.server_state.connections, self.limits, protocol.tally)
            for sock in sockets or ()
        ]
        self.servers = loops  # uvicorn's shutdown calls close() and wait_closed() on each
        self.started = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return
