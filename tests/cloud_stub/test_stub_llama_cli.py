"""The llama backend on the shipped model: ``cloud-stub serve`` with fault flags on (Info,
a stream dropped after N deltas with the model freed for the next call, latency before
the first token), and a cancelled call freeing the model in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc
from stub_helpers import Result, generate, serving, start_stub, stop_stub

from cloud_stub.backends import LlamaBackend

pytestmark = pytest.mark.model

DROP_AFTER = 3
LATENCY_MS = 150


@pytest.fixture(scope="module")
def address(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("llama-stub")
    proc, addr = start_stub(
        ["--model", str(model_path), "--threads", "1", "--n-ctx", "512",
         "--fault-drop-after", str(DROP_AFTER), "--fault-latency-ms", str(LATENCY_MS)],
        tmp / "stub.log",
        timeout=120,
    )
    yield addr
    assert stop_stub(proc) == 0, (tmp / "stub.log").read_text()


def test_info(address: str, model_path: Path) -> None:
    async def main() -> cloud_pb2.InfoResponse:
        async with grpc.aio.insecure_channel(address) as ch:
            return await cloud_pb2_grpc.CloudInferenceStub(ch).Info(cloud_pb2.InfoRequest(), timeout=10)

    info = asyncio.run(main())
    assert (info.backend, info.model, info.context_length) == ("llama", model_path.name, 512)


def test_drop_after_n_deltas_and_the_model_is_freed(address: str) -> None:
    async def main() -> tuple[Result, Result, float]:
        async with grpc.aio.insecure_channel(address) as ch:
            first = await generate(ch, "Once upon a time", max_tokens=12, timeout=60)
            t0 = time.perf_counter()
            second = await generate(ch, "Once upon a time", max_tokens=12, timeout=60)
            return first, second, time.perf_counter() - t0

    first, second, elapsed = asyncio.run(main())
    for r in (first, second):
        assert r.code == grpc.StatusCode.UNAVAILABLE, r.details
        assert r.details == f"injected fault: stream dropped after {DROP_AFTER} deltas"
        assert len(r.deltas) == DROP_AFTER and r.done is None
    assert second.deltas == first.deltas  # greedy: the same start
    assert LATENCY_MS / 1000 <= elapsed < 20


def test_cancelled_call_frees_the_model(model_path: Path) -> None:
    """In-process, no faults: a long generation cancelled after its first delta stops
    within a step, so the next call does not wait for the 300 tokens it asked for."""

    async def main() -> tuple[Result, float, float]:
        backend = LlamaBackend(model_path, n_ctx=512, n_threads=1)
        async with serving(backend) as addr, grpc.aio.insecure_channel(addr) as ch:
            warm = await generate(ch, "Hello", max_tokens=8, timeout=60)  # also measures speed
            assert warm.done is not None and warm.done.usage.completion_tokens > 1
            per_token_s = 1 / max(warm.done.usage.tokens_per_s, 1e-3)
            stub = cloud_pb2_grpc.CloudInferenceStub(ch)
            req = cloud_pb2.CloudGenerateRequest(prompt="Count: one, two,")
            req.params.max_tokens = 300
            req.params.temperature = 0.0
            call = stub.Generate(req, timeout=120)
            async for _ in call:
                call.cancel()
                break
            t0 = time.perf_counter()
            r = await generate(ch, "Hello", max_tokens=2, timeout=60)
            return r, time.perf_counter() - t0, per_token_s

    r, elapsed, per_token_s = asyncio.run(main())
    assert r.code is None and r.done is not None, r.details
    assert elapsed < 100 * per_token_s  # far less than the 300 tokens of the cancelled call
