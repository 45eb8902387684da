"""A list of ids: inline in the config (`source.ids`) or a file of one id a line (`source.path`).

IMDb ids (`tt...`) are looked up through TMDB's IMDb lookup (`/find`, or the direct movie lookup);
numeric ids are TMDB ids and go straight to details. Blank lines and `#` comments are skipped, a
malformed line is counted and logged (the first few), a repeated id is dropped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from ..config import SinkSettings, SourceSettings, is_s3_url, is_title_id
from ..items import Title
from .base import Prepare
from .counts import InputCounts
from .csv_rows import MALFORMED_LOG_LIMIT, LineSplitter
from .reader import Reader, open_reader

log = logging.getLogger(__name__)


class IdsSource:
    def __init__(self, source: SourceSettings, sink: SinkSettings) -> None:
        self.settings = source
        self.media = source.media
        self.stats = InputCounts()
        self._inline = source.ids
        self._reader: Reader | None = None if source.ids else open_reader(source.path, sink)

    offline = True  # the file is the list: nothing to ask TMDB before the lookups

    @property
    def count_is_cheap(self) -> bool:
        return bool(self._inline) or not is_s3_url(self.settings.path)

    def describe(self) -> str:
        where = f"{len(self._inline)} ids inline" if self._inline else f"ids from {self.settings.path}"
        return f"{where} ({self.media})"

    async def identity(self) -> str:
        if self._reader is None:
            return "inline:" + hashlib.sha256("\n".join(self._inline).encode()).hexdigest()
        return await self._reader.identity()

    async def prepare(self, ctx: Prepare) -> bool:
        return True  # nothing to do before titles(): the file is the list

    async def count(self) -> int:
        n = 0
        async with aclosing(self._ids(InputCounts(), log_malformed=False)) as ids:
            async for _ in ids:
                n += 1
        return n

    async def titles(self) -> AsyncGenerator[Title, None]:
        self.stats = stats = InputCounts()
        async with aclosing(self._ids(stats, log_malformed=True)) as ids:
            async for ident in ids:
                pos = stats.selected
                stats.selected = pos + 1
                if ident.startswith("tt"):
                    yield Title(pos, self.media, imdb_id=ident)
                else:
                    yield Title(pos, self.media, tmdb_id=int(ident))

    async def _ids(self, stats: InputCounts, log_malformed: bool) -> AsyncGenerator[str, None]:
        seen: set[str] = set()  # an id list is small next to movies.csv; a set is fine here
        lineno = 0
        async with aclosing(self._lines()) as lines:
            async for line in lines:
                lineno += 1
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                stats.rows += 1
                if not is_title_id(text):
                    stats.malformed += 1
                    if log_malformed and stats.malformed <= MALFORMED_LOG_LIMIT:
                        log.warning(
                            "%s line %d: not an IMDb or TMDB id: %r", self.describe(), lineno, text[:40]
                        )
                    continue
                canonical = text if text.startswith("tt") else str(int(text))
                if canonical in seen:
                    stats.duplicates += 1
                    continue
                seen.add(canonical)
                yield canonical

    async def _lines(self) -> AsyncGenerator[str, None]:
        if self._reader is None:
            for ident in self._inline:
                yield ident
            return
        splitter = LineSplitter(self._reader.name)
        async with aclosing(self._reader.blocks()) as blocks:
            async for block in blocks:
                for raw in splitter.feed(block):
                    yield _decode(raw)
        for raw in splitter.finish():
            yield _decode(raw)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
