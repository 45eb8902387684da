"""TMDB's daily id exports as a source: every title of a day's file, kept by popularity.

TMDB publishes every day, without authentication, a gzip of JSON lines per kind
(`{export_url}/{kind}_ids_MM_DD_YYYY.json.gz`, kinds `movie`, `tv_series` and `person` (media
"person": the whole catalogue of people, `/person/{id}` each); adult ones only in `adult_movie_ids_...`,
`adult_tv_series_ids_...` and `adult_person_ids_...`), generated from about 07:00 UTC, complete by
08:00 UTC and kept about three months. A movie line is
`{"adult":false,"id":3924,"original_title":"Blondie","popularity":2.41,"video":false}`, a person's
`{"adult":false,"id":81,"name":"...","popularity":35.5}`.

Selection: every line of the file (and of the adult file with `include_adult`), in file order,
without `"video": true` movies unless `include_video`, with popularity >= `min_popularity`, each id
once. A title is then one details request by TMDB id, with the configured appends. The file is
streamed (export_stream.py): memory stays flat for the 1.1 million lines of the movie export.

Which day: `export_date`, or ("") the latest published: today's from 08:00 UTC, else yesterday's; a
missing file falls back one day at a time, MAX_FALLBACK_DAYS at most, then stops with a SourceError
naming the URLs. An explicit date has no fallback.

Resuming: a run chooses its file once, when it starts (`prepare`), and records it in its folder
(`_harvest/<tag>/export.json`: the date, the URLs and their ETags). Every later invocation of that run
reads the same file, whatever the day (it is kept for months), so a harvest that crosses 08:00 UTC
goes on with the file it started, positions unchanged; a file whose ETag changed since is refused.
The source's identity is its configuration (URL, media, date or "latest", filters): a changed
setting is another harvest, and a refresh (a new run) takes the latest file of its own day, which
`listing()` reads for it.

Whole files only: a download cut short (export_stream.short_of: short of its Content-Length, or a
gzip without its trailer) is downloaded again, and raises TmdbUnavailable (exit 5) if it stays short,
at the end of the file, after its records. So nothing is recorded from a file before one download of
it was read whole: a full harvest's count (the runner's, in the first invocation, before the first
title; its result is kept in the state, so a resume neither counts nor downloads twice) is that read,
and the titles then come from the same file (pinned by its ETag); a refresh's `listing()` is read to
its end before the refresh decides what entered or left, so a partial file never makes a title `left`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta

import msgspec
import orjson

from ..config import SourceSettings
from ..errors import SourceError
from ..items import Media, Title
from ..lake.layout import run_dir
from ..lake.sink import Sink
from .base import Prepare
from .counts import InputCounts
from .csv_rows import IdSet
from .export_stream import DownloadCounts, ExportLine, ExportMissing, blocks, head

log = logging.getLogger(__name__)

READY_HOUR = 8  # UTC: TMDB's files of the day are all there by then
MAX_FALLBACK_DAYS = 3  # earlier days tried when the latest file is missing
PIN_NAME = "export.json"
KINDS: dict[Media, str] = {"movie": "movie", "tv": "tv_series", "person": "person"}


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Pure: names, dates, selection


def file_url(base: str, media: Media, day: date, adult: bool = False) -> str:
    return f"{base.rstrip('/')}/{'adult_' if adult else ''}{KINDS[media]}_ids_{day:%m_%d_%Y}.json.gz"


def candidate_dates(export_date: str, now: datetime) -> list[date]:
    """The dates to try, in order: the configured one, or the latest published and a few before."""
    if export_date:
        return [date.fromisoformat(export_date)]
    today = now.astimezone(UTC).date()
    latest = today if now.astimezone(UTC).hour >= READY_HOUR else today - timedelta(days=1)
    return [latest - timedelta(days=n) for n in range(MAX_FALLBACK_DAYS + 1)]


class PinnedFile(msgspec.Struct, frozen=True):
    url: str
    adult: bool
    etag: str | None


class Pin(msgspec.Struct, frozen=True):
    """The files a run harvests, chosen when it started."""

    date: str
    files: tuple[PinnedFile, ...]


class Selector:
    """The filters, and the ids already taken (a bitmap: flat memory, ~200 KB for today's TMDB ids)."""

    def __init__(self, source: SourceSettings, stats: InputCounts) -> None:
        self._adult = source.include_adult
        self._video = source.include_video or source.media != "movie"
        self._min = source.min_popularity
        self._stats = stats
        self._ids = IdSet()

    def take(self, lines: list[ExportLine]) -> list[int]:
        """The ids of these lines that are selected, in order; counts the others by why."""
        adult, video, least, add = self._adult, self._video, self._min, self._ids.add
        kept, filtered = [], 0
        for line in lines:
            if (
                (line.adult and not adult)
                or (line.video and not video)
                or (line.popularity or 0.0) < least
                or line.id <= 0
            ):
                filtered += 1
            elif add(line.id):
                kept.append(line.id)
        stats = self._stats
        stats.rows += len(lines)
        stats.filtered_out += filtered
        stats.duplicates += len(lines) - filtered - len(kept)
        return kept


# ---------------------------------------------------------------------------------------------
# The source


class ExportSource:
    def __init__(self, source: SourceSettings, sink: Sink, now: Callable[[], datetime] | None = None) -> None:
        self.settings = source
        self.media: Media = source.media
        self._sink = sink
        self._now = now
        self._pin: Pin | None = None
        self.stats = InputCounts()
        self.download = DownloadCounts()  # of the last pass

    # A full pass downloads the file once more (~26 MiB for the movies); the runner counts once per
    # harvest, before the first title. Keep it: that pass is also what reads the file whole before
    # anything of it is recorded (the module docstring).
    count_is_cheap = True
    offline = False  # prepare() pins the file in the run's folder: after the run's state is saved

    def describe(self) -> str:
        s = self.settings
        when = self._pin.date if self._pin is not None else (s.export_date or "latest")
        adult = " and its adult titles" if s.include_adult else ""
        parts = [f"TMDB export {KINDS[self.media]} of {when}{adult}"]
        if s.min_popularity:
            parts.append(f"popularity >= {s.min_popularity:g}")
        if self.media == "movie":
            parts.append("video titles included" if s.include_video else "video titles left out")
        return "; ".join(parts)

    async def identity(self) -> str:
        s = self.settings
        return orjson.dumps(
            {
                "export_url": s.export_url.rstrip("/"),
                "media": s.media,
                "date": s.export_date or "latest",
                "min_popularity": s.min_popularity,
                "include_adult": s.include_adult,
                "include_video": s.include_video,
            },
            option=orjson.OPT_SORT_KEYS,
        ).decode()

    async def prepare(self, ctx: Prepare) -> bool:
        """Use the file this run started with, or choose the latest and record it for the next invocations."""
        key = run_dir(ctx.state) + PIN_NAME
        raw = await self._sink.get(key)
        if raw is not None:
            try:
                self._pin = msgspec.json.decode(raw, type=Pin)
            except msgspec.DecodeError:
                raise SourceError(f"{self._sink.url}/{key} is not readable; run with --fresh") from None
            return True
        pin = await self._resolve()
        ctx.lease.check()
        await self._sink.put(key, msgspec.json.encode(pin))
        self._pin = pin
        log.info("export: harvesting %s", ", ".join(f.url for f in pin.files))
        return True

    async def _resolve(self) -> Pin:
        """The first candidate date whose files are all there, with their ETags."""
        s = self.settings
        missing: list[str] = []
        for day in candidate_dates(s.export_date, (self._now or utc_now)()):
            wanted = [
                (file_url(s.export_url, self.media, day, adult), adult) for adult in self._adult_flags()
            ]
            try:
                files = tuple([PinnedFile(url, adult, (await head(url)).etag) for url, adult in wanted])
            except ExportMissing as exc:
                missing.append(f"{exc.url} (HTTP {exc.status})")
                log.info("export: %s is not there (HTTP %d)", exc.url, exc.status)
                continue
            if missing:
                log.warning("export: the file of %s is the latest there", day.isoformat())
            return Pin(day.isoformat(), files)
        raise SourceError(f"no TMDB export to read: {'; '.join(missing)}")

    def _adult_flags(self) -> tuple[bool, ...]:
        return (False, True) if self.settings.include_adult else (False,)

    async def _pinned(self) -> Pin:
        if self._pin is None:  # not prepared (`check`): the latest, held for this process
            self._pin = await self._resolve()
        return self._pin

    async def _selected(self, pin: Pin, stats: InputCounts) -> AsyncGenerator[list[int], None]:
        """The selected ids, a block at a time (per-id steps cost more than the rest of a line)."""
        self.download = counts = DownloadCounts()
        selector = Selector(self.settings, stats)
        for f in pin.files:
            try:
                async with aclosing(blocks(f.url, f.etag, counts)) as lines:
                    async for block in lines:
                        yield selector.take(block)
            except ExportMissing as exc:
                raise SourceError(f"{exc.url} is gone (HTTP {exc.status}); run with --fresh") from None
        stats.malformed = counts.malformed
        stats.rows += counts.malformed

    async def count(self) -> int:
        n = 0
        async with aclosing(self._selected(await self._pinned(), InputCounts())) as ids:
            async for block in ids:
                n += len(block)
        return n

    async def titles(self) -> AsyncGenerator[Title, None]:
        self.stats = stats = InputCounts()
        media = self.media
        async with aclosing(self._selected(await self._pinned(), stats)) as ids:
            async for block in ids:
                for tmdb_id in block:
                    pos = stats.selected
                    stats.selected = pos + 1
                    yield Title(pos, media, tmdb_id=tmdb_id)

    async def listing(self, ctx: Prepare) -> AsyncGenerator[int, None]:
        """The ids the latest export selects now (for a refresh: source/refresh.py), not the run's pin.
        Raises TmdbUnavailable at the end of a file that stays short: only a listing read to its end
        says what left."""
        async with aclosing(self._selected(await self._resolve(), InputCounts())) as ids:
            async for block in ids:
                for tmdb_id in block:
                    yield tmdb_id
