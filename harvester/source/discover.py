"""TMDB discover listings as a source: "all Romance/Drama movies up to 2022", without any ids.

Discover serves at most 500 pages of 20 (10,000 results) per query. A query with more results is
split into date windows (primary_release_date for movies, first_air_date for TV), recursively, until
each window fits; every title is then enumerated exactly once (an id seen twice, because TMDB moved it
between pages while we paged, is dropped). A single day with more than 10,000 results cannot be split
by date: that is reported as an error naming the day, with a hint to narrow the query.

Discover results change while a harvest runs (new titles, popularity), so positions in a live listing
are not stable enough to resume by. The listing is therefore enumerated once, at the start of a run,
into spool objects beside the state (`_harvest/<tag>/discover-<writer>-<n>.jsonl`: the writer's token
keeps a writer that lost its lease from replacing the spool another one enumerated), and the run harvests
from the spool; a resumed invocation reads the spool, never the live listing. An enumeration cut short
(a stop or the Lambda deadline) starts over next time: at 40 requests/s a 13-minute invocation
enumerates about 600,000 titles.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from ..config import SourceSettings, TmdbSettings
from ..errors import ConfigError, SourceError
from ..items import Media, Title
from ..lake.layout import spool_key, spool_prefix
from ..lake.sink import Sink
from ..lake.state import RunState, Spool
from ..tmdb.client import RequestFailed, TmdbClient
from .base import Prepare
from .counts import InputCounts

log = logging.getLogger(__name__)

PAGE_SIZE = 20
MAX_PAGES = 500
WINDOW_CAP = PAGE_SIZE * MAX_PAGES  # results one query can reach
EARLIEST = date(1870, 1, 1)  # before the first films: an open lower end
SPOOL_PART = 10_000  # titles per spool object
DATE_FIELD = {"movie": "primary_release_date", "tv": "first_air_date"}


# ---------------------------------------------------------------------------------------------
# Pure parts: genres, the query, window splitting


def resolve_genres(
    wanted: Sequence[str | int], available: Sequence[tuple[int, str]], media: Media
) -> list[int]:
    """Genre names (any case) or ids -> ids; an unknown one is a ConfigError listing the valid names."""
    by_name = {name.lower(): gid for gid, name in available}
    ids = {gid for gid, _ in available}
    out: list[int] = []
    for g in wanted:
        gid = g if isinstance(g, int) else (int(g) if g.strip().isdigit() else by_name.get(g.strip().lower()))
        if gid is None or gid not in ids:
            valid = ", ".join(f"{name} ({gid})" for gid, name in available)
            raise ConfigError(f"source.genres: unknown {media} genre {g!r}; valid: {valid}")
        if gid not in out:
            out.append(gid)
    return out


@dataclass(frozen=True)
class DiscoverQuery:
    media: Media
    params: dict[str, str]  # everything but page and the date window
    date_from: date | None
    date_to: date | None
    only: frozenset[int] | None = None  # genres_mode "only": every genre of a title is in this set

    def window_params(self, lo: date | None, hi: date | None) -> dict[str, str]:
        p = dict(self.params)
        field_name = DATE_FIELD[self.media]
        if lo is not None:
            p[f"{field_name}.gte"] = lo.isoformat()
        if hi is not None:
            p[f"{field_name}.lte"] = hi.isoformat()
        return p

    def keep(self, result: dict[str, Any]) -> bool:
        if self.only is None:
            return True
        genres = result.get("genre_ids")
        return isinstance(genres, list) and bool(genres) and set(genres) <= self.only


def build_query(
    src: SourceSettings, tmdb: TmdbSettings, genre_ids: Sequence[int], all_genre_ids: Sequence[int]
) -> DiscoverQuery:
    params: dict[str, str] = {
        "language": src.language or tmdb.language,
        "include_adult": "true" if src.include_adult else "false",
        "sort_by": src.sort_by,
    }
    only: frozenset[int] | None = None
    if genre_ids:
        if src.genres_mode == "all":
            params["with_genres"] = ",".join(map(str, genre_ids))  # comma = AND
        else:
            params["with_genres"] = "|".join(map(str, genre_ids))  # pipe = OR
        if src.genres_mode == "only":
            only = frozenset(genre_ids)
            others = [g for g in all_genre_ids if g not in only]
            if others:
                params["without_genres"] = "|".join(map(str, others))
    if src.min_votes:
        params["vote_count.gte"] = str(src.min_votes)
    for key, value in src.params.items():
        params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return DiscoverQuery(
        media=src.media,
        params=params,
        date_from=date.fromisoformat(src.date_from) if src.date_from else None,
        date_to=date.fromisoformat(src.date_to) if src.date_to else None,
        only=only,
    )


def split_window(lo: date, hi: date, total: int) -> list[tuple[date, date]]:
    """Cut [lo, hi] into consecutive windows, as many as the total suggests (at least two)."""
    days = (hi - lo).days + 1
    parts = max(2, min(days, math.ceil(total / (WINDOW_CAP * 0.7))))
    edges = [lo + timedelta(days=(days * i) // parts) for i in range(parts + 1)]
    windows = []
    for a, b in itertools.pairwise(edges):
        if b > a:
            windows.append((a, b - timedelta(days=1)))
    windows[-1] = (windows[-1][0], hi)
    return windows


# ---------------------------------------------------------------------------------------------
# Enumeration (I/O)


@dataclass
class EnumerationStats:
    pages: int = 0  # discover pages requested
    windows: int = 0  # date windows harvested
    probes: int = 0  # first pages of windows too large to use
    results: int = 0
    duplicates: int = 0
    filtered_out: int = 0
    titles: int = 0
    reported_total: int = 0  # total_results of the query as asked
    extra: dict[str, int] = field(default_factory=dict)


class Enumerator:
    def __init__(self, client: TmdbClient, query: DiscoverQuery, today: date | None = None) -> None:
        self._client = client
        self._query = query
        self._today = today or datetime.now(UTC).date()
        self.stats = EnumerationStats()

    async def _page(self, lo: date | None, hi: date | None, page: int) -> dict[str, Any]:
        params = self._query.window_params(lo, hi)
        params["page"] = str(page)
        self.stats.pages += 1
        try:
            reply = await self._client.get(f"/discover/{self._query.media}", params)
        except RequestFailed as exc:
            raise exc.translated(f"discover/{self._query.media}") from None
        data = reply.data
        if reply.status != 200 or not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise SourceError(f"discover/{self._query.media}: unexpected answer (HTTP {reply.status})")
        return data

    async def total(self) -> int:
        """total_results of the query as configured (one request)."""
        first = await self._page(self._query.date_from, self._query.date_to, 1)
        return int(first.get("total_results", 0))

    async def entries(self) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
        """(tmdb id, discover result) for every matching title once, in window order."""
        q = self._query
        first = await self._page(q.date_from, q.date_to, 1)
        total = int(first.get("total_results", 0))
        self.stats.reported_total = total
        seen: set[int] = set()
        if total <= WINDOW_CAP:
            async for entry in self._window(q.date_from, q.date_to, first, seen):
                yield entry
            return
        lo = q.date_from or EARLIEST
        hi = q.date_to or (self._today + timedelta(days=365 * 5))
        if q.date_from is None or q.date_to is None:
            log.warning(
                "discover: %d results need date windows; titles without a %s cannot be reached that way",
                total,
                DATE_FIELD[q.media],
            )
        self.stats.probes += 1
        stack = list(reversed(split_window(lo, hi, total)))  # ascending order of dates
        while stack:
            a, b = stack.pop()
            page1 = await self._page(a, b, 1)
            n = int(page1.get("total_results", 0))
            if n <= WINDOW_CAP:
                async for entry in self._window(a, b, page1, seen):
                    yield entry
            elif a == b:
                raise SourceError(
                    f"discover: {n} {q.media} results on {a.isoformat()} alone, more than TMDB serves for "
                    "one query (10,000); narrow it with genres, min_votes, language or params"
                )
            else:
                self.stats.probes += 1
                stack.extend(reversed(split_window(a, b, n)))

    async def _window(
        self, lo: date | None, hi: date | None, first: dict[str, Any], seen: set[int]
    ) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
        self.stats.windows += 1
        pages = min(MAX_PAGES, int(first.get("total_pages", 0) or 0))
        data = first
        for page in range(1, pages + 1):
            if page > 1:
                data = await self._page(lo, hi, page)
            for result in data["results"]:
                if not isinstance(result, dict) or not isinstance(result.get("id"), int):
                    continue
                self.stats.results += 1
                tmdb_id = result["id"]
                if tmdb_id in seen:
                    self.stats.duplicates += 1
                    continue
                seen.add(tmdb_id)
                if not self._query.keep(result):
                    self.stats.filtered_out += 1
                    continue
                self.stats.titles += 1
                yield tmdb_id, result


# ---------------------------------------------------------------------------------------------
# The source


class DiscoverSource:
    def __init__(self, source: SourceSettings, tmdb: TmdbSettings, sink: Sink) -> None:
        self.settings = source
        self.media: Media = source.media
        self._tmdb = tmdb
        self._sink = sink
        self._state: RunState | None = None
        self.stats = InputCounts()
        self.enumeration: EnumerationStats | None = None

    count_is_cheap = True  # counting is free once the listing is spooled
    offline = False  # the listing is TMDB's

    def describe(self) -> str:
        s = self.settings
        parts = [f"discover/{s.media}"]
        if s.genres:
            parts.append(f"genres {s.genres_mode} of {','.join(map(str, s.genres))}")
        if s.date_from or s.date_to:
            parts.append(f"dates {s.date_from or '...'} to {s.date_to or '...'}")
        if s.min_votes:
            parts.append(f"votes >= {s.min_votes}")
        parts.append("details" if s.details else "discover results only")
        return "; ".join(parts)

    async def identity(self) -> str:
        s = self.settings
        return orjson.dumps(
            {
                "media": s.media,
                "genres": [str(g).lower() for g in s.genres],
                "genres_mode": s.genres_mode,
                "dates": [s.date_from, s.date_to],
                "language": s.language or self._tmdb.language,
                "include_adult": s.include_adult,
                "min_votes": s.min_votes,
                "sort_by": s.sort_by,
                "params": s.params,
                "details": s.details,
            },
            option=orjson.OPT_SORT_KEYS,
        ).decode()

    async def query(self, client: TmdbClient) -> DiscoverQuery:
        genre_ids: list[int] = []
        all_ids: list[int] = []
        if self.settings.genres:
            available = await genre_list(client, self.media)
            genre_ids = resolve_genres(self.settings.genres, available, self.media)
            all_ids = [gid for gid, _ in available]
        return build_query(self.settings, self._tmdb, genre_ids, all_ids)

    async def prepare(self, ctx: Prepare) -> bool:
        """Enumerate the listing into the spool, unless an earlier invocation did; False if stopped."""
        state = self._state = ctx.state
        if state.source.spool is not None:
            return True
        for key in await self._sink.list_keys(spool_prefix(state)):
            await self._sink.delete(key)  # a cut-short enumeration starts over
        enumerator = Enumerator(ctx.client, await self.query(ctx.client))
        self.enumeration = enumerator.stats
        writer = ctx.lease.token
        part: list[bytes] = []
        parts = 0

        async def flush() -> None:
            nonlocal part, parts
            ctx.lease.check()
            await self._sink.put(spool_key(state, writer, parts), b"".join(part), "application/x-ndjson")
            parts += 1
            part = []

        async for tmdb_id, result in enumerator.entries():
            if ctx.stop.is_set():
                log.info("discover: stopped while enumerating; it starts over next time")
                return False
            line = str(tmdb_id).encode()
            if not self.settings.details:
                line += b"\t" + orjson.dumps(result)
            part.append(line + b"\n")
            if len(part) >= SPOOL_PART:
                await flush()
        if part:
            await flush()
        e = enumerator.stats
        state.source.spool = Spool(
            writer=writer,
            parts=parts,
            titles=e.titles,
            results=e.results,
            duplicates=e.duplicates,
            filtered_out=e.filtered_out,
            pages=e.pages,
            probes=e.probes,
            windows=e.windows,
            reported_total=e.reported_total,
        )
        await ctx.store.save(state)
        log.info(
            "discover: %d titles in %d windows, %d pages (the minimum is %d)",
            e.titles,
            e.windows,
            e.pages,
            math.ceil(e.results / PAGE_SIZE),
        )
        return True

    async def listing(self, ctx: Prepare) -> AsyncGenerator[int, None]:
        """The ids the query selects now (for a refresh: source/refresh.py)."""
        enumerator = Enumerator(ctx.client, await self.query(ctx.client))
        async for tmdb_id, _ in enumerator.entries():
            yield tmdb_id

    def _spool(self) -> tuple[RunState, Spool]:
        state = self._state
        assert state is not None and state.source.spool is not None, "prepare() first"
        return state, state.source.spool

    async def count(self) -> int:
        return self._spool()[1].titles

    async def titles(self) -> AsyncGenerator[Title, None]:
        state, spool = self._spool()
        self.stats = stats = InputCounts(
            rows=spool.results, duplicates=spool.duplicates, filtered_out=spool.filtered_out
        )
        details = self.settings.details
        for n in range(spool.parts):
            key = spool_key(state, spool.writer, n)
            raw = await self._sink.get(key)
            if raw is None:
                raise SourceError(f"{self._sink.url}/{key} is missing; run with --fresh")
            for line in raw.splitlines():
                ident, _, summary = line.partition(b"\t")
                pos = stats.selected
                stats.selected = pos + 1
                yield Title(pos, self.media, tmdb_id=int(ident), summary=None if details else summary)


async def genre_list(client: TmdbClient, media: Media) -> list[tuple[int, str]]:
    """TMDB's genres for `media`, as (id, name)."""
    try:
        reply = await client.get(f"/genre/{media}/list", {"language": "en-US"})
    except RequestFailed as exc:
        raise exc.translated(f"genre/{media}/list") from None
    data = reply.data
    genres = data.get("genres") if isinstance(data, dict) else None
    if reply.status != 200 or not isinstance(genres, list):
        raise SourceError(f"genre/{media}/list: unexpected answer (HTTP {reply.status})")
    return [(int(g["id"]), str(g["name"])) for g in genres if isinstance(g, dict) and "id" in g]
