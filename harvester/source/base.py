"""What the runner needs from any source of titles (CSV, id list, discover listing)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from ..items import Title
from ..state import RunState, StateStore
from ..tmdb_client import TmdbClient
from .csv_rows import Stats


class Source(Protocol):
    stats: Stats  # counters of the last titles() pass, for the summary

    @property
    def is_local(self) -> bool:
        """True when count() is cheap enough to run before harvesting (for the progress total)."""
        ...

    def describe(self) -> str: ...

    async def identity(self) -> str:
        """Changes when the input does: part of the run's identity."""
        ...

    async def prepare(self, client: TmdbClient, state: RunState, store: StateStore, stop: Any) -> bool:
        """Work before titles() (discover enumerates); False when a stop cut it short."""
        ...

    async def count(self) -> int: ...

    def titles(self) -> AsyncGenerator[Title, None]:
        """Every selected title once, positions 0, 1, 2, ... in a deterministic order."""
        ...
