"""Fault injection for tests and demos, off by default.

``FaultyBackend`` wraps any backend and, per ``Generate`` call, can
* fail the call outright with UNAVAILABLE (a fraction ``error_rate`` of calls),
* add latency before the first token (``latency_ms``),
* drop the stream with UNAVAILABLE after ``drop_after`` text deltas.

Draws come from one ``random.Random(seed)``, so a seeded run fails the same calls.
Faults surface as ``BackendError``, the same way a real upstream failure does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from cloud_stub.backends import Backend, BackendError, BackendInfo, Done, Event, Params
from common.chat import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultConfig:
    """What to inject; the default injects nothing."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    drop_after: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.latency_ms >= 0:  # also rejects NaN
            raise ValueError(f"fault latency must be >= 0 ms, not {self.latency_ms}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"fault error rate must be in [0, 1], not {self.error_rate}")
        if self.drop_after is not None and self.drop_after < 0:
            raise ValueError(f"fault drop-after must be >= 0 deltas, not {self.drop_after}")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.error_rate > 0 or self.drop_after is not None


class FaultyBackend:
    """A backend wrapper that injects the faults of a ``FaultConfig``."""

    def __init__(self, inner: Backend, config: FaultConfig) -> None:
        self._inner = inner
        self._config = config
        self._rng = random.Random(config.seed)

    def info(self) -> BackendInfo:
        return self._inner.info()

    async def generate(self, prompt: Prompt, params: Params) -> AsyncGenerator[Event, None]:
        cfg = self._config
        if cfg.error_rate > 0 and self._rng.random() < cfg.error_rate:
            log.info("fault injected: call failed")
            raise BackendError("injected fault: call failed")
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        drop = cfg.drop_after
        if drop == 0:
            raise _dropped(0)
        deltas = 0
        async with aclosing(self._inner.generate(prompt, params)) as events:
            async for event in events:
                yield event
                if drop is not None and not isinstance(event, Done):
                    deltas += 1
                    if deltas >= drop:
                        raise _dropped(deltas)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _dropped(deltas: int) -> BackendError:
    log.info("fault injected: stream dropped after %d deltas", deltas)
    return BackendError(f"injected fault: stream dropped after {deltas} deltas")


def with_faults(backend: Backend, config: FaultConfig) -> Backend:
    """``backend`` itself when ``config`` injects nothing, else a ``FaultyBackend``."""
    return FaultyBackend(backend, config) if config.active else backend
