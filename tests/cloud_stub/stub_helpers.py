"""Helpers for the cloud-stub tests: a scripted backend for logic tests, an in-process
server on port 0 (the real ``run_server``), a client that collects a stream, and the
``cloud-stub serve`` subprocess on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from conftest import python_module
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc

from cloud_stub.backends import Backend, BackendInfo, Done, Event, Params
from cloud_stub.server import StubSettings, run_server


class ScriptedBackend:
    """Yields the given deltas (``delay_s`` apart), then a Done; records what it saw."""

    def __init__(self, deltas: Sequence[str] = ("Hello", ",", " world"), delay_s: float = 0.0) -> None:
        self.deltas = tuple(deltas)
        self.delay_s = delay_s
        self.calls: list[tuple[str, Params]] = []
        self.started_at: list[float] = []
        self.closed_early = 0
        self.closed = False

    def info(self) -> BackendInfo:
        return BackendInfo(model="scripted", context_length=2048, backend="scripted")

    async def generate(self, prompt: str, params: Params) -> AsyncGenerator[Event, None]:
        self.calls.append((prompt, params))
        self.started_at.append(asyncio.get_running_loop().time())
        finished = False
        try:
            for d in self.deltas:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield d
            finished = True
            yield Done(prompt_tokens=3, completion_tokens=len(self.deltas), ttft_ms=1.0, total_ms=2.0, finish_reason="stop")
        finally:
            if not finished:
                self.closed_early += 1

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Result:
    deltas: list[str] = field(default_factory=list)
    done: cloud_pb2.CloudDone | None = None
    code: grpc.StatusCode | None = None
    details: str = ""

    @property
    def text(self) -> str:
        return "".join(self.deltas)


@contextlib.asynccontextmanager
async def serving(
    backend: Backend,
    settings: StubSettings | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> AsyncIterator[str]:
    """Run the real server on 127.0.0.1:0 in this event loop; yields ``host:port``."""
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_server(
            backend, settings or StubSettings(), "127.0.0.1:0",
            ready=port.set_result, stop_event=stop, grace_s=0.5, credentials=credentials,
        )
    )
    waiters: set[asyncio.Future[Any]] = {task, port}
    done, _ = await asyncio.wait(waiters, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the startup error
    assert port.done(), "server did not start"
    try:
        yield f"127.0.0.1:{port.result()}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def generate(
    channel: grpc.aio.Channel,
    prompt: str = "Hi",
    max_tokens: int = 8,
    metadata: Sequence[tuple[str, str]] = (),
    timeout: float = 10,
) -> Result:
    """Call Generate and collect the stream; a failure status is recorded, not raised."""
    stub = cloud_pb2_grpc.CloudInferenceStub(channel)
    req = cloud_pb2.CloudGenerateRequest(request_id="t", prompt=prompt)
    req.params.max_tokens = max_tokens
    req.params.temperature = 0.0
    out = Result()
    try:
        async for msg in stub.Generate(req, metadata=tuple(metadata), timeout=timeout):
            if msg.HasField("done"):
                out.done = msg.done
            else:
                out.deltas.append(msg.delta)
    except grpc.aio.AioRpcError as exc:
        out.code = exc.code()
        out.details = exc.details() or ""
    return out


def start_stub(args: Sequence[str], log_path: Path, timeout: float = 60) -> tuple[subprocess.Popen[str], str]:
    """Run ``cloud-stub serve ARGS --listen 127.0.0.1:0``; returns the process and ``host:port``
    read from its first stdout line (which must be ``listening on HOST:PORT``)."""
    err = log_path.open("w")
    proc = subprocess.Popen(
        python_module("cloud_stub.cli", "serve", "--listen", "127.0.0.1:0", *args),
        stdout=subprocess.PIPE, stderr=err, text=True,
    )
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    if not line.startswith("listening on 127.0.0.1:"):
        stop_stub(proc)
        raise RuntimeError(f"cloud-stub did not start ({line!r}):\n{log_path.read_text(errors='replace')}")
    return proc, line.split()[-1]


def stop_stub(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
