"""Many objects read in order, a bounded number of reads in flight.

The reads overlap the store's latency; the results are used in the order given, also while `use`
awaits (a checkpoint overlaps the next reads); at most `ahead` bodies are held, however many objects
there are. One window for every such pass: a completing run's per-commit records (selection.py), the
audit (audit.py), a people harvest's read of another harvest's objects (source/held.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")


async def in_order(
    items: Iterable[J],
    read: Callable[[J], Coroutine[Any, Any, R]],
    use: Callable[[J, R], Awaitable[bool]],
    ahead: int,
) -> bool:
    """`read` each item, `ahead` at a time, and `use` each result in the items' order; False as soon
    as `use` says stop (the reads in flight are cancelled), True once every item was used. What a
    read raises ends the pass (in an ExceptionGroup, as from any TaskGroup)."""
    async with asyncio.TaskGroup() as tg:
        window: deque[tuple[J, asyncio.Task[R]]] = deque()
        pending = iter(items)
        while True:
            while len(window) < ahead:
                try:
                    item = next(pending)
                except StopIteration:
                    break
                window.append((item, tg.create_task(read(item))))
            if not window:
                return True
            item, task = window.popleft()
            if not await use(item, await task):
                for _, rest in window:
                    rest.cancel()  # stopped: what is in flight is not wanted
                return False
