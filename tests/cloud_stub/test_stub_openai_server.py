"""The ``openai`` backend against a real OpenAI-compatible server: llama-cpp-python's own
server (``python -m llama_cpp.server``) on the shipped model, on a free loopback port.

The streamed answer through cloud-stub must equal the server's own non-streamed answer
(greedy decoding), with usage and finish_reason; failures upstream become status codes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import python_module
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc
from stub_helpers import Result, generate, serving, start_stub, stop_stub

from cloud_stub.faults import FaultConfig, FaultyBackend
from cloud_stub.openai_compat import Api, OpenAIBackend

pytestmark = pytest.mark.model

PROMPT = "The capital of France is"
N_CTX = 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def upstream(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running ``llama_cpp.server`` (skipped when its extras are missing)."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    log_path = tmp_path_factory.mktemp("upstream") / "llama-server.log"
    port = _free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            python_module("llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
                          "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "1"),
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer /v1/models:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _reference(url: str, api: Api, prompt: str, max_tokens: int) -> tuple[str, str, dict[str, int]]:
    """The server's own non-streamed greedy answer: (text, finish_reason, usage)."""
    if api == "chat":
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0.0}
    else:
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
    r = httpx.post(f"{url}/v1/{'chat/completions' if api == 'chat' else 'completions'}", json=body, timeout=60)
    r.raise_for_status()
    choice = r.json()["choices"][0]
    text = choice["message"]["content"] if api == "chat" else choice["text"]
    return text or "", choice["finish_reason"], r.json()["usage"]


@dataclass
class Stub:
    address: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@pytest.fixture(scope="module")
def stub(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """``cloud-stub serve --backend openai`` in front of the upstream (model name discovered)."""
    tmp = tmp_path_factory.mktemp("stub")
    token = secrets.token_hex(8)
    (tmp / "token").write_text(token)
    proc, addr = start_stub(
        ["--backend", "openai", "--openai-url", upstream, "--token-file", str(tmp / "token"),
         "--n-ctx", str(N_CTX), "--price-in", "0.1", "--price-out", "0.2", "--max-tokens-limit", "16"],
        tmp / "stub.log",
    )
    yield Stub(addr, token)
    assert stop_stub(proc) == 0, (tmp / "stub.log").read_text()


def test_info_over_grpc(stub: Stub, model_path: Path) -> None:
    async def main() -> cloud_pb2.InfoResponse:
        async with grpc.aio.insecure_channel(stub.address) as ch:
            return await cloud_pb2_grpc.CloudInferenceStub(ch).Info(cloud_pb2.InfoRequest(), metadata=stub.metadata, timeout=10)

    info = asyncio.run(main())
    assert info.backend == "openai"
    assert info.model == str(model_path)  # what the upstream's /v1/models reports
    assert (info.context_length, info.max_tokens_limit) == (N_CTX, 16)
    assert (info.price_in_per_1k, info.price_out_per_1k) == (0.1, 0.2)


def _call(stub: Stub, prompt: str = PROMPT, max_tokens: int = 8) -> Result:
    async def main() -> Result:
        async with grpc.aio.insecure_channel(stub.address) as ch:
            return await generate(ch, prompt, max_tokens=max_tokens, metadata=stub.metadata, timeout=60)

    return asyncio.run(main())


def test_generate_matches_the_upstream_answer(stub: Stub, upstream: str) -> None:
    text, finish, usage = _reference(upstream, "completions", PROMPT, 8)
    r = _call(stub)
    assert r.code is None, r.details
    assert r.text == text and text.strip()
    assert r.done is not None
    assert r.done.finish_reason == finish == "length"
    assert r.done.usage.completion_tokens == usage["completion_tokens"] == 8
    assert r.done.usage.total_ms >= r.done.usage.ttft_ms > 0


def test_limits_are_enforced_before_the_upstream(stub: Stub) -> None:
    r = _call(stub, max_tokens=17)
    assert r.code == grpc.StatusCode.OUT_OF_RANGE and r.details.startswith("params.max_tokens:")


def test_prompt_beyond_the_upstream_context_is_unavailable(stub: Stub) -> None:
    # llama.cpp's server answers 200 and then ends the stream without data.
    r = _call(stub, prompt="word " * 1500)
    assert r.code == grpc.StatusCode.UNAVAILABLE and not r.deltas
    assert r.details == "upstream stream ended before the answer was complete"


def _in_process(upstream: str, api: Api, faults: FaultConfig | None = None, max_tokens: int = 8) -> Result:
    async def main() -> Result:
        backend = OpenAIBackend(upstream, api=api)
        await backend.discover_model()
        served = FaultyBackend(backend, faults) if faults else backend
        async with serving(served) as addr, grpc.aio.insecure_channel(addr) as ch:
            return await generate(ch, PROMPT, max_tokens=max_tokens, timeout=60)

    return asyncio.run(main())


def test_chat_api_matches_the_upstream_answer(upstream: str) -> None:
    text, finish, _ = _reference(upstream, "chat", PROMPT, 8)
    r = _in_process(upstream, "chat")
    assert r.code is None, r.details
    assert r.text == text
    assert r.done is not None and r.done.finish_reason == finish


def test_dropped_stream_then_the_upstream_serves_again(upstream: str) -> None:
    cut = _in_process(upstream, "completions", FaultConfig(drop_after=3), max_tokens=16)
    assert len(cut.deltas) == 3 and cut.done is None
    assert cut.code == grpc.StatusCode.UNAVAILABLE
    text, _, _ = _reference(upstream, "completions", PROMPT, 16)
    assert text.startswith(cut.text)
    whole = _in_process(upstream, "completions", max_tokens=16)
    assert whole.code is None and whole.text == text
