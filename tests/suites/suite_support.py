"""Shared machinery of the proof suites: the top-level test helpers, an in-process
cloud-stub (the real ``run_server`` and ``CloudServicer``) on a loopback port in a
background event loop, backend wrappers that record or script what the cloud does,
and a loopback TCP proxy that can cut connections or refuse them.

Kept in a uniquely named module (not a ``conftest.py``) so that ``from conftest import``
elsewhere in the test tree keeps resolving to ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from edgecloud.v1 import edge_agent_pb2 as pb

from cloud_stub.backends import Backend, BackendError, BackendInfo, Done, Event, Params
from cloud_stub.server import StubSettings, run_server
from common.chat import Prompt, as_text

TESTS = Path(__file__).resolve().parents[1]
LONG = os.environ.get("EDGECLOUD_LONG") == "1"


def scales(default: Any, long: Any, name: str = "") -> list[Any]:
    """Parameters for a suite's default count and its long variant; the long one is
    marked ``slow`` and runs only with ``EDGECLOUD_LONG=1``."""
    skip = pytest.mark.skipif(not LONG, reason="long variant: set EDGECLOUD_LONG=1")
    return [pytest.param(default, id="default"), pytest.param(long, id="long", marks=[pytest.mark.slow, skip])]


def _top_conftest() -> ModuleType:
    name = "edgecloud_tests_top_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_top = _top_conftest()
Service = _top.Service
start_agent: Callable[..., Any] = _top.start_agent
start_service: Callable[..., Any] = _top.start_service
agent_token: Callable[[Any], str] = _top.agent_token
tcp_channel: Callable[[str, str], Any] = _top.tcp_channel


def stop_service(svc: Any, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Stop a started service; one that does not stop in time is killed (and reported)."""
    try:
        return int(svc.stop(sig, timeout))
    except subprocess.TimeoutExpired:
        svc.proc.kill()
        svc.proc.wait(10)
        raise AssertionError(f"the service did not stop within {timeout:.0f}s; log tail:\n{svc.log()[-3000:]}") from None


def agent_target(svc: Any) -> str:
    """The unix-socket target of a started agent, from its ready line."""
    return str(svc.ready_line.split(" on ", 1)[1].split(" and ")[0].split(";")[0])


def agent_tcp(svc: Any) -> str:
    """The loopback TCP address of a started agent (it must listen on one)."""
    return str(svc.ready_line.split(" and ", 1)[1].split(";")[0])


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def done_of(msgs: list[pb.GenerateResponse]) -> tuple[str, pb.GenerateDone]:
    """(answer text, final message); asserts the stream ends with exactly one ``done``."""
    assert msgs, "empty stream"
    assert msgs[-1].HasField("done"), "the stream did not end with done"
    assert sum(m.HasField("done") for m in msgs) == 1
    return "".join(m.delta for m in msgs[:-1]), msgs[-1].done


# -- backends ---------------------------------------------------------------------------


class Shared:
    """A backend used by several servers in turn: ``aclose`` does nothing."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def info(self) -> BackendInfo:
        return self.inner.info()

    def generate(self, prompt: str, params: Params) -> AsyncGenerator[Event, None]:
        return self.inner.generate(prompt, params)

    async def aclose(self) -> None:
        return None


PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")


class Recording:
    """Records every text it receives (the prompt, then each stop sequence and the JSON
    schema, each after a NUL byte, as UTF-8), then runs ``inner``.

    With ``echo``, the answer starts with every placeholder found in the prompt, so
    the caller can check that the edge agent restores the originals.
    """

    def __init__(self, inner: Backend, *, echo: bool = False) -> None:
        self.inner = inner
        self.echo = echo
        self.prompts: list[bytes] = []
        self._lock = threading.Lock()

    def info(self) -> BackendInfo:
        return self.inner.info()

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.prompts)

    async def generate(self, prompt: Prompt, params: Params) -> AsyncGenerator[Event, None]:
        text = as_text(prompt)  # a conversation's contents, joined
        with self._lock:
            schema = [params.json_schema] if params.json_schema else []
            self.prompts.append("\x00".join([text, *params.stop, *schema]).encode("utf-8"))
        if self.echo:
            found = list(dict.fromkeys(PLACEHOLDER.findall(text)))
            if found:
                # Split each placeholder over two deltas: restoration must cope.
                for ph in found:
                    yield ph[:3]
                    yield ph[3:] + " "
        async for ev in self.inner.generate(prompt, params):
            yield ev

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class ScriptState:
    """What ``Scripted`` does now, and what it saw."""

    mode: str = "ok"  # ok | unavailable | internal | slow | truncated
    slow_s: float = 30.0
    calls: int = 0
    cancel_after_s: list[float] = field(default_factory=list)


class Scripted:
    """A backend whose behaviour is switched by the test: healthy (the real model),
    UNAVAILABLE, INTERNAL (an unexpected exception), slower than any deadline, or a
    stream that ends without its final message."""

    def __init__(self, inner: Backend, state: ScriptState) -> None:
        self.inner = inner
        self.state = state

    def info(self) -> BackendInfo:
        return self.inner.info()

    async def generate(self, prompt: str, params: Params) -> AsyncGenerator[Event, None]:
        st = self.state
        st.calls += 1
        mode = st.mode
        if mode == "unavailable":
            raise BackendError("scripted outage")
        if mode == "internal":
            raise RuntimeError("scripted crash inside the backend")
        if mode == "slow":
            t0 = time.monotonic()
            try:
                await asyncio.sleep(st.slow_s)
            except asyncio.CancelledError:
                st.cancel_after_s.append(time.monotonic() - t0)
                raise
            yield "too late"
            yield Done(1, 1, st.slow_s * 1000, st.slow_s * 1000, "length")
            return
        if mode == "truncated":
            yield "half an answer"
            return
        async for ev in self.inner.generate(prompt, params):
            yield ev

    async def aclose(self) -> None:
        return None


# -- an in-process cloud ------------------------------------------------------------------


class LoopThread:
    """An asyncio event loop in a daemon thread; ``call`` runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class InProcessCloud:
    """The real cloud-stub server code around ``backend``, on 127.0.0.1:0."""

    def __init__(self, backend: Backend, token: str) -> None:
        self.backend = backend
        self.token = token
        self.port = 0
        self._lt = LoopThread()
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        def on_ready(port: int) -> None:
            self.port = port
            ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await run_server(backend, StubSettings(token=token), "127.0.0.1:0", ready=on_ready, stop_event=self._stop, grace_s=1.0)

        self._done = self._lt.submit(main())
        if not ready.wait(60):
            raise RuntimeError(f"in-process cloud did not start: {self._done}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._stop is not None:
            self._lt.loop.call_soon_threadsafe(self._stop.set)
            self._done.result(30)
        self._lt.close()


class GarbageCloud:
    """A gRPC server on CloudInference whose Generate/Info answers are bytes that are
    not the declared protobuf messages (a broken or hostile cloud)."""

    def __init__(self) -> None:
        self._lt = LoopThread()
        self.port = self._lt.call(self._start())

    async def _start(self) -> int:
        rng = random.Random(7)

        async def generate(request: bytes, context: grpc.aio.ServicerContext) -> AsyncGenerator[bytes, None]:
            yield bytes([0x0A, 0x05]) + b"hello"  # a valid delta first
            yield bytes(rng.randrange(256) for _ in range(3)) + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

        async def info(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"

        handler = grpc.method_handlers_generic_handler(
            "edgecloud.v1.CloudInference",
            {
                "Generate": grpc.unary_stream_rpc_method_handler(generate, request_deserializer=None, response_serializer=None),
                "Info": grpc.unary_unary_rpc_method_handler(info, request_deserializer=None, response_serializer=None),
            },
        )
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return int(port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._lt.call(self._server.stop(0.5))
        self._lt.close()


class JunkTcp:
    """A TCP listener that answers any connection with random bytes and closes it."""

    def __init__(self) -> None:
        self._lt = LoopThread()
        self.port = self._lt.call(self._start())

    async def _start(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(os.urandom(64) + b"HTTP/1.1 200 OK\r\n\r\nnot grpc")
            try:
                await writer.drain()
                await asyncio.sleep(0.05)
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        self._lt.call(close())
        self._lt.close()


# -- a loopback TCP proxy that can cut connections -----------------------------------------


class Proxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; can cut every connection after a
    number of bytes from the server, or stop listening (connection refused)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.cut_after: tuple[int, int] | None = None  # random byte budget per connection
        self.cuts = 0
        self.connections = 0
        self._rng = random.Random(11)
        self._writers: set[asyncio.StreamWriter] = set()
        self._lt = LoopThread()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        self.port = self._lt.call(self._listen())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        host, port = self.upstream.rsplit(":", 1)
        try:
            up_r, up_w = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        budget = self._rng.randint(*self.cut_after) if self.cut_after else None
        self._writers.update((writer, up_w))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            try:
                while True:
                    data = await src.read(4096)
                    if not data:
                        break
                    if limit is not None and sent + len(data) > limit:
                        dst.write(data[: max(0, limit - sent)])
                        self.cuts += 1
                        break
                    dst.write(data)
                    sent += len(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                for w in (writer, up_w):
                    w.close()

        await asyncio.gather(pump(reader, up_w, None), pump(up_r, writer, budget))
        self._writers.difference_update((writer, up_w))

    def set(self, *, upstream: str | None = None, cut_after: tuple[int, int] | None = None) -> None:
        """Change the upstream and the cut budget; open connections are dropped so the
        next call connects afresh under the new settings."""

        async def apply() -> None:
            if upstream is not None:
                self.upstream = upstream
            self.cut_after = cut_after
            for w in list(self._writers):
                w.close()

        self._lt.call(apply())

    def stop_listening(self) -> None:
        """Refuse new connections and close the open ones."""

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()

        self._lt.call(close())

    def listen_again(self) -> None:
        self._lt.call(self._listen())

    def close(self) -> None:
        try:
            self.stop_listening()
        finally:
            self._lt.close()
