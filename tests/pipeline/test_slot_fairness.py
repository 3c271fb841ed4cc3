"""The model slots: capacity, order (interactive first, then background, first come
first served), the per-app limit, the bounded queue and cancelled waiters."""

from __future__ import annotations

import asyncio
import time

import pytest

from common.errors import ResourceExhausted
from edge_agent.pipeline.slot import ModelSlot


async def _holder(slot: ModelSlot, name: str, app: str, background: bool, order: list[str],
                  release: asyncio.Event) -> None:
    async with slot.hold(app, background):
        order.append(name)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_capacity_then_interactive_before_background_in_arrival_order() -> None:
    async def go() -> list[str]:
        slot = ModelSlot(depth=10, capacity=2)
        order: list[str] = []
        gates = {n: asyncio.Event() for n in ("a", "b", "bg1", "i1", "bg2", "i2")}
        tasks = []
        for name, bg in (("a", False), ("b", False), ("bg1", True), ("i1", False), ("bg2", True), ("i2", False)):
            tasks.append(asyncio.create_task(_holder(slot, name, name, bg, order, gates[name])))
            await _settle()
        assert order == ["a", "b"] and slot.active == 2 and slot.waiting == 4
        for name in ("a", "b", "i1", "i2", "bg1", "bg2"):
            gates[name].set()
            await _settle()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(go()) == ["a", "b", "i1", "i2", "bg1", "bg2"]


def test_one_app_cannot_take_every_slot_and_others_pass_it() -> None:
    async def go() -> tuple[list[str], int]:
        slot = ModelSlot(depth=10, capacity=3, per_app=2)
        order: list[str] = []
        gates = {n: asyncio.Event() for n in ("e1", "e2", "e3", "m1")}
        tasks = [asyncio.create_task(_holder(slot, n, "editor", False, order, gates[n])) for n in ("e1", "e2", "e3")]
        await _settle()
        tasks.append(asyncio.create_task(_holder(slot, "m1", "mail", False, order, gates["m1"])))
        await _settle()
        active = slot.active
        for g in gates.values():
            g.set()
        await asyncio.gather(*tasks)
        return order, active

    order, active = asyncio.run(go())
    assert active == 3  # e1, e2 and m1: the editor's third request waits for its own slot
    assert order[:3] == ["e1", "e2", "m1"] and order[3] == "e3"


def test_background_runs_when_no_interactive_waits_and_is_not_starved() -> None:
    async def go() -> list[str]:
        slot = ModelSlot(depth=10, capacity=1)
        order: list[str] = []
        gates = {n: asyncio.Event() for n in ("i0", "bg", "i1")}
        t = [asyncio.create_task(_holder(slot, "i0", "x", False, order, gates["i0"]))]
        await _settle()
        t.append(asyncio.create_task(_holder(slot, "bg", "y", True, order, gates["bg"])))
        await _settle()
        gates["i0"].set()
        await _settle()  # nothing interactive waits: the background request runs
        t.append(asyncio.create_task(_holder(slot, "i1", "x", False, order, gates["i1"])))
        await _settle()
        gates["bg"].set()
        gates["i1"].set()
        await asyncio.gather(*t)
        return order

    assert asyncio.run(go()) == ["i0", "bg", "i1"]


def test_full_queue_is_refused_with_a_hint_and_a_cancelled_waiter_frees_its_place() -> None:
    async def go() -> None:
        slot = ModelSlot(depth=1, capacity=1)
        order: list[str] = []
        gate = asyncio.Event()
        running = asyncio.create_task(_holder(slot, "r", "a", False, order, gate))
        await _settle()
        waiter = asyncio.create_task(_holder(slot, "w", "a", False, order, gate))
        await _settle()
        with pytest.raises(ResourceExhausted) as info:
            async with slot.hold("b"):
                pass
        assert info.value.retry_after_s is not None and info.value.retry_after_s > 0
        waiter.cancel()
        await _settle()
        assert slot.waiting == 0
        later = asyncio.create_task(_holder(slot, "l", "b", False, order, gate))
        await _settle()
        gate.set()
        await asyncio.gather(running, later)
        assert order == ["r", "l"] and slot.active == 0

    asyncio.run(go())


def test_the_first_retry_hint_of_a_burst_is_close_to_the_real_wait() -> None:
    """4 slots, 16 waiters, short answers after a warm-up that measured a step: the hint
    given to the first refused request is within a factor 2 of when it would really
    have got a slot (the old hint assumed every request ran a default-length answer)."""
    fixed_s, per_token_s, budget = 0.02, 0.005, 8
    hold_s = fixed_s + per_token_s * budget

    async def one(slot: ModelSlot) -> None:
        async with slot.hold("a", False, budget):
            await asyncio.sleep(hold_s)

    async def go() -> tuple[float, float]:
        slot = ModelSlot(depth=16, capacity=4)
        slot.seed(fixed_s, per_token_s)
        t0 = time.monotonic()
        burst = [asyncio.create_task(one(slot)) for _ in range(20)]
        await _settle()
        with pytest.raises(ResourceExhausted) as info:
            async with slot.hold("a", False, budget):
                pass
        hint = info.value.retry_after_s
        assert hint is not None
        await asyncio.gather(*burst)
        return hint, time.monotonic() - t0

    hint, drained = asyncio.run(go())
    assert drained / 2 <= hint <= drained * 2, (hint, drained)


def test_exclusive_waits_for_the_running_and_holds_back_the_new() -> None:
    """A live model switch: the running request finishes first, a request arriving
    meanwhile waits, keeps its place and runs after the switch."""

    async def main() -> list[str]:
        slot = ModelSlot(depth=4, capacity=2)
        order: list[str] = []
        release = asyncio.Event()

        async def running() -> None:
            async with slot.hold("a"):
                order.append("running starts")
                await release.wait()
                order.append("running ends")

        async def switch() -> None:
            async with slot.exclusive():
                order.append("switch")

        async def late() -> None:
            async with slot.hold("b"):
                order.append("late runs")

        r = asyncio.ensure_future(running())
        await asyncio.sleep(0)
        s = asyncio.ensure_future(switch())
        await asyncio.sleep(0)
        lt = asyncio.ensure_future(late())
        await asyncio.sleep(0)
        assert slot.waiting == 1 and order == ["running starts"]  # a free slot, yet the late one waits
        release.set()
        await asyncio.gather(r, s, lt)
        return order

    assert asyncio.run(main()) == ["running starts", "running ends", "switch", "late runs"]
