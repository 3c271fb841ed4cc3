"""The thread -> asyncio bridge: a blocking iterator consumed from the event loop.

Model work blocks for milliseconds per step, so it runs in a worker thread and its items
cross to the loop through a queue. When the consumer stops early (``break``, an error,
cancellation), the producer's ``cancelled()`` turns true and the bridge waits for the
thread to finish its step, so the next user of the worker finds it idle.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")


async def iterate_in_thread(
    executor: Executor | None,
    produce: Callable[[Callable[[], bool]], Iterator[T]],
    *,
    merge: Callable[[T, T], T | None] | None = None,
) -> AsyncIterator[T]:
    """Yield what ``produce(cancelled)`` yields, produced in ``executor``.

    ``merge(a, b)``: items that piled up while the consumer was busy may be joined into
    one (return None to keep them apart), so a slow client gets fewer, larger messages.
    An exception in the producer is raised here, in the consumer.
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[T] = asyncio.Queue()
    state: list[BaseException | None] = []  # set once: None at the end, or the error
    arrived = asyncio.Event()
    stop = threading.Event()

    def put(item: T) -> None:
        items.put_nowait(item)
        arrived.set()

    def finish(error: BaseException | None) -> None:
        state.append(error)
        arrived.set()

    def work() -> None:
        error: BaseException | None = None
        try:
            for item in produce(stop.is_set):
                loop.call_soon_threadsafe(put, item)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, raised there
            error = exc
        finally:
            loop.call_soon_threadsafe(finish, error)

    fut = loop.run_in_executor(executor, work)
    try:
        held: list[T] = []
        while True:
            if not held and items.empty():
                if state:
                    break
                arrived.clear()
                await arrived.wait()
                continue
            item = held.pop() if held else items.get_nowait()
            while merge is not None and not items.empty():
                joined = merge(item, nxt := items.get_nowait())
                if joined is None:
                    held.append(nxt)
                    break
                item = joined
            yield item
        if state and state[0] is not None:
            raise state[0]
    finally:
        stop.set()
        await asyncio.shield(fut)
