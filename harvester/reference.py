"""The reference tables, fetched and written: every run writes, once a day at most, TMDB's genres (movie
and TV), countries, languages and certifications (movie and TV), a small table each
(lake/reference_table.py: where, which columns), so that a reader joins genre ids and country codes
without a second source.

Once a day (UTC) at most: a table whose object of the day is in the sink is neither asked of TMDB nor
written; the others cost 6 requests at most (genres 2, countries 1, languages 1, certifications 2), through
the process's one TmdbClient: under its rate limiter, after its one credential check. Keys are
deterministic, so a write retried (by a second process, or after a crash) replaces the object with one
of the same day.

A table that fails (TMDB away after the client's retries, an unusable body, the sink refusing the write)
is not written and is said in one warning line for all of them; the harvests go on, and the next run
tries again. Nothing here ends a harvest: a bug is logged as one (fleet.py does the same for a
harvest), a stop or the deadline cuts the requests short; CancelledError passes.

In a fleet (`reference_beside`) the tables are one more arrival of `Shared`: today's objects are looked
for while the harvests prepare, before TMDB's first request, and the requests follow the credential
check beside the harvests' first lookups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .config import REFERENCE_TABLES, Deployment, SinkSettings
from .errors import HarvesterError
from .lake.chunks import ChunkEncoder, content_type
from .lake.reference_table import day_stem, object_key, reference_sink
from .lake.sink import Sink
from .tmdb.client import TmdbClient

if TYPE_CHECKING:
    from .runner import Arrival, Shared

log = logging.getLogger(__name__)

T = TypeVar("T")
MEDIA = ("movie", "tv")


# ---------------------------------------------------------------------------------------------
# TMDB's bodies, validated (an unusable one is retried by the client) and flattened, one record a row


class _Genre(msgspec.Struct):
    id: int
    name: str


class _Genres(msgspec.Struct):
    genres: list[_Genre]


class _Rating(msgspec.Struct):
    certification: str
    meaning: str
    order: int


class _Certifications(msgspec.Struct):
    certifications: dict[str, list[_Rating]]


class _Country(msgspec.Struct):
    iso_3166_1: str


class _Language(msgspec.Struct):
    iso_639_1: str


class GenreRow(msgspec.Struct):
    media: str
    id: int
    name: str


class CertificationRow(msgspec.Struct):
    media: str
    country: str
    certification: str
    meaning: str
    order: int


_GENRES = msgspec.json.Decoder(_Genres)
_CERTIFICATIONS = msgspec.json.Decoder(_Certifications)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_COUNTRY = msgspec.json.Decoder(_Country)
_LANGUAGE = msgspec.json.Decoder(_Language)
_ENCODER = msgspec.json.Encoder()


def genre_rows(media: str, body: bytes) -> list[bytes]:
    return [_ENCODER.encode(GenreRow(media, g.id, g.name)) for g in _GENRES.decode(body).genres]


def certification_rows(media: str, body: bytes) -> list[bytes]:
    return [
        _ENCODER.encode(CertificationRow(media, country, r.certification, r.meaning, r.order))
        for country, ratings in _CERTIFICATIONS.decode(body).certifications.items()
        for r in ratings
    ]


def _verbatim(item: msgspec.json.Decoder[Any]) -> Callable[[bytes], list[bytes]]:
    """Rows of a JSON array as TMDB sends each element (its own fields, in its order), each checked
    for the code it is keyed by."""

    def rows(body: bytes) -> list[bytes]:
        elements = _RAW_LIST.decode(body)
        for element in elements:
            item.decode(element)
        return [bytes(element) for element in elements]

    return rows


@dataclass(frozen=True)
class Part:
    """One request of a table: its path, whether it takes `language` (names), and its rows."""

    path: str
    localized: bool
    rows: Callable[[bytes], list[bytes]]


PARTS: dict[str, tuple[Part, ...]] = {
    "genres": tuple(Part(f"/genre/{m}/list", True, partial(genre_rows, m)) for m in MEDIA),
    "countries": (Part("/configuration/countries", True, _verbatim(_COUNTRY)),),
    "languages": (Part("/configuration/languages", False, _verbatim(_LANGUAGE)),),
    "certifications": tuple(
        Part(f"/certification/{m}/list", False, partial(certification_rows, m)) for m in MEDIA
    ),
}
REQUESTS = {table: len(parts) for table, parts in PARTS.items()}  # 6 in all: `check` counts them
assert set(PARTS) == set(REFERENCE_TABLES)


def encode(rows: list[bytes], settings: SinkSettings) -> bytes:
    """One object of rows, in the sink's format and compression (one object whatever its size: a day's
    table is a few kilobytes)."""
    encoder = ChunkEncoder(settings.format, settings.compression)
    for row in rows:
        encoder.add(row)
    return encoder.finish()


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class Written:
    table: str
    key: str
    rows: int


@dataclass(frozen=True)
class ReferenceResult:
    day: date
    written: tuple[Written, ...] = ()
    present: tuple[str, ...] = ()  # tables whose object of the day was there: nothing asked, nothing written
    failed: tuple[tuple[str, str], ...] = ()  # (table, why); the next run tries them again
    requests: int = 0  # what this asked TMDB (with the credential check, if it was the first to ask)

    @property
    def skipped(self) -> bool:
        return not self.written and not self.failed

    def counts(self) -> dict[str, Any]:
        """JSON-ready (the Lambda's answer)."""
        return {
            "day": self.day.isoformat(),
            "written": {w.table: w.rows for w in self.written},
            "present": list(self.present),
            "failed": dict(self.failed),
            "requests": self.requests,
        }

    def line(self) -> str:
        """What happened, in one line (the log's, the fleet summary's)."""
        parts = [f"{w.table} {w.rows} rows" for w in self.written]
        if self.present:
            parts.append(f"{', '.join(self.present)} already there")
        if self.failed:
            parts.append(f"{', '.join(t for t, _ in self.failed)} failed")
        asked = f"{self.requests} request{'' if self.requests == 1 else 's'}"
        return f"reference tables of {self.day}: {'; '.join(parts) or 'none'} ({asked})"


# ---------------------------------------------------------------------------------------------
# Fetching and writing


async def due_tables(sink: Sink, day: date) -> tuple[list[str], list[str]]:
    """(due, present): the tables without an object of `day` (whatever its format), and those with.
    Looked for at once: one round trip of the store, not four."""
    async with asyncio.TaskGroup() as tg:
        found = {t: tg.create_task(sink.list_keys(day_stem(t, day) + ".")) for t in REFERENCE_TABLES}
    present = [t for t in REFERENCE_TABLES if found[t].result()]
    return [t for t in REFERENCE_TABLES if t not in present], present


def check_line(due: list[str]) -> str:
    """What `check` says of the reference tables: the requests a run would make for them today."""
    if not due:
        return "reference   none: today's reference tables are written (a run asks nothing of them)"
    return f"reference   {sum(REQUESTS[t] for t in due)} requests today ({', '.join(due)}; once a day)"


async def fetch_and_write(
    client: TmdbClient, sink: Sink, settings: SinkSettings, language: str, day: date, tables: list[str]
) -> ReferenceResult:
    """Ask TMDB for `tables`, one request at a time, and write each whole table; a table that fails is
    recorded and the others go on. `client` should be a view of its own (counted_apart): its requests
    are the result's."""
    written: list[Written] = []
    failed: list[tuple[str, str]] = []
    for table in tables:
        try:
            rows: list[bytes] = []
            for part in PARTS[table]:
                reply = await client.get(
                    part.path, {"language": language} if part.localized else {}, part.rows
                )
                if reply.status != 200:
                    raise HarvesterError(f"{part.path} answered HTTP {reply.status}")
                rows.extend(reply.data)
            key = object_key(table, day, settings)
            await sink.put(key, encode(rows, settings), content_type(settings.format))
        except HarvesterError as exc:  # RequestFailed, CredentialError, SinkError: this table's alone
            failed.append((table, str(exc)))
            continue
        written.append(Written(table, key, len(rows)))
    return ReferenceResult(day, tuple(written), (), tuple(failed), client.counters.requests)


async def reference_beside(
    shared: Shared,
    sink: Sink,
    deployment: Deployment,
    today: date | None = None,
    *,
    stop: asyncio.Event,
    deadline: float | None = None,
) -> ReferenceResult:
    """The reference tables of a fleet's run, as one more arrival of `shared` (built to count it): the
    day's objects looked for before TMDB's first request, the rest asked after its credential check,
    beside the harvests' lookups. Never raises but CancelledError; says what it did in one log line."""
    today = today or datetime.now(UTC).date()  # the day of the objects: TMDB's, in UTC
    arrival = shared.arrival()
    client = shared.client.counted_apart()  # the result's requests
    present: list[str] = []
    written: tuple[Written, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    try:
        try:
            await shared.preflight(sink)  # once per sink: the harvests' own, if they came first
            due, present = await due_tables(sink, today)
        finally:
            arrival.done()  # ready (or gone): the credential check waits for the harvests alone
        fetched = None
        if due and not stop.is_set():
            work = _fetch(shared, arrival, client, sink, deployment, today, due)
            fetched = await _unless_stopped(work, stop, deadline)
        if fetched is None:
            failed = tuple((table, "stopped before it was written") for table in due)
        else:
            written, failed = fetched.written, fetched.failed
    except HarvesterError as exc:  # the sink unusable, the credential refused: the harvests say so too
        failed = (("all", str(exc)),)
    except Exception as exc:  # a bug here must not end the harvests; CancelledError passes
        log.exception("reference tables: internal error")
        failed = (("all", f"internal error {exc.__class__.__name__}"),)
    result = ReferenceResult(today, written, tuple(present), failed, client.counters.requests)
    if failed:
        why = "; ".join(f"{table}: {reason}" for table, reason in failed)
        log.warning("%s; not written: %s (the next run tries again)", result.line(), why)
    else:
        log.info("%s", result.line())
    return result


async def _fetch(
    shared: Shared,
    arrival: Arrival,
    client: TmdbClient,
    sink: Sink,
    deployment: Deployment,
    today: date,
    due: list[str],
) -> ReferenceResult:
    await shared.credential(client, arrival)  # asked once for the process, answer kept
    settings = reference_sink(deployment)
    return await fetch_and_write(client, sink, settings, deployment.tmdb.language, today, due)


async def _unless_stopped(
    work: Coroutine[Any, Any, T], stop: asyncio.Event, deadline: float | None
) -> T | None:
    """`work`'s result, or None when `stop` is set or `deadline` (the loop's clock) passes first: then
    `work` is cancelled and waited for. Our own cancellation passes through."""
    task = asyncio.create_task(work)
    halt = asyncio.create_task(stop.wait())
    try:
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        await asyncio.wait((task, halt), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # its CancelledError stays in it
    return None if task.cancelled() else task.result()
