"""Fault injection: off by default; latency before the first token, a seeded error rate
and a dropped stream, each seen by a real gRPC client as the status a real failure gives."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from stub_helpers import Result, ScriptedBackend, generate, serving

from cloud_stub.backends import BackendError
from cloud_stub.cli import _parser
from cloud_stub.faults import FaultConfig, FaultyBackend, with_faults


def _run(backend: object, calls: int = 1) -> list[Result]:
    async def main() -> list[Result]:
        async with serving(backend) as addr, grpc.aio.insecure_channel(addr) as ch:  # type: ignore[arg-type]
            return [await generate(ch) for _ in range(calls)]

    return asyncio.run(main())


def test_off_by_default() -> None:
    inner = ScriptedBackend()
    assert not FaultConfig().active
    assert with_faults(inner, FaultConfig()) is inner
    args = _parser().parse_args(["serve"])
    cfg = FaultConfig(args.fault_latency_ms, args.fault_error_rate, args.fault_drop_after, args.fault_seed)
    assert cfg == FaultConfig()


def test_cli_flags_build_the_config() -> None:
    args = _parser().parse_args(
        ["serve", "--fault-latency-ms", "250", "--fault-error-rate", "0.3", "--fault-drop-after", "5", "--fault-seed", "7"]
    )
    cfg = FaultConfig(args.fault_latency_ms, args.fault_error_rate, args.fault_drop_after, args.fault_seed)
    assert cfg == FaultConfig(latency_ms=250.0, error_rate=0.3, drop_after=5, seed=7)
    assert isinstance(with_faults(ScriptedBackend(), cfg), FaultyBackend)


@pytest.mark.parametrize(
    "argv",
    [["--fault-error-rate", "1.5"], ["--fault-error-rate", "x"], ["--fault-latency-ms", "-1"], ["--fault-drop-after", "-2"]],
)
def test_cli_rejects_bad_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["serve", *argv])
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs", [{"error_rate": -0.1}, {"error_rate": 1.01}, {"latency_ms": float("nan")}, {"drop_after": -1}]
)
def test_config_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_latency_before_the_first_token() -> None:
    inner = ScriptedBackend()
    t0 = time.perf_counter()
    (slow,) = _run(FaultyBackend(inner, FaultConfig(latency_ms=300)))
    elapsed = time.perf_counter() - t0
    assert slow.code is None and slow.text == "Hello, world"
    assert elapsed >= 0.3
    assert len(inner.calls) == 1


def test_latency_is_measured_before_the_backend_starts() -> None:
    inner = ScriptedBackend()

    async def main() -> tuple[float, float]:
        backend = FaultyBackend(inner, FaultConfig(latency_ms=200))
        t0 = asyncio.get_running_loop().time()
        events = [e async for e in backend.generate("p", None)]  # type: ignore[arg-type]
        assert len(events) == 4
        return t0, inner.started_at[0]

    t0, started = asyncio.run(main())
    assert started - t0 >= 0.2


def test_error_rate_one_fails_every_call_zero_none() -> None:
    failing = _run(FaultyBackend(ScriptedBackend(), FaultConfig(error_rate=1.0)), calls=3)
    assert [r.code for r in failing] == [grpc.StatusCode.UNAVAILABLE] * 3
    assert all(r.details == "injected fault: call failed" and not r.deltas for r in failing)
    fine = _run(FaultyBackend(ScriptedBackend(), FaultConfig(error_rate=0.0, latency_ms=1)), calls=3)
    assert [r.code for r in fine] == [None] * 3


def _outcomes(seed: int, n: int = 40, rate: float = 0.5) -> list[bool]:
    backend = FaultyBackend(ScriptedBackend(), FaultConfig(error_rate=rate, seed=seed))

    async def one() -> bool:
        try:
            async for _ in backend.generate("p", None):  # type: ignore[arg-type]
                pass
        except BackendError:
            return False
        return True

    async def main() -> list[bool]:
        return [await one() for _ in range(n)]

    return asyncio.run(main())


def test_error_rate_is_seeded_and_roughly_the_fraction() -> None:
    a, b, c = _outcomes(1), _outcomes(1), _outcomes(2)
    assert a == b
    assert a != c
    failures = _outcomes(3, n=400, rate=0.25).count(False)
    assert 60 <= failures <= 140  # 100 expected; far outside for a wrong rate


def test_error_rate_over_grpc_matches_the_seeded_draws() -> None:
    expected = _outcomes(5, n=6)
    got = _run(FaultyBackend(ScriptedBackend(), FaultConfig(error_rate=0.5, seed=5)), calls=6)
    assert [r.code is None for r in got] == expected


def test_drop_after_n_deltas() -> None:
    inner = ScriptedBackend(deltas=[f"t{i} " for i in range(10)])
    (r,) = _run(FaultyBackend(inner, FaultConfig(drop_after=4)))
    assert r.deltas == ["t0 ", "t1 ", "t2 ", "t3 "]
    assert r.code == grpc.StatusCode.UNAVAILABLE
    assert r.details == "injected fault: stream dropped after 4 deltas"
    assert r.done is None
    assert inner.closed_early == 1  # the backend stream was stopped, not drained


def test_drop_after_zero_and_beyond_the_answer() -> None:
    (zero,) = _run(FaultyBackend(ScriptedBackend(), FaultConfig(drop_after=0)))
    assert zero.code == grpc.StatusCode.UNAVAILABLE and not zero.deltas
    (beyond,) = _run(FaultyBackend(ScriptedBackend(), FaultConfig(drop_after=10)))
    assert beyond.code is None and beyond.text == "Hello, world" and beyond.done is not None
