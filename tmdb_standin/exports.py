"""TMDB's daily id exports: `GET /p/exports/{kind}_ids_MM_DD_YYYY.json.gz`, no authentication.

Kinds `movie`, `tv_series`, `adult_movie`, `adult_tv_series` (TMDB's other kinds, person, collection
and so on, are not modelled: 404). A file is gzip of JSON lines, one a title alive that day:

    {"adult":false,"id":3924,"original_title":"Blondie","popularity":2.41,"video":false}
    {"id":1399,"original_name":"Game of Thrones","popularity":369.594}

Adult titles are only in the adult files. The titles of day d are the day-0 export population
(the first `export_movies` / `export_tv` titles of the media, by default as many as discover has: the
same titles, so an id of the export answers /movie/{id} and is in discover), then the titles that
appeared on days 1..d, less those gone by d; popularity as the title's revision on d shows it
(days.py). Lines follow that order: IMDb number ascending, the appeared titles after.

Publication, on the server's clock: the file of a date exists from day 0 (`base_date`) up to today;
today's only from 08:00 UTC (`StandinConfig.hour`, the hour of the server's today; None reads the
real clock's time of day); a date more than 90 days before today has been deleted. A missing file
is `export_missing_status` (404; TMDB's CDN is seen answering 403 or 404) with a short text body.

The body is streamed: lines are made and compressed a batch at a time into one gzip member, so a
1.1-million-line file never sits in memory. The ETag names the file's content (kind, date and what
the catalogue depends on); there is no Content-Length (chunked transfer), as for any streamed body.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from typing import Final, Protocol

import orjson

from harvester.items import Media

from .bodies import original_title
from .days import DaysConfig, day_of, export_count, timeline, timeline_key, today
from .titles import imdb_id_from_number, revised_facts, title_facts, tmdb_id_for_number, video_of

PREFIX: Final = "/p/exports/"
READY_HOUR: Final = 8  # all of a day's files are there by 08:00 UTC (generated from about 07:00)
KEPT_DAYS: Final = 90  # TMDB deletes exports after about 3 months
BATCH: Final = 1_000  # lines made and compressed at a time: the loop is never held for long
KINDS: Final[dict[str, tuple[Media, bool]]] = {
    "movie": ("movie", False),
    "tv_series": ("tv", False),
    "adult_movie": ("movie", True),
    "adult_tv_series": ("tv", True),
}
_NAME = re.compile(r"(?P<kind>[a-z_]+)_ids_(?P<mm>\d\d)_(?P<dd>\d\d)_(?P<yyyy>\d{4})\.json\.gz")


class ExportConfig(DaysConfig, Protocol):
    """What the exports depend on beyond the days (StandinConfig has these fields)."""

    @property
    def hour(self) -> float | None: ...

    @property
    def video_share(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ExportFile:
    media: Media
    adult: bool
    date: Date


def file_name(media: Media, when: Date, adult: bool = False) -> str:
    """TMDB's name of an export file, e.g. movie_ids_05_15_2024.json.gz."""
    kind = {"movie": "movie", "tv": "tv_series"}[media]
    return f"{'adult_' if adult else ''}{kind}_ids_{when:%m_%d_%Y}.json.gz"


def parse_name(name: str) -> ExportFile | None:
    """The file a name asks for, or None (unknown kind, not a date)."""
    m = _NAME.fullmatch(name)
    if m is None or m["kind"] not in KINDS:
        return None
    try:
        when = Date(int(m["yyyy"]), int(m["mm"]), int(m["dd"]))
    except ValueError:
        return None
    media, adult = KINDS[m["kind"]]
    return ExportFile(media, adult, when)


def server_now(config: ExportConfig) -> datetime:
    """The server's clock: today (base_date + day) at the configured hour, or the real time of day."""
    if config.hour is None:
        real = datetime.now(UTC)
        hours = real.hour + real.minute / 60 + real.second / 3600
    else:
        hours = config.hour
    return datetime.combine(today(config), datetime.min.time(), UTC) + timedelta(hours=hours)


def published(config: ExportConfig, when: Date) -> bool:
    """Whether the file(s) of that date can be downloaded now."""
    now = server_now(config)
    if when < config.base_date or when > now.date() or (now.date() - when).days > KEPT_DAYS:
        return False
    return when < now.date() or now.hour >= READY_HOUR


def etag(config: ExportConfig, file: ExportFile) -> str:
    """A strong ETag for the file's content: it depends on the date, not on the server's day."""
    moved = day_of(config, file.date) > 0  # day 0 does not depend on the days' draws
    key = (
        repr(timeline_key(file.media, config)) if moved else repr(sorted(config.kind_overrides.items())),
        export_count(file.media, config),
        config.video_share,
        file.adult,
        file.date.isoformat(),
        config.base_date.isoformat(),
    )
    return '"' + hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest() + '"'


# ---------------------------------------------------------------------------------------------
# The content


def export_numbers(config: ExportConfig, media: Media, day: int) -> Iterator[int]:
    """IMDb numbers of the titles alive on `day`, adult or not, in file order."""
    line = timeline(media, config)
    numbers = line.numbers[: export_count(media, config)]
    if day <= 0:
        yield from numbers
        return
    for n in numbers:
        if line.alive(n, day):
            yield n
    for n in line.appeared_until(day):
        if line.alive(n, day):
            yield n


def export_lines(config: ExportConfig, file: ExportFile) -> Iterator[bytes]:
    """The file's lines (each ending in a newline), in order."""
    media, adult, day = file.media, file.adult, day_of(config, file.date)
    line = timeline(media, config) if day > 0 else None
    dumps = orjson.dumps
    for n in export_numbers(config, media, day):
        imdb_id = imdb_id_from_number(n)
        facts = title_facts(media, imdb_id)
        if facts.adult != adult:
            continue
        if line is not None:
            facts = revised_facts(media, imdb_id, facts, line.revision(n, day))
        popularity = dumps(facts.popularity)
        tmdb_id = tmdb_id_for_number(media, n)
        name = dumps(original_title(media, imdb_id))
        if media == "movie":
            video = b"true" if video_of(media, imdb_id, config.video_share) else b"false"
            flag = b"true" if adult else b"false"
            yield b'{"adult":%s,"id":%d,"original_title":%s,"popularity":%s,"video":%s}\n' % (
                flag, tmdb_id, name, popularity, video
            )  # fmt: skip
        else:
            yield b'{"id":%d,"original_name":%s,"popularity":%s}\n' % (tmdb_id, name, popularity)


def export_ids(config: ExportConfig, media: Media, day: int, adult: bool = False) -> list[int]:
    """The TMDB ids of the export file of `day` (0 = base_date), in file order: for tests."""
    when = config.base_date + timedelta(days=day)
    return [orjson.loads(raw)["id"] for raw in export_lines(config, ExportFile(media, adult, when))]


def gzip_stream(config: ExportConfig, file: ExportFile, limit: int | None = None) -> Iterator[bytes]:
    """The file's bytes, one gzip member, a batch of lines at a time. `limit` stops after that many
    lines without finishing the member (a download cut short)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    batch: list[bytes] = []
    for sent, raw in enumerate(export_lines(config, file)):
        if limit is not None and sent >= limit:
            yield packer.compress(b"".join(batch)) + packer.flush(zlib.Z_SYNC_FLUSH)  # no trailer
            return
        batch.append(raw)
        if len(batch) >= BATCH:
            chunk = packer.compress(b"".join(batch))
            batch = []
            if chunk:
                yield chunk
    yield packer.compress(b"".join(batch)) + packer.flush()
