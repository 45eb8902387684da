"""A refresh: only what changed, entered or left since the harvest's last complete run, and a slice.

    left      ids the harvest holds and the source no longer selects: recorded as `removed` outcomes,
              not deleted from earlier objects (no request)
    changed   ids TMDB's change lists name from the start of the last complete run to today, kept when
              the harvest holds them (its selection, lake/selection.py): fetched again
    revisit   held ids of the revisit slices due (source/revisit.py, `[refresh] revisit_days`): fetched
              again, whatever the change lists said
    entered   ids the source selects now and the harvest does not hold (new export lines, new discover
              results): fetched. A CSV or id list is its own selection: a changed file is a new harvest.

Each id is taken once, as the first of these kinds it is. A change list TMDB cut short (a day of more
than 500 pages) is said in a warning, the plan and the summary; with revisit_days = 0 it makes the
refresh revisit every held title, since nothing else would ever fetch the titles it did not list.

The work list is planned once, at the start of the refresh run, and spooled beside the state like a
discover listing (a part at a time: memory stays flat in the harvest's size), so a resumed refresh
harvests the same positions and reads no change list again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable

from ..errors import SourceError
from ..items import Media, Refresh, Title
from ..lake.layout import spool_key, spool_prefix
from ..lake.lease import Lease
from ..lake.selection import Selection
from ..lake.sink import Sink
from ..lake.state import RefreshPlan, RunState
from . import revisit
from .base import Prepare, Source
from .changes import MAX_PAGES, ChangeCounts, changed_ids
from .counts import InputCounts

log = logging.getLogger(__name__)

SPOOL_KIND = "refresh"
SPOOL_PART = 10_000  # titles per spool object
_KINDS: dict[bytes, Refresh] = {b"c": "changed", b"e": "entered", b"l": "left", b"r": "revisit"}


def utc_today() -> date:
    return datetime.now(UTC).date()


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
        revisit_days: int = 0,
    ) -> None:
        self._inner = inner
        self.media = media
        self._sink = sink
        self._since = since
        self._base = base
        self._today = today or utc_today()
        self._revisit_days = revisit_days
        self._state: RunState | None = None
        self.stats = InputCounts()

    count_is_cheap = True  # the plan says how many
    offline = False  # the plan reads TMDB's change lists

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
        changed = Selection()  # a bitmap: an id listed twice (on two pages, two days) is taken once
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
            if ctx.stop.is_set():  # a listing a stop cut short: what it gave is not the selection now
                return False
            for tmdb_id in now.minus(self._base):
                entered.add(tmdb_id)
            for tmdb_id in self._base.minus(now):
                left.add(tmdb_id)
        due = revisit.due(self._since.date(), self._today, self._revisit_days)
        if counts.unlisted and not due.every:
            due = revisit.everything(0)  # nothing else would ever fetch what TMDB did not list
        spool = _Spool(self._sink, state, ctx.lease)
        kinds = {
            "l": await spool.write(b"l", iter(left)),
            "c": await spool.write(b"c", changed.minus(left)),
            "r": await spool.write(b"r", _revisits(self._base, due, left, changed)),
            "e": await spool.write(b"e", iter(entered)),
        }
        await spool.close()
        state.source.plan = plan = RefreshPlan(
            writer=spool.writer,
            parts=spool.parts,
            titles=sum(kinds.values()),
            changed=kinds["c"],
            entered=kinds["e"],
            left=kinds["l"],
            pages=counts.pages,
            revisited=kinds["r"],
            unlisted=counts.unlisted,
            junk=counts.junk,
        )
        await ctx.store.save(state)
        if counts.truncated:
            log.warning(
                "%s/changes of %s passed TMDB's %d pages: %d changed ids were not listed; %s",
                self.media, ", ".join(f"{lo}..{hi}" if lo != hi else str(lo) for lo, hi in counts.truncated),
                MAX_PAGES, counts.unlisted, _remedy(due, len(self._base)),
            )  # fmt: skip
        log.info(
            "refresh since %s: %d changed, %d entered, %d left, %d revisited (%s) "
            "(%d change-list pages, %d entries without an id)",
            self._since.date(), plan.changed, plan.entered, plan.left, plan.revisited, due.describe(),
            plan.pages, plan.junk,
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


def _revisits(base: Selection, due: revisit.Revisit, left: Selection, changed: Selection) -> Iterator[int]:
    """The held ids due for a revisit that are neither left nor changed (those are taken as such)."""
    if not due.whole and not due.slices:
        return
    for tmdb_id in base:
        if due.due(tmdb_id) and tmdb_id not in left and tmdb_id not in changed:
            yield tmdb_id


def _remedy(due: revisit.Revisit, held: int) -> str:
    if due.whole:
        return f"revisit_days = 0, so this refresh revisits every held title ({held})"
    return (
        f"each held title is revisited at least every {due.every} days (revisit_days), "
        f"so none of them stays staler than that"
    )


class _Spool:
    """The plan's lines, written a part of SPOOL_PART lines at a time."""

    def __init__(self, sink: Sink, state: RunState, lease: Lease) -> None:
        self._sink = sink
        self._state = state
        self._lease = lease
        self.writer = lease.token
        self.parts = 0
        self._lines: list[bytes] = []

    async def write(self, kind: bytes, ids: Iterable[int]) -> int:
        """Spool `ids` as `kind`; how many."""
        n = 0
        for tmdb_id in ids:
            self._lines.append(b"%d\t%s\n" % (tmdb_id, kind))
            n += 1
            if len(self._lines) == SPOOL_PART:
                await self._flush()
        return n

    async def close(self) -> None:
        if self._lines:
            await self._flush()

    async def _flush(self) -> None:
        self._lease.check()
        key = spool_key(self._state, self.writer, self.parts, SPOOL_KIND)
        await self._sink.put(key, b"".join(self._lines), "text/plain")
        self._lines = []
        self.parts += 1
