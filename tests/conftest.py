"""Shared fixtures: the real model file and helpers that start the real services as
subprocesses on free ports (port 0) and unix sockets in temporary directories."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped default GGUF model (assembled into the cache on first use)."""
    from common.model_files import default_model_path

    return default_model_path(progress=False)


@dataclass
class Service:
    """A running service subprocess and where it listens."""

    proc: subprocess.Popen[str]
    ready_line: str
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave it behind, then report the hang
            self.proc.wait(10)
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def grpc_target(self) -> str:
        """The gRPC address on the ready line (the agent's unix socket)."""
        return self.ready_line.split(" on ", 1)[1].split()[0].rstrip(";")

    @property
    def http_url(self) -> str:
        """The HTTP door's base URL on the ready line (``; openai on http://...``)."""
        m = re.search(r"openai on (http://\S+)", self.ready_line)
        assert m, self.ready_line
        return m.group(1)


def http_agent(tmp_path_factory: pytest.TempPathFactory, name: str, token: str) -> Iterator[Service]:
    """An agent with the HTTP door on loopback TCP and a fixed token, for a module
    fixture (``yield from``); stopped cleanly at the end."""
    svc = start_agent(tmp_path_factory.mktemp(name), EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_TOKEN=token)
    yield svc
    assert svc.stop() == 0, svc.log()


def openai_client(svc: Service, token: str) -> Iterator[Any]:
    """The official openai SDK on ``svc``'s HTTP door (``yield from`` in a fixture)."""
    import openai

    with openai.OpenAI(base_url=svc.http_url + "/v1", api_key=token, max_retries=0, timeout=120) as c:
        yield c


# Run ``python -m MODULE ARGS`` so that it dies with the test process (Linux
# PR_SET_PDEATHSIG, kept across exec): a failing or killed test run never leaves a
# service behind. The signal is set by a tiny launcher that then execs the module, not
# in a ``preexec_fn``: that would make subprocess fork (instead of spawn) a process
# whose gRPC threads' state the child inherits, which can kill the child before exec.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() == int(sys.argv[1]):\n"
    "    os.execv(sys.executable, [sys.executable, '-m', *sys.argv[2:]])\n"
)


def python_module(*args: str) -> list[str]:
    """The command line for ``python -m *args`` that dies with this process."""
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args]


def start_service(args: list[str], env: dict[str, str], marker: str, log_path: Path, timeout: float = 180) -> Service:
    """Run ``python -m <args>`` and wait for the stdout line containing ``marker``."""
    err = log_path.open("w")
    proc = subprocess.Popen(
        python_module(*args), env=env, stdout=subprocess.PIPE, stderr=err, text=True,
    )
    assert proc.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = box[0] if box else ""
    if marker not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{args[0]} did not become ready ({line!r}); log:\n{log_path.read_text(errors='replace')}")
    return Service(proc, line.strip(), log_path)


@dataclass
class Cloud:
    service: Service
    address: str
    token: str


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Cloud]:
    """A real cloud-stub with the llama backend on the shipped model."""
    tmp = tmp_path_factory.mktemp("cloud")
    token = secrets.token_hex(8)
    (tmp / "token").write_text(token)
    svc = start_service(
        ["cloud_stub.cli", "serve", "--listen", "127.0.0.1:0", "--token-file", str(tmp / "token"), "--threads", "1"],
        dict(os.environ), "listening on", tmp / "cloud.log",
    )
    yield Cloud(svc, svc.ready_line.split()[-1], token)
    svc.stop()


def agent_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EDGE_AGENT_CONFIG", None)
    env.update(EDGE_AGENT_DATA_DIR=str(data_dir), EDGE_AGENT_SOCKET=str(data_dir / "a.sock"))
    env.update(extra)
    return env


def start_agent(data_dir: Path, **extra: str) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_service(["edge_agent.cli.main", "serve"], agent_env(data_dir, **extra), "ready", data_dir / "agent.log")


def agent_token(svc: Service) -> str:
    """The bearer token of an agent started by ``start_agent`` (its TCP listeners need it)."""
    return (svc.log_path.parent / "token").read_text().strip()


def tcp_channel(target: str, token: str) -> Any:
    """A channel to an agent's TCP listener sending its bearer token on every call."""
    import grpc

    from common.rpc import with_bearer

    return with_bearer(grpc.insecure_channel(target), token)
