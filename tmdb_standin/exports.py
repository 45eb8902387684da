"""TMDB's daily id exports: `GET /p/exports/{kind}_ids_MM_DD_YYYY.json.gz`, no authentication.

Kinds `movie`, `tv_series`, `adult_movie`, `adult_tv_series`, `person`, `adult_person` (TMDB's other
kinds, collection and so on, are not modelled: 404). A file is gzip of JSON lines, one a title alive
that day (or a person: people.py says who, in ascending ids; the rest below is about titles):

    {"adult":false,"id":3924,"original_title":"Blondie","popularity":2.41,"video":false}
    {"id":1399,"original_name":"Game of Thrones","popularity":369.594}
    {"adult":false,"id":16767,"name":"Aki Kaurismäki","popularity":2.57}

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
the catalogue depends on); there is no Content-Length (chunked transfer), as for any streamed body
(but for the quirk's "short-length" files, below).

Quirk "export" (tmdb-quirks.md: partial downloads happen; one JSON object a line, TV lines without
`adult`, non-ASCII titles common). With it on:
  - the first download of each file (per name, per server: `Downloads`) is cut short in a way HTTP does
    not show, in one of two forms (`CUTS`) drawn per file from the seed (`cut_form`), also scripted as
    faults of those names: "gzip-cut", a chunked body that ends properly (its last chunk sent) but
    whose gzip stops inside the deflate data (no trailer); "short-length", a Content-Length for the
    whole file, a body that stops short of it, the connection closed. The cut falls at 25-75 % of the
    file (`cut_point`). Every download of a "short-length" file carries Content-Length, whole or cut;
    later downloads are whole. The ETag is the file's, whole or cut.
  - a share `quirk_rate` of the lines is touched, drawn per file from the seed (`file_lines`): a blank
    line before it, or a title in another script written as TMDB writes it (UTF-8 as it is: Japanese,
    Korean, Cyrillic, accented, emoji), or the same with JSON \\u escapes (emoji as surrogate pairs).
    The export's title then differs from the details' `original_title`, which nothing compares.
    TV lines have no `adult` with the quirk or without it, as TMDB's never do.
`export_lines` and `export_ids` are the records (what a reader that skips blank lines sees); the
file's bytes (`gzip_stream`) hold the blank lines too.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from typing import Final, Literal, Protocol

import orjson

from harvester.items import Media

from . import people
from .bodies import original_title
from .days import DaysConfig, day_of, export_count, timeline, timeline_key, today
from .titles import imdb_id_from_number, revised_facts, title_facts, tmdb_id_for_number, video_of

PREFIX: Final = "/p/exports/"
READY_HOUR: Final = 8  # all of a day's files are there by 08:00 UTC (generated from about 07:00)
KEPT_DAYS: Final = 90  # TMDB deletes exports after about 3 months
BATCH: Final = 1_000  # lines made and compressed at a time: the loop is never held for long
KINDS: Final[dict[str, tuple[people.Subject, bool]]] = {
    "movie": ("movie", False),
    "tv_series": ("tv", False),
    "adult_movie": ("movie", True),
    "adult_tv_series": ("tv", True),
    "person": ("person", False),
    "adult_person": ("person", True),
}
_NAME = re.compile(r"(?P<kind>[a-z_]+)_ids_(?P<mm>\d\d)_(?P<dd>\d\d)_(?P<yyyy>\d{4})\.json\.gz")
QUIRK: Final = "export"
Cut = Literal["gzip-cut", "short-length"]
CUTS: Final[tuple[Cut, ...]] = ("gzip-cut", "short-length")  # also the scripted faults' names
CUT_SHARE: Final = (0.25, 0.75)  # where in the file a cut falls
_GZIP_HEADER: Final = 10  # bytes zlib writes before the deflate data (no name, no comment)
_GZIP_TRAILER: Final = 8  # CRC-32 and size after it
# Titles as the export carries them beside the English ones (quirk "export").
_NATIVE: Final = (
    "千と千尋の神隠し",
    "七人の侍",
    "となりのトトロ",
    "기생충",
    "Брат",
    "Amélie",
    "La Cité des enfants perdus",
    "Ça",
    "Smultronstället",
)
_EMOJI: Final = ("🎬 Cinéma Paradiso", "Søren 🦈", "Ōkami 🐺", "🔥")


class ExportConfig(DaysConfig, Protocol):
    """What the exports depend on beyond the days (StandinConfig has these fields)."""

    @property
    def hour(self) -> float | None: ...

    @property
    def video_share(self) -> float: ...

    @property
    def quirks(self) -> frozenset[str]: ...

    @property
    def quirk_rate(self) -> float: ...

    @property
    def person_missing_share(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ExportFile:
    media: people.Subject
    adult: bool
    date: Date


def file_name(media: people.Subject, when: Date, adult: bool = False) -> str:
    """TMDB's name of an export file, e.g. movie_ids_05_15_2024.json.gz."""
    kind = {"movie": "movie", "tv": "tv_series", "person": "person"}[media]
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
    media = file.media
    key: tuple[object, ...] = (
        people.export_key(config, day_of(config, file.date))
        if media == "person"
        else (
            repr(timeline_key(media, config)) if moved else repr(sorted(config.kind_overrides.items())),
            export_count(media, config),
            config.video_share,
        ),
        file.adult,
        file.date.isoformat(),
        config.base_date.isoformat(),
    )
    if QUIRK in config.quirks:  # the touched lines are the file's content too (the cut is not)
        key += (config.seed, config.quirk_rate)
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


def file_lines(config: ExportConfig, file: ExportFile) -> Iterator[bytes]:
    """The file's lines (each ending in a newline), in order; with quirk "export", blank lines and
    titles in other scripts among them (the module docstring)."""
    media, adult, day = file.media, file.adult, day_of(config, file.date)
    dumps = orjson.dumps
    rate = config.quirk_rate if QUIRK in config.quirks else 0.0
    draws = random.Random(f"export-lines-{config.seed}-{file_name(media, file.date, adult)}")
    if media == "person":
        for pid, person, score in people.export_records(config, adult, day):
            name = dumps(person)
            if rate and draws.random() < rate:
                blank, name = _touched(draws, name)
                if blank:
                    yield b"\n"
            flag = b"true" if adult else b"false"
            yield b'{"adult":%s,"id":%d,"name":%s,"popularity":%s}\n' % (flag, pid, name, dumps(score))
        return
    line = timeline(media, config) if day > 0 else None
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
        if rate and draws.random() < rate:
            blank, name = _touched(draws, name)
            if blank:
                yield b"\n"
        if media == "movie":
            video = b"true" if video_of(media, imdb_id, config.video_share) else b"false"
            flag = b"true" if adult else b"false"
            yield b'{"adult":%s,"id":%d,"original_title":%s,"popularity":%s,"video":%s}\n' % (
                flag, tmdb_id, name, popularity, video
            )  # fmt: skip
        else:
            yield b'{"id":%d,"original_name":%s,"popularity":%s}\n' % (tmdb_id, name, popularity)


def _touched(draws: random.Random, name: bytes) -> tuple[bool, bytes]:
    """What quirk "export" does to a line it touches: (a blank line before it?, the name to show)."""
    touch = draws.randrange(4)
    if touch == 0:
        return True, name  # a blank line before this one
    if touch == 3:  # JSON's \u escapes (json.dumps writes ASCII; emoji as surrogate pairs)
        return False, json.dumps(draws.choice(_NATIVE + _EMOJI)).encode()
    return False, orjson.dumps(draws.choice(_EMOJI if touch == 2 else _NATIVE))  # UTF-8 as it is


def export_lines(config: ExportConfig, file: ExportFile) -> Iterator[bytes]:
    """The file's records (its lines but the blank ones), in order."""
    return (raw for raw in file_lines(config, file) if raw != b"\n")


def export_ids(config: ExportConfig, media: people.Subject, day: int, adult: bool = False) -> list[int]:
    """The TMDB ids of the export file of `day` (0 = base_date), in file order: for tests."""
    when = config.base_date + timedelta(days=day)
    return [orjson.loads(raw)["id"] for raw in export_lines(config, ExportFile(media, adult, when))]


def gzip_stream(config: ExportConfig, file: ExportFile, limit: int | None = None) -> Iterator[bytes]:
    """The file's bytes, one gzip member, a batch of lines at a time. `limit` stops after that many
    lines without finishing the member (a download cut short)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    batch: list[bytes] = []
    for sent, raw in enumerate(file_lines(config, file)):
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


# ---------------------------------------------------------------------------------------------
# Downloads cut short (quirk "export", faults "gzip-cut" and "short-length")


def _cut_draws(config: ExportConfig, file: ExportFile) -> random.Random:
    return random.Random(f"export-cut-{config.seed}-{file_name(file.media, file.date, file.adult)}")


def cut_form(config: ExportConfig, file: ExportFile) -> Cut:
    """How the quirk cuts the file's first download: the same for a file whatever the day or server."""
    return "gzip-cut" if _cut_draws(config, file).random() < 0.5 else "short-length"


def cut_point(config: ExportConfig, file: ExportFile, size: int) -> int:
    """How many of the file's `size` bytes a cut download sends: a point inside the deflate data
    (after the gzip header, before the last deflate byte), so no trailer ever arrives."""
    draws = _cut_draws(config, file)
    draws.random()  # the form's draw
    lo, hi = _GZIP_HEADER + 1, size - _GZIP_TRAILER - 1
    if hi < lo:  # too small to place: a file this small still loses its trailer
        return max(1, size - 1)
    return min(hi, max(lo, int(size * draws.uniform(*CUT_SHARE))))


def cut_stream(config: ExportConfig, file: ExportFile, at: int) -> Iterator[bytes]:
    """The first `at` bytes of the file's gzip_stream, a batch at a time."""
    left = at
    for chunk in gzip_stream(config, file):
        if len(chunk) >= left:
            yield chunk[:left]
            return
        left -= len(chunk)
        yield chunk


class Downloads:
    """What one server remembers of its export downloads: the files it served once (the quirk cuts a
    file's first download only) and the files' sizes (for Content-Length), by ETag."""

    __slots__ = ("_served", "_sizes")

    def __init__(self) -> None:
        self._served: set[str] = set()
        self._sizes: dict[str, int] = {}

    def first(self, name: str) -> bool:
        """Whether this is the first download of the file `name`; from now on it is not."""
        if name in self._served:
            return False
        self._served.add(name)
        return True

    def size(self, config: ExportConfig, file: ExportFile) -> int:
        """The file's size in bytes, whole (made once per content: a pass over the file)."""
        key = etag(config, file)
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = sum(len(chunk) for chunk in gzip_stream(config, file))
        return size
