"""The people in the credits of another harvest of the sink, as a source: `type = "people"`, `from`.

The people are read from what the `from` harvest holds (source/held.py: its last complete run and the
runs before it, each held title's latest record), through the credits of each record
(source/people_credits.py: what is read and how `departments`, `jobs` and `min_popularity` filter it).
Each person is then one request, `/person/{id}` with the harvest's appends.

Positions must not move between the invocations of a run, whatever the from-harvest does meanwhile
(a refresh of it adds and removes titles). So the person ids are read once per run, at its start
(`prepare`), into a bitmap stored beside the state (`_harvest/<tag>/people-<writer>.bin`) and recorded
in it; the run's positions are the ids in ascending order, which no reading order can change. A refresh
reads the from-harvest again (`listing`): people who entered its credits since are entered, people who
left are recorded as left (source/refresh.py), and `/person/changes` names the changed ones.

The read is checkpointed, so that it spans invocations (a 128 MB Lambda reads ~500 records a second):
every CHECKPOINT_RECORDS records, and when a stop arrives, the people so far and the held ids not read
yet (two bitmaps) go into one object, `_harvest/<tag>/people-read-<writer>-<slot>.bin`, and the state
records where the read is (PeopleReading: how many objects of the read's order are done, the last one's
key, the counts). Two slots per writer, alternating: a checkpoint never replaces the object the saved
state names, so a crash between the PUT and the state save leaves the previous checkpoint intact. The
next invocation loads them and continues with the next object; the bitmaps make the outcome independent
of where the read was cut (a person is added once whatever the number of visits; a title is taken once).
The read continues only over the same version of the from-harvest: when that harvest completed another
run meanwhile (a refresh of it), or its objects are not the ones the read began on, it starts over (a
log line says why). Once complete, the state drops the reading and its objects are deleted (a crash
just then leaves them in the run's folder until a fresh start removes the run).

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
from dataclasses import dataclass, replace

import orjson

from ..config import CREDIT_SECTIONS, SourceSettings
from ..errors import ConfigError, SourceError, StateError
from ..items import Media, Title
from ..lake.layout import run_dir
from ..lake.selection import Selection
from ..lake.sink import Sink
from ..lake.state import PeopleReading, PeopleSpool, RunState
from .base import Prepare
from .counts import InputCounts
from .held import Held, data_keys, each_object, last_complete
from .people_credits import CreditCounts, CreditFilter, Credits, title_id

log = logging.getLogger(__name__)

SPOOL_NAME = "people-"  # _harvest/<tag>/people-<writer>.bin
READING_NAME = "people-read-"  # _harvest/<tag>/people-read-<writer>-<slot>.bin: a read under way
READING_MAGIC = b"HPRD1"
# Records between checkpoints (and progress lines): ~1.5 s of CPU here, ~20 s at a 128 MB Lambda's 7% of
# a core; a checkpoint is one PUT of two compressed bitmaps and one state save.
CHECKPOINT_RECORDS = 10_000
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


def reading_key(state: RunState, writer: str, slot: int) -> str:
    return f"{run_dir(state)}{READING_NAME}{writer}-{slot}.bin"


def pack_reading(people: Selection, unread: Selection) -> bytes:
    """A read so far: the people bitmap and the bitmap of held ids not read yet, in one object."""
    first = people.to_bytes()
    return READING_MAGIC + len(first).to_bytes(8, "little") + first + unread.to_bytes()


def unpack_reading(raw: bytes, where: str) -> tuple[Selection, Selection]:
    start = len(READING_MAGIC) + 8
    if not raw.startswith(READING_MAGIC) or len(raw) < start:
        raise StateError(f"{where} is not a people read; run with --fresh")
    end = start + int.from_bytes(raw[len(READING_MAGIC) : start], "little")
    return Selection.from_bytes(raw[start:end], where), Selection.from_bytes(raw[end:], where)


def start_over(reading: PeopleReading, run: str, keys: list[str]) -> str | None:
    """Why a read under way cannot continue over `run`'s objects `keys`, or None when it can."""
    if reading.source_run != run:
        return f"run {run} of it completed since the read began on run {reading.source_run}"
    n = reading.objects
    if n > len(keys) or (n and keys[n - 1] != reading.last_key):
        return f"its objects are not those the read began on ({reading.last_key} is not object {n})"
    return None


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
        """Read the person ids into the run's bitmap, unless an earlier invocation did; False if stopped
        (the read so far is checkpointed: the next invocation continues it)."""
        state = self._state = ctx.state
        if state.source.people is not None:
            return True
        read = await self.read_people(ctx)
        if read is None:
            return False
        readings = run_dir(state) + READING_NAME
        for key in await self._sink.list_keys(run_dir(state) + SPOOL_NAME):
            if not key.startswith(readings):
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
        state.source.reading = None
        await ctx.store.save(state)
        await self._drop_readings(state)
        return True

    async def read_people(self, ctx: Prepare | None) -> PeopleRead | None:
        """The people of the from-harvest's last complete version; None if a stop cut the read short.
        In a list run by one process, only once the from-harvest has ended here (`ctx.ended`). With a
        `ctx`, the read continues from the run's last checkpoint and leaves one when stopped; without
        (`check`), it reads everything and writes nothing."""
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
        keys = [key for run in await data_keys(self._sink, held) for key in run]
        credits = Credits(self._filter)
        done = 0  # objects of `keys` read
        resumed = await self._resumable(ctx, held.run, keys)
        if resumed is not None:
            reading, raw, where = resumed
            held = replace(held, ids=Selection())  # gone before the read's own load: not two at once
            people, unread = unpack_reading(raw, where)
            del raw
            held = replace(held, ids=unread)
            read = _resumed(held, people, reading, credits)
            done = reading.objects
            log.info(
                'people: continuing the read of "%s" (run %s) at object %d of %d '
                "(%d titles, %d people so far)",
                s.from_, held.run, done, len(keys), read.titles, len(people),
            )  # fmt: skip
        else:
            read = PeopleRead(held, Selection(), credits.counts)
            log.info('people: reading the %d data objects of "%s" (run %s)', len(keys), s.from_, held.run)
        # The ids held and not yet read: runs come newest first, so the first record of a held id is its
        # latest, and taking it out skips the older ones (one bitmap, no set of ids). An id not held any
        # more (a refresh recorded it removed) is never read.
        unread = read.held.ids
        stop = ctx.stop if ctx is not None else None
        mark = read.counts.records  # at the last checkpoint

        async def use(key: str, raw: bytes) -> bool:
            nonlocal done, mark
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
            done += 1
            if done == len(keys):
                return True  # the read is complete: a stop now comes after its bitmap
            stopping = stop is not None and stop.is_set()
            due = read.counts.records - mark >= CHECKPOINT_RECORDS
            if due or stopping:
                mark = read.counts.records
                if ctx is not None:
                    await self._checkpoint(ctx, read, done, key)
            if due:
                log.info(
                    'people: %d of %d data objects of "%s" read (%d records, %d titles, %d people so far)',
                    done, len(keys), s.from_, read.counts.records, read.titles, len(read.people),
                )  # fmt: skip
            return not stopping

        if not await each_object(self._sink, keys[done:], use):
            log.info(
                'people: stopped after %d of %d data objects of "%s"; the next run continues there',
                done, len(keys), s.from_,
            )  # fmt: skip
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

    async def _resumable(
        self, ctx: Prepare | None, run: str, keys: list[str]
    ) -> tuple[PeopleReading, bytes, str] | None:
        """The run's read under way and its checkpoint's bytes, when it can continue over `run`'s objects
        `keys`; else None (and a log line saying why it starts over)."""
        reading = ctx.state.source.reading if ctx is not None else None
        if ctx is None or reading is None:
            return None
        why = start_over(reading, run, keys)
        if why is None:
            key = reading_key(ctx.state, reading.writer, reading.slot)
            raw = await self._sink.get(key)
            if raw is not None:
                return reading, raw, f"{self._sink.url.rstrip('/')}/{key}"
            why = f"its checkpoint {key} is missing"
        # The state keeps naming the old checkpoint until the new read's first one replaces it (in the
        # writer's other slot, so a crash in between leaves no object that its state misdescribes).
        log.info('people: the read of "%s" starts over: %s', self.settings.from_, why)
        return None

    async def _checkpoint(self, ctx: Prepare, read: PeopleRead, done: int, last_key: str) -> None:
        """Save the read so far: its bitmaps into the writer's other slot, then the state naming it."""
        state = ctx.state
        before = state.source.reading
        writer = ctx.lease.token
        slot = 1 - before.slot if before is not None and before.writer == writer else 0
        ctx.lease.check()
        data = pack_reading(read.people, read.held.ids)
        await self._sink.put(reading_key(state, writer, slot), data, "application/octet-stream")
        c = read.counts
        state.source.reading = PeopleReading(
            writer=writer,
            slot=slot,
            source_run=read.held.run,
            objects=done,
            last_key=last_key,
            titles=read.titles,
            records=c.records,
            credits=c.credits,
            filtered_out=c.filtered_out,
            without_credits=c.without_credits,
            unreadable=c.unreadable,
            beyond=read.beyond,
        )
        await ctx.store.save(state)

    async def _drop_readings(self, state: RunState) -> None:
        """Delete the checkpoints of a read that completed (the saved state names none any more)."""
        for key in await self._sink.list_keys(run_dir(state) + READING_NAME):
            await self._sink.delete(key)

    async def listing(self, ctx: Prepare) -> AsyncGenerator[int, None]:
        """The person ids the from-harvest's credits give now (for a refresh: source/refresh.py)."""
        read = await self.read_people(ctx)
        if read is None:
            return  # stopped: the refresh sees the stop and plans again next time
        if ctx.state.source.reading is not None:
            ctx.state.source.reading = None
            await ctx.store.save(ctx.state)
        await self._drop_readings(ctx.state)
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


def _resumed(held: Held, people: Selection, reading: PeopleReading, credits: Credits) -> PeopleRead:
    """A read continued from its checkpoint: its bitmaps and counts as they were saved."""
    r = reading
    credits.counts = CreditCounts(
        records=r.records,
        without_credits=r.without_credits,
        unreadable=r.unreadable,
        credits=r.credits,
        filtered_out=r.filtered_out,
    )
    return PeopleRead(held, people, credits.counts, titles=r.titles, beyond=r.beyond)
