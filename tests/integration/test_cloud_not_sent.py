"""The cloud client against an address where nothing listens: the failure says that
nothing was sent (the ledger records ``not_sent``), at once and retryable."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from edge_agent.adapters.cloud import CloudClient
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.ports import CloudFailure


def _closed_port() -> int:
    with socket.socket() as s:  # port 0: a free port, closed again at once
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_fails_at_once_saying_nothing_was_sent() -> None:
    async def main() -> CloudFailure:
        client = CloudClient(f"127.0.0.1:{_closed_port()}", "token")
        try:
            with pytest.raises(CloudFailure) as exc:
                async for _ in client.generate("r1", "hello", SamplingParams(max_tokens=2), timeout_s=10):
                    pass
            assert client.breaker.state == "closed" and client.breaker._failures == 1
            return exc.value
        finally:
            await client.close()

    t0 = time.perf_counter()
    failure = asyncio.run(main())
    assert not failure.sent and failure.retryable and not failure.started
    assert "unavailable" in failure.reason
    assert time.perf_counter() - t0 < 5  # refused, not waited out
