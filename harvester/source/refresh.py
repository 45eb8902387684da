"""A refresh: only what changed, entered or left since the harvest's last complete run.

    changed   ids TMDB's change lists name from the start of the last complete run to today, kept when
              the harvest holds them (its selection, lake/selection.py): fetched again
    entered   ids the source selects now and the harvest does not hold (new export lines, new discover
              results): fetched. A CSV or id list is its own selection: a changed file is a new harvest.
    left      ids the harvest holds and the source no longer selects: recorded as `removed` outcomes,
              not deleted from earlier objects (no request)

The work list is planned once, at the start of the refresh run, and spooled beside the state like a
discover listing, so a resumed refresh harvests the same positions and reads no change list again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

from ..errors import SourceError
from ..items import Media, Refresh, Title
from ..lake.layout import spool_key, spool_prefix
from ..lake.selection import Selection
from ..lake.sink import Sink
from ..lake.state import RefreshPlan, RunState
from .base import Prepare, Source
from .changes import ChangeCounts, changed_ids
from .counts import InputCounts

log = logging.getLogger(__name__)

SPOOL_KIND = "refresh"
SPOOL_PART = 10_000  # titles per spool object
_KINDS: dict[bytes, Refresh] = {b"c": "changed", b"e": "entered", b"l": "left"}


@runtime_checkable
class Listing(Protocol):
    """A source whose selection is a TMDB listing (export, discover): a refresh compares it with what
    the harvest holds to find what entered and what left."""

    def listing(self, ctx: Prepare) -> AsyncGenerator[int, None]:
        """The TMDB ids the source selects now."""
        ...


class RefreshSource:
    def __init__(
        self,
        inner: Source,
        media: Media,
        sink: Sink,
        since: datetime,
        base: Selection,
        today: date | None = None,
    ) -> None:
        self._inner = inner
        self.media = media
        self._sink = sink
        self._since = since
        self._base = base
        self._today = today or datetime.now(UTC).date()
        self._state: RunState | None = None
        self.stats = InputCounts()

    count_is_cheap = True  # the plan says how many

    def describe(self) -> str:
        return f"refresh since {self._since.isoformat(timespec='seconds')} of {self._inner.describe()}"

    async def identity(self) -> str:
        return await self._inner.identity()

    async def prepare(self, ctx: Prepare) -> bool:
        """Plan the work list and spool it, unless an earlier invocation did; False if stopped."""
        state = self._state = ctx.state
        if state.source.plan is not None:
            return True
        for key in await self._sink.list_keys(spool_prefix(state, SPOOL_KIND)):
            await self._sink.delete(key)  # a cut-short plan starts over
        counts = ChangeCounts()
        changed = Selection()
        async for tmdb_id in changed_ids(ctx.client, self.media, self._since.date(), self._today, counts):
            if ctx.stop.is_set():
                return False
            if tmdb_id in self._base:
                changed.add(tmdb_id)
        entered, left = Selection(), Selection()
        if isinstance(self._inner, Listing):
            now = Selection()
            async for tmdb_id in self._inner.listing(ctx):
                if ctx.stop.is_set():
                    return False
                now.add(tmdb_id)
            for tmdb_id in now.minus(self._base):
                entered.add(tmdb_id)
            for tmdb_id in self._base.minus(now):
                left.add(tmdb_id)
        lines = [
            *(b"%d\tl\n" % i for i in left),
            *(b"%d\tc\n" % i for i in changed.minus(left)),
            *(b"%d\te\n" % i for i in entered),
        ]
        writer = ctx.lease.token
        parts = 0
        for start in range(0, len(lines), SPOOL_PART):
            ctx.lease.check()
            part = b"".join(lines[start : start + SPOOL_PART])
            await self._sink.put(spool_key(state, writer, parts, SPOOL_KIND), part, "text/plain")
            parts += 1
        state.source.plan = plan = RefreshPlan(
            writer=writer,
            parts=parts,
            titles=len(lines),
            changed=len(lines) - len(entered) - len(left),
            entered=len(entered),
            left=len(left),
            pages=counts.pages,
        )
        await ctx.store.save(state)
        log.info(
            "refresh since %s: %d changed, %d entered, %d left (%d change-list pages)",
            self._since.date(), plan.changed, plan.entered, plan.left, plan.pages,
        )  # fmt: skip
        return True

    def _plan(self) -> tuple[RunState, RefreshPlan]:
        state = self._state
        assert state is not None and state.source.plan is not None, "prepare() first"
        return state, state.source.plan

    async def count(self) -> int:
        return self._plan()[1].titles

    async def titles(self) -> AsyncGenerator[Title, None]:
        state, plan = self._plan()
        self.stats = stats = InputCounts(rows=plan.titles)
        for n in range(plan.parts):
            key = spool_key(state, plan.writer, n, SPOOL_KIND)
            raw = await self._sink.get(key)
            if raw is None:
                raise SourceError(f"{self._sink.url}/{key} is missing; run with --fresh")
            for line in raw.splitlines():
                ident, _, kind = line.partition(b"\t")
                pos = stats.selected
                stats.selected = pos + 1
                yield Title(pos, self.media, tmdb_id=int(ident), refresh=_KINDS[kind])
