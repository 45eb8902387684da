"""The titles of a movies.csv / series.csv file, local or on S3, as an async stream.

    source = CsvSource(settings.source, settings.sink)
    total = await source.count()                     # optional full pass, for a progress total
    async with aclosing(source.titles()) as titles:  # aclosing: stopping early closes the file/S3 body
        async for title in titles: ...
    source.stats                                     # counters of the last titles() pass

Positions are 0, 1, 2, ... over the selected ids in file order, so the same file and filters always
give the same positions: the saved state of a resumed run relies on it (`identity()` tells whether
the file is still the same one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from ..config import SinkSettings, SourceSettings, is_s3_url, media_of
from ..items import Title
from .base import Prepare
from .counts import InputCounts
from .csv_rows import MALFORMED_LOG_LIMIT, Filters, LineSplitter, RowSelector, layout_for
from .reader import open_reader


class CsvSource:
    def __init__(self, source: SourceSettings, sink: SinkSettings) -> None:
        self.settings = source
        self.media = media_of(source)
        self.layout = layout_for(self.media)
        self.filters = Filters.from_settings(source, self.layout)
        self.stats = InputCounts()
        self._reader = open_reader(source.path, sink)

    offline = True  # the file is the list: nothing to ask TMDB before the lookups

    @property
    def count_is_cheap(self) -> bool:
        """False for an s3:// source, where a counting pass means downloading the object twice."""
        return not is_s3_url(self.settings.path)

    def describe(self) -> str:
        """One line for the log: which file, read as what, with which filters."""
        s = self.settings
        parts = []
        if self.filters.genres:
            parts.append("genres " + ",".join(map(str, s.genres)))
        if s.min_votes:
            parts.append(f"votes >= {s.min_votes}")
        if s.year_from or s.year_to:
            parts.append(f"years {s.year_from or '...'}-{s.year_to or '...'}")
        filters = "; ".join(parts) if parts else "no filters"
        return f"{self.layout.name} {self._reader.name} ({self.media}; {filters})"

    async def identity(self) -> str:
        """A fingerprint of the input: local path + size + mtime_ns, or s3://bucket/key + ETag + size."""
        return await self._reader.identity()

    async def titles(self) -> AsyncGenerator[Title, None]:
        """Every selected title once, in file order. Resets `stats`, which it updates as it goes.

        Raises SourceError when the file cannot be read or has the wrong header. Malformed rows are
        skipped; the first five are logged, and `stats.malformed` holds the count for the summary.
        """
        self.stats = stats = InputCounts()
        media = self.media
        async with aclosing(self._selected(stats, log_malformed=True)) as batches:
            async for ids in batches:
                for imdb_id in ids:
                    pos = stats.selected
                    stats.selected = pos + 1  # before the yield: a consumer may stop right there
                    yield Title(pos, media, imdb_id=imdb_id)

    async def prepare(self, ctx: Prepare) -> bool:
        return True  # nothing to do before titles(): the file is the list

    async def count(self) -> int:
        """How many titles `titles()` will yield: a full pass of its own (its own counters, no logging)."""
        n = 0
        async with aclosing(self._selected(InputCounts(), log_malformed=False)) as batches:
            async for ids in batches:
                n += len(ids)
        return n

    async def _selected(self, stats: InputCounts, log_malformed: bool) -> AsyncGenerator[list[str], None]:
        name = self._reader.name
        splitter = LineSplitter(name)
        selector = RowSelector(
            self.layout, self.filters, stats, name, log_limit=MALFORMED_LOG_LIMIT if log_malformed else 0
        )
        async with aclosing(self._reader.blocks()) as blocks:
            async for block in blocks:
                ids = selector.feed(splitter.feed(block))
                if ids:
                    yield ids
                # A block of duplicates yields nothing, and a buffered S3 body can return without
                # suspending: give the loop a turn per block (~6000 rows) either way.
                await asyncio.sleep(0)
        ids = selector.feed(splitter.finish())
        selector.finish()
        if ids:
            yield ids
