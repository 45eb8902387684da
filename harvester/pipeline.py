"""The concurrent stages of one invocation, joined by bounded queues:

    producer --todo--> N workers --outcomes--> chunker --commits--> committer
    (pending titles,   (lookup under the       (encodes records    (committer.py: data object,
     then the source)   shared rate limiter)    as they arrive)     outcomes object, then state)

The queue bounds are the backpressure and the memory bound: at most `concurrency` titles in flight,
a few outcomes waiting, the chunk being built and one finished chunk waiting for upload. A chunk ends at
`chunk_size` records, or before the record that would take its object past `max_object_mb`.

Stopping (signal, deadline): the producer stops taking titles, workers finish what they hold within
`grace_s` (then they are cancelled and those titles are simply fetched again next time), the partial
chunk is flushed and committed, and `run()` returns False ("incomplete").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Protocol

from .config import SinkSettings
from .errors import TmdbUnavailable
from .items import Failed, Found, Miss, Outcome, Title
from .lake.chunks import ChunkEncoder, byte_limit
from .lake.committer import Chunk, Committer
from .lake.state import DoneSet
from .ops.stats import Stats

log = logging.getLogger(__name__)

MAX_OUTCOMES_PER_COMMIT = 1000  # misses are committed with the next chunk, or alone past this many
CONSECUTIVE_FAILURES_LIMIT = 50  # that many failed titles in a row: TMDB is down, stop instead


class TitleSource(Protocol):
    def titles(self) -> AsyncGenerator[Title, None]: ...


_END = None


class Pipeline:
    def __init__(
        self,
        *,
        source: TitleSource,
        retry: Sequence[Title],
        done: DoneSet,
        lookup: Callable[[Title], Awaitable[Outcome]],
        committer: Committer,
        sink_settings: SinkSettings,
        stats: Stats,
        concurrency: int,
        stop: asyncio.Event,
        grace_s: float = 5.0,
        seasons: bool = False,
    ) -> None:
        self._source = source
        self._retry = retry
        self._done = done
        self._lookup = lookup
        self._committer = committer
        self._fmt = sink_settings.format
        self._compression = sink_settings.compression
        self._chunk_size = sink_settings.chunk_size
        self._max_bytes = byte_limit(sink_settings.max_object_mb)
        self._stats = stats
        self._concurrency = concurrency
        self._stop = stop
        self._grace_s = grace_s
        self._seasons = seasons  # series come with season records, for a seasons object per commit
        self._todo: asyncio.Queue[Title | None] = asyncio.Queue(maxsize=concurrency)
        self._outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue(maxsize=concurrency * 2)
        self._commits: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=1)
        self._exhausted = False
        self._consecutive_failures = 0

    async def run(self) -> bool:
        """Harvest until the source is exhausted or a stop is requested; True if the source was exhausted.

        Exhausted is not complete: after a stop, titles handed out late may have been left undone.
        """
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._commit_loop())
            tg.create_task(self._chunk_loop())
            fetch = tg.create_task(self._fetch_stage())
            stop_wait = tg.create_task(self._stop.wait())
            await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not fetch.done():
                # Stop requested: in-flight lookups get a short grace, then are dropped (not lost:
                # an uncommitted title is fetched again by the next invocation).
                await asyncio.wait({fetch}, timeout=self._grace_s)
                if not fetch.done():
                    log.info("grace of %.1f s over: dropping the lookups still in flight", self._grace_s)
                    fetch.cancel()
                    await asyncio.wait({fetch})
            stop_wait.cancel()
            await self._outcomes.put(_END)
        return self._exhausted

    async def _fetch_stage(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._produce())
            for _ in range(self._concurrency):
                tg.create_task(self._work())

    async def _produce(self) -> None:
        # Titles whose retries ran out in an earlier run go first: they are the oldest work.
        for title in self._retry:
            if self._stop.is_set():
                break
            await self._todo.put(title)
        done = self._done
        async with aclosing(self._source.titles()) as titles:  # closes the file or S3 body on a stop
            async for title in titles:
                if self._stop.is_set():
                    break
                if title.pos in done:
                    self._stats.skipped_done += 1
                    continue
                await self._todo.put(title)
            else:
                self._exhausted = True
        # Workers drain the queue after a stop, so these puts cannot block for long.
        for _ in range(self._concurrency):
            await self._todo.put(_END)

    async def _work(self) -> None:
        while (title := await self._todo.get()) is not _END:
            if self._stop.is_set():
                continue  # taken after the stop: leave it for the next invocation
            outcome = await self._lookup(title)
            await self._outcomes.put(outcome)

    def _encoder(self) -> ChunkEncoder:
        return ChunkEncoder(self._fmt, self._compression, self._max_bytes)

    async def _chunk_loop(self) -> None:
        encoder = self._encoder()
        seasons = self._encoder() if self._seasons else None
        positions: list[int] = []
        outcomes: list[Miss | Failed] = []
        harvested: list[int] = []
        left_out = 0

        async def flush() -> None:
            nonlocal encoder, seasons, positions, outcomes, harvested, left_out
            data = encoder.finish() if encoder.count else None
            chunk = Chunk(data, encoder.count, positions, outcomes, harvested)
            if seasons is not None:
                chunk.seasons = seasons.finish() if seasons.count else None
                chunk.season_records, chunk.seasons_left_out = seasons.count, left_out
                seasons = self._encoder()
            await self._commits.put(chunk)
            encoder = self._encoder()
            positions, outcomes, harvested, left_out = [], [], [], 0

        def add(found: Found) -> bool:
            """The record and its seasons, or neither (a series' seasons commit with it)."""
            if seasons is None:
                return encoder.add(found.body)
            mark = seasons.mark() if self._max_bytes else None
            if not seasons.add_all(found.seasons):
                return False
            if encoder.add(found.body):
                return True
            if mark is not None:
                seasons.restore(mark)
            return False

        while (outcome := await self._outcomes.get()) is not _END:
            if isinstance(outcome, Found):
                if not add(outcome):
                    # Full by size: the object closes without this record, which starts the next one
                    # (its position goes with it, below); empty objects take any record.
                    await flush()
                    add(outcome)
                if outcome.tmdb_id is not None:
                    harvested.append(outcome.tmdb_id)
                self._stats.harvested += 1
                self._stats.seasons += len(outcome.seasons)
                self._stats.seasons_left_out += outcome.seasons_left_out
                left_out += outcome.seasons_left_out
                self._consecutive_failures = 0
            else:
                outcomes.append(outcome)
                self._note_failure(outcome)
            positions.append(outcome.title.pos)
            if encoder.count >= self._chunk_size or len(outcomes) >= MAX_OUTCOMES_PER_COMMIT:
                await flush()
        if positions:
            await flush()
        await self._commits.put(_END)

    def _note_failure(self, outcome: Miss | Failed) -> None:
        # Failures are counted when committed: only the committer knows whether one is final.
        if isinstance(outcome, Miss):
            self._stats.misses[outcome.reason] += 1
            self._consecutive_failures = 0
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= CONSECUTIVE_FAILURES_LIMIT:
            raise TmdbUnavailable(
                f"{self._consecutive_failures} titles in a row failed (last: {outcome.reason}); "
                "TMDB looks unavailable. Progress is saved: run again later to resume"
            )

    async def _commit_loop(self) -> None:
        stats = self._stats
        while (chunk := await self._commits.get()) is not _END:
            settled = await self._committer.commit(chunk)
            stats.objects += chunk.data is not None
            stats.bytes_written += len(chunk.data or b"") + len(chunk.seasons or b"")
            for o in settled.final:
                if isinstance(o, Failed):
                    stats.failed += 1
                    stats.failures[o.reason.split(" ", 1)[0]] += 1
                    stats.final_failures.append(o.title.label)
