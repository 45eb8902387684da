"""What the runner needs from any source of titles (CSV, id list, discover listing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..items import Title
from ..lake.lease import Lease
from ..lake.state import RunState, StateStore
from ..tmdb.client import TmdbClient
from .counts import InputCounts


@dataclass(frozen=True)
class Prepare:
    """What a source may use before titles(): TMDB, the run's state and the right to write."""

    client: TmdbClient
    state: RunState
    store: StateStore
    lease: Lease
    stop: asyncio.Event
    # Returns once the harvest of that name has ended, if this process runs it too (fleet.py), else at
    # once: a people harvest reads what its `from` harvest holds only after that.
    ended: Callable[[str], Awaitable[None]] | None = None


class Source(Protocol):
    stats: InputCounts  # counters of the last titles() pass, for the summary

    @property
    def count_is_cheap(self) -> bool:
        """Whether count() may run before harvesting (for the progress total): a local file or
        a listing already enumerated, not an object on S3 that would be downloaded twice."""
        ...

    @property
    def offline(self) -> bool:
        """Whether prepare() needs neither TMDB nor a write (the input is the list itself): then it
        and count() come before TMDB's first request, which the lookups follow at once."""
        ...

    def describe(self) -> str: ...

    async def identity(self) -> str:
        """Changes when the input does: part of the run's identity."""
        ...

    async def prepare(self, ctx: Prepare) -> bool:
        """Work before titles() (discover enumerates its listing); False when a stop cut it short.
        Sources whose input is the list itself have nothing to do."""
        ...

    async def count(self) -> int: ...

    def titles(self) -> AsyncGenerator[Title, None]:
        """Every selected title once, positions 0, 1, 2, ... in a deterministic order."""
        ...
