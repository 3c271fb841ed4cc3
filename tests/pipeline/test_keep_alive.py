"""Keep-alive on the fake engine: the model is freed after the idle time, loaded again
by the next request, never freed while a request holds it; 0 frees it after each
request, None keeps it; the durations parse as Ollama's do."""

from __future__ import annotations

import asyncio
import threading

import pytest

from common.duration import parse_keep_alive
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.fakes import MemoryStore, ScriptedEngine
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.service import AgentService
from edge_agent.pipeline.types import AskRequest, Outcome


def service(keep_alive_s: float | None) -> tuple[AgentService, ScriptedEngine]:
    engine = ScriptedEngine("one two three")
    return AgentService(engine, MemoryStore(), RoutingState(""), keep_alive_s=keep_alive_s), engine


async def answer(svc: AgentService) -> str:
    text = []
    async for ev in svc.generate(AskRequest("hello", SamplingParams(max_tokens=8), use_context=False)):
        if not isinstance(ev, Outcome):
            text.append(ev)
    return "".join(text)


async def until(cond, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def test_idle_model_is_freed_and_loaded_again_by_the_next_request() -> None:
    async def main() -> None:
        svc, engine = service(0.05)
        assert svc.model_state()["state"] == "ready"
        assert await answer(svc) == "one two three "
        assert svc.model_state()["expires_in_s"] >= 0
        await until(lambda: not engine.loaded)
        st = svc.model_state()
        assert (st["state"], st["unloads"], st["expires_in_s"]) == ("unloaded", 1, -1.0)
        assert await answer(svc) == "one two three "  # the same answer after a reload
        assert engine.loads == 1 and svc.model_state()["loads"] == 1
        await until(lambda: not engine.loaded)
        assert engine.unloads == 2
        await svc.close()

    asyncio.run(main())


def test_model_is_never_freed_while_a_request_holds_it() -> None:
    async def main() -> None:
        svc, engine = service(0.05)
        await answer(svc)  # ends: the timer starts
        engine.gate = threading.Event()
        task = asyncio.ensure_future(answer(svc))  # a request holds the model past the timer
        await until(lambda: len(engine.prompts) == 2)
        await asyncio.sleep(0.15)
        assert engine.loaded and engine.unloads == 0
        assert svc.model_state()["expires_in_s"] == -1.0  # nothing scheduled while in use
        engine.gate.set()
        assert await task == "one two three "
        await until(lambda: not engine.loaded)
        assert engine.unloads == 1
        await svc.close()

    asyncio.run(main())


def test_none_keeps_the_model() -> None:
    async def main() -> None:
        svc, engine = service(None)
        await answer(svc)
        await asyncio.sleep(0.05)
        assert engine.loaded and engine.unloads == 0
        assert svc.model_state()["keep_alive_s"] == -1.0
        await svc.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("30s", 30.0), ("500ms", 0.5), ("0", 0.0), (0, 0.0),
     ("2.5", 2.5), (300, 300.0), ("-1", None), (-1, None), ("-5m", None), ("1.5h", 5400.0)],
)
def test_durations_parse_as_ollama(text: str | int, seconds: float | None) -> None:
    assert parse_keep_alive(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m", "5x", "1h-3m", "nan", "--1", True])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_keep_alive(text)  # type: ignore[arg-type]
