"""The people in the credits of another harvest of the sink, as a source: `type = "people"`, `from`.

The people are read from what the `from` harvest holds (source/held.py: its last complete run and the
runs before it, each held title's latest record), through the credits of each record
(source/people_credits.py: what is read and how `departments`, `jobs` and `min_popularity` filter it).
Each person is then one request, `/person/{id}` with the harvest's appends.

Positions must not move between the invocations of a run, whatever the from-harvest does meanwhile
(a refresh of it adds and removes titles). So the person ids are read once per run, at its start
(`prepare`), into a bitmap stored beside the state (`_harvest/<tag>/people-<writer>.bin`) and recorded
in it; the run's positions are the ids in ascending order, which no reading order can change. A read
cut short (a stop, the deadline) starts over next time. A refresh reads the from-harvest again
(`listing`): people who entered its credits since are entered, people who left are recorded as left
(source/refresh.py), and `/person/changes` names the changed ones.

Memory is flat in the from-harvest's size: the people bitmap has one bit per id below the largest
(lake/selection.py: ~700 KB for TMDB's ~5.5 million people), the read holds the from-harvest's
selection (a bitmap of its title ids: ~250 KB for TMDB's movies, 12.5 MB for the stand-in's), and
data objects are decoded one at a time, held.READ_AHEAD of them in flight. Its cost is one GET per data
object of the from-harvest (10,000 for 1,000,000 titles in objects of 100, some 30 GB) and about the
CPU of decoding their credits.

The from-harvest must have completed a run (else NotReady, exit 5: run again later). In a list run by
one process (fleet.py) a people harvest reads its from-harvest only once that one has ended here, so
it reads the run that has just completed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass

import orjson

from ..config import CREDIT_SECTIONS, SourceSettings
from ..errors import ConfigError, SourceError
from ..items import Media, Title
from ..lake.layout import run_dir
from ..lake.selection import Selection
from ..lake.sink import Sink
from ..lake.state import PeopleSpool, RunState
from .base import Prepare
from .counts import InputCounts
from .held import Held, data_keys, each_object, last_complete
from .people_credits import CreditCounts, CreditFilter, Credits, title_id

log = logging.getLogger(__name__)

SPOOL_NAME = "people-"  # _harvest/<tag>/people-<writer>.bin
# A person id past this would make the bitmap large (1 bit per id below it: 64 MB here); TMDB's are
# about 5.5 million. Such an id is counted and left out, never a reason to hold a huge bitmap.
MAX_PERSON_ID = 1 << 29


@dataclass
class PeopleRead:
    """What one read of the from-harvest found."""

    held: Held
    people: Selection
    counts: CreditCounts
    titles: int = 0  # held titles whose latest record was read
    beyond: int = 0  # person ids past MAX_PERSON_ID, left out


def spool_key(state: RunState, writer: str) -> str:
    return f"{run_dir(state)}{SPOOL_NAME}{writer}.bin"


class PeopleSource:
    def __init__(self, source: SourceSettings, sink: Sink) -> None:
        self.settings = source
        self.media: Media = "person"
        self._sink = sink
        self._filter = CreditFilter.of(source)
        self._state: RunState | None = None
        self.stats = InputCounts()
        self.read: PeopleRead | None = None  # the last read of the from-harvest

    count_is_cheap = True  # the run's count is in its state once the people are read
    offline = False  # prepare() writes the bitmap beside the run's state

    def describe(self) -> str:
        s = self.settings
        parts = [f'people in the credits of harvest "{s.from_}"']
        if s.departments:
            parts.append(f"departments {', '.join(s.departments)}")
        if s.jobs:
            parts.append(f"jobs {', '.join(s.jobs)}")
        if s.min_popularity:
            parts.append(f"popularity >= {s.min_popularity:g}")
        return "; ".join(parts)

    async def identity(self) -> str:
        s = self.settings
        return orjson.dumps(
            {
                "from": s.from_,
                "departments": sorted(s.departments),
                "jobs": sorted(s.jobs),
                "min_popularity": s.min_popularity,
            },
            option=orjson.OPT_SORT_KEYS,
        ).decode()

    async def prepare(self, ctx: Prepare) -> bool:
        """Read the person ids into the run's bitmap, unless an earlier invocation did; False if stopped."""
        state = self._state = ctx.state
        if state.source.people is not None:
            return True
        read = await self.read_people(ctx)
        if read is None:
            return False
        for key in await self._sink.list_keys(run_dir(state) + SPOOL_NAME):
            await self._sink.delete(key)  # a writer that died between its bitmap and its state save
        writer = ctx.lease.token
        ctx.lease.check()
        await self._sink.put(spool_key(state, writer), read.people.to_bytes(), "application/octet-stream")
        n = len(read.people)
        state.source.people = PeopleSpool(
            writer=writer,
            people=n,
            source_run=read.held.run,
            titles=read.titles,
            credits=read.counts.credits,
            filtered_out=read.counts.filtered_out,
        )
        state.source.selected = n
        await ctx.store.save(state)
        return True

    async def read_people(self, ctx: Prepare | None) -> PeopleRead | None:
        """The people of the from-harvest's last complete version; None if a stop cut the read short.
        In a list run by one process, only once the from-harvest has ended here (`ctx.ended`)."""
        s = self.settings
        if ctx is not None and ctx.ended is not None and not await _until(ctx.ended(s.from_), ctx.stop):
            return None
        held = await last_complete(self._sink, s.from_)
        if held.media not in ("movie", "tv"):
            raise ConfigError(
                f'source.from "{s.from_}" is a harvest of {held.media}; name one of movies or series'
            )
        if not CREDIT_SECTIONS & set(held.append):
            raise ConfigError(
                f'source.from "{s.from_}": its records carry no credits (it appends neither credits nor '
                "aggregate_credits)"
            )
        read = PeopleRead(held, Selection(), CreditCounts())
        credits = Credits(self._filter)
        read.counts = credits.counts
        # The ids held and not yet read: runs come newest first, so the first record of a held id is its
        # latest, and taking it out skips the older ones (one bitmap, no set of ids). An id not held any
        # more (a refresh recorded it removed) is never read.
        unread = held.ids
        stop = ctx.stop if ctx is not None else None

        def use(key: str, raw: bytes) -> bool:
            for record in credits.records(key, raw):
                tmdb_id = title_id(record.id)
                if tmdb_id is None or tmdb_id not in unread:
                    continue
                unread.discard(tmdb_id)
                read.titles += 1
                for person in credits.people(record):
                    if person > MAX_PERSON_ID:
                        read.beyond += 1
                    else:
                        read.people.add(person)
            return stop is None or not stop.is_set()

        keys = await data_keys(self._sink, held)
        if not await each_object(self._sink, keys, use):
            log.info("people: stopped while reading %s; it starts over next time", s.from_)
            return None
        c = read.counts
        if read.beyond or c.unreadable:
            log.warning(
                "people: %d person ids past %d left out, %d records of unexpected shape skipped",
                read.beyond, MAX_PERSON_ID, c.unreadable,
            )  # fmt: skip
        log.info(
            'people: %d people in %d credits of %d titles held by "%s" (run %s; %d credits filtered out, '
            "%d records without credits)",
            len(read.people), c.credits, read.titles, s.from_, held.run, c.filtered_out, c.without_credits,
        )  # fmt: skip
        self.read = read
        return read

    async def listing(self, ctx: Prepare) -> AsyncGenerator[int, None]:
        """The person ids the from-harvest's credits give now (for a refresh: source/refresh.py)."""
        read = await self.read_people(ctx)
        if read is None:
            return  # stopped: the refresh sees the stop and plans again next time
        for person in read.people:
            yield person

    def _spool(self) -> tuple[RunState, PeopleSpool]:
        state = self._state
        assert state is not None and state.source.people is not None, "prepare() first"
        return state, state.source.people

    async def count(self) -> int:
        return self._spool()[1].people

    async def titles(self) -> AsyncGenerator[Title, None]:
        state, spool = self._spool()
        self.stats = stats = InputCounts(rows=spool.credits, filtered_out=spool.filtered_out)
        key = spool_key(state, spool.writer)
        raw = await self._sink.get(key)
        if raw is None:
            raise SourceError(f"{self._sink.url}/{key} is missing; run with --fresh")
        people = Selection.from_bytes(raw, f"{self._sink.url}/{key}")
        stats.duplicates = max(0, spool.credits - spool.filtered_out - spool.people)
        for person in people:
            pos = stats.selected
            stats.selected = pos + 1
            yield Title(pos, "person", tmdb_id=person)


async def _until(ended: Awaitable[None], stop: asyncio.Event) -> bool:
    """Wait for `ended` or a stop; True if it ended first."""
    waiting = asyncio.ensure_future(ended)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, stopping):
            task.cancel()
    return waiting.done() and not waiting.cancelled()
