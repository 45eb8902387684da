"""A local stand-in for api.themoviedb.org/3, faithful to the facts in tmdb-api.md.

Serves the catalogue (titles.py, bodies.py, discover.py) over real HTTP/1.1 with keep-alive, and
adds what a harvester must survive: authentication, a strict sliding-window rate limit, latency,
random 5xx errors and resets, scripted per-path faults and TMDB's quirks (QUIRKS). Counts everything
in `StandinStats` for tests and benchmarks.

Order of decisions for one request:
    arrival recorded -> rate-limit decision -> latency sleep -> scripted fault -> random error
    -> random reset -> quirks "throttle" and "edge" (the CDN's own answers) -> authentication -> route

so a 429 is decided on arrival (the limiter counts arrivals), every answer including a 429 waits
the simulated latency, and faults act like a proxy in front of TMDB (before the credential check).

Rate-limit window: at most `rate_limit` arrivals in any 1.0 s sliding window (including this one).
By default the 429'd requests count too (`count_rejected=True`): TMDB's message reports request
counts far above the limit ("Your request count (1559) is over the allowed limit of 40."), which
suggests rejected requests are counted. So a client that keeps hammering stays locked out until it
slows down; with `count_rejected=False` only admitted requests fill the window.

Seasons (seasons.py): each `season/N` of a /tv/{id} append_to_response adds a "season/N" key with
the season and its episodes when the series has season N, and is silently left out when it has not
(as TMDB); `GET /3/tv/{id}/season/{n}` answers the same body, or 404 (status 34). Either way one
request, however many seasons it carries; `stats.seasons_served` counts the season bodies sent.

People (people.py): `GET /3/person/{id}` (append_to_response as for titles, at most 20),
`/3/person/{id}/{name}` and `/3/person/changes` (the titles' change-list rules) answer the people
the credits name; `person_missing_share` of them, and every other id, answer 404 (status 34).

Reference lists (reference.py): `GET /3/configuration/countries`, `/3/configuration/languages` and
`/3/certification/{movie,tv}/list` answer fixed bodies of real codes and names (the genre lists are
bodies.py's); any other path under /3/configuration or /3/certification is 404 (status 34).

/find with a missing or unknown external_source answers HTTP 422, status_code 5: TMDB's documented
pairing for code 5 ("Invalid parameters"); the exact real answer is unverified.

`/__standin__/stats` (GET) and `/__standin__/reset` (POST) need no credential and are not counted,
so a benchmark in another process can read and zero the counters.

Days (days.py): the server's today is `base_date + day`; `standin.config.day += 1` moves the catalogue
on, deterministically from `seed`: some titles change (their bodies show a revision), some appear (in
the export and discover), some go (404). Day 0 answers exactly as a stand-in without days.
    GET /3/movie/changes, /3/tv/changes    TMDB's change lists (changes.py): start_date, end_date
                                           (at most 14 days apart, else 422 status 20), page, 100 a page
    GET /p/exports/{kind}_ids_MM_DD_YYYY.json.gz
                                           TMDB's daily id exports (exports.py), as files.tmdb.org
                                           serves them: no credential, no rate limit, not counted in
                                           `requests` (in `exports`); streamed; today's from 08:00 UTC
                                           (`hour`); a missing one is 404 (`export_missing_status`).
                                           Faults scripted for the path act on the download: 5xx and
                                           429 statuses, "reset", "timeout", "truncate" (half the lines,
                                           then the connection closes), "badjson" (a body not gzip),
                                           "gzip-cut" and "short-length" (cut short unseen by HTTP:
                                           exports.py, quirk "export").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import date as Date
from typing import Any, Final

import orjson
from aiohttp import web

from harvester.config import MAX_APPENDS
from harvester.items import Media

from . import bodies, cdn, changes, days, discover, exports, people, reference, seasons, titles
from .bodies import DEFAULT_LANGUAGE, TitleState
from .errors import ERRORS, error_body, rate_limit_body
from .titles import FindCase, Kind

DEFAULT_TOKEN: Final = "standin-read-access-token"
DEFAULT_API_KEY: Final = "standin-api-key"
CONTENT_TYPE: Final = "application/json;charset=utf-8"
FAULTS: Final = (
    frozenset({"500", "502", "503", "504", "429", "reset", "truncate", "badjson", "timeout"})
    | {f"429-{form}" for form in cdn.THROTTLE_FORMS}  # a 429 in one of the CDN's forms (cdn.py)
    | frozenset(cdn.EDGE_FORMS)  # what the edge sends instead: HTML 5xx, an HTML 200, a 200 error body
    | frozenset(exports.CUTS)  # an export download cut short where HTTP does not show it (exports.py)
)
ROUTES: Final = (
    "authentication",
    "find",
    "movie",
    "tv",
    "person",
    "genre",
    "discover",
    *reference.ROUTES,
    "other",
)
EXTERNAL_SOURCES: Final = frozenset(
    {
        "imdb_id",
        "facebook_id",
        "instagram_id",
        "tvdb_id",
        "tiktok_id",
        "twitter_id",
        "wikidata_id",
        "youtube_id",
    }
)

# TMDB as its users have seen it (../shared/reference/tmdb-quirks.md), off by default. Each quirk, when
# switched on, touches a share `quirk_rate` of the answers it applies to (drawn from its own seeded
# generator, so switching quirks on does not move the latency and error draws):
#   throttle  every 429 (limiter or scripted) in one of the CDN's forms, drawn per answer (cdn.py: no
#             Retry-After, Retry-After in seconds or as an HTTP date, an HTML body), and 429s out of
#             the blue (these are what stats.quirks["throttle"] counts)
#   edge      502/503/504 with HTML bodies from the edge; a 200 whose body is not JSON; a 200 whose
#             JSON is an error (`"success": false`, TMDB's codes 21 and 40)
#   append    a details 200 without the append_to_response sections asked for
#   find      /find naming the id in both movie_results and tv_results, or another title of the media
#             before it (titles.find_entries: a property of the title, drawn from the seed)
#   changes   change lists with "id": null and "adult": null entries and ids repeated across pages;
#             page 501 refused with HTTP 422 {"errors": [...]}
#   export    the first download of each export file cut short where HTTP does not show it (a whole
#             chunked body whose gzip has no trailer, or a body short of its Content-Length); blank
#             lines and titles in other scripts in the files (not a share: every file's first download;
#             a share of the lines; exports.py)
#   holes     details bodies with imdb_id null, "" or malformed, release_date "", popularity and
#             runtime null, ids beyond 2^31 inside the body (titles.holes_of: a property of the title,
#             drawn from the seed); and the direct /movie/tt... answering a body without a usable imdb_id
#   gzip      every API answer gzip-compressed, asked for or not (not a share: all of them; not the
#             /__standin__ endpoints, nor the export files, which are gzip files already)
QUIRKS: Final = frozenset({"throttle", "edge", "append", "find", "changes", "export", "holes", "gzip"})
DEFAULT_QUIRK_RATE: Final = 0.02

_FAULT_CODES: Final = {"500": 11, "502": 43, "503": 9, "504": 24}
_RANDOM_ERROR_CODES: Final = (11, 43, 9, 46, 24)
_AUTH_OK: Final = b'{"success":true,"status_code":1,"status_message":"Success."}'
_HANG_S: Final = 3600.0  # "timeout" fault: longer than any client timeout; released on shutdown


# ---------------------------------------------------------------------------------------------
# Configuration and statistics


@dataclass
class StandinConfig:
    """How the stand-in behaves. Mutable: the server reads it on every request."""

    valid_tokens: frozenset[str] = frozenset({DEFAULT_TOKEN})  # Bearer read-access tokens
    valid_api_keys: frozenset[str] = frozenset({DEFAULT_API_KEY})  # v3 ?api_key=
    suspended: frozenset[str] = frozenset()  # tokens or keys answered with 401, status 10
    rate_limit: float = 0.0  # arrivals allowed in any 1.0 s window; 0 = no limit
    count_rejected: bool = True  # 429'd arrivals fill the window too (see the module docstring)
    retry_after: float | None = None  # seconds for a Retry-After header on 429; None = no header
    latency: tuple[float, float] = (0.0, 0.0)  # (min_s, max_s) of a uniform per-request delay
    error_rate: float = 0.0  # share of requests answered with a random 500/502/503/504
    reset_rate: float = 0.0  # share of requests whose connection is reset, unanswered
    seed: int = 0  # of the latency and error-rate draws
    # Request path ("/3/movie/tt0000009") -> faults, consumed one per request to that path.
    faults: dict[str, list[str]] = field(default_factory=dict)
    # Pins chosen IMDb ids to a kind (e.g. real series ids to "tv"); canonical ids only.
    kind_overrides: dict[str, Kind] = field(default_factory=dict)
    # Discover universes (see discover.py): how many movies and TV shows the listings hold, and
    # optionally one day crowded with `crowded_count` of them (more than one query can page through).
    discover_movies: int = discover.DEFAULT_MOVIES
    discover_tv: int = discover.DEFAULT_TV
    crowded_day: str | None = None
    crowded_count: int = discover.DEFAULT_CROWDED_COUNT
    # Days (days.py): the server's today is base_date + day; moving `day` changes, adds and removes
    # titles, drawn from `seed` at these shares of the catalogue a day.
    day: int = 0
    base_date: Date = field(default_factory=lambda: datetime.now(UTC).date())
    changed_share: float = days.DEFAULT_CHANGED_SHARE
    new_share: float = days.DEFAULT_NEW_SHARE
    gone_share: float = days.DEFAULT_GONE_SHARE
    # Crowded change days: day -> k more ids that day's change list names (days.py), so a test passes
    # TMDB's 500 pages (50,000 ids) a query without a catalogue that large.
    crowded_changes: dict[int, int] = field(default_factory=dict)
    # Daily exports (exports.py): titles of the day-0 population in them (None: as many as discover),
    # the hour of the server's today (None: the real UTC time of day; today's files appear at 08:00),
    # the status of a missing file, and the share of movies that are direct-to-video ("video": true).
    export_movies: int | None = None
    export_tv: int | None = None
    hour: float | None = None
    export_missing_status: int = 404
    video_share: float = 0.0
    # Quirks (QUIRKS above): which are on, and the share of the answers each applies to that it touches.
    quirks: frozenset[str] = frozenset()
    quirk_rate: float = DEFAULT_QUIRK_RATE
    # Pins chosen IMDb ids to a /find answer with more than one entry (titles.FindCase), quirk or not:
    # "ambiguous" (two records both claim the id) and "unclaimed" (neither does) exist only here.
    find_overrides: dict[str, FindCase] = field(default_factory=dict)
    # People (people.py): the share of the people credits name that TMDB has merged or deleted (404).
    person_missing_share: float = people.DEFAULT_MISSING_SHARE

    def __post_init__(self) -> None:
        lo, hi = self.latency
        if not 0 <= lo <= hi:
            raise ValueError(f"latency must be 0 <= min <= max, not {self.latency}")
        for rate in ("error_rate", "reset_rate"):
            if not 0 <= getattr(self, rate) <= 1:
                raise ValueError(f"{rate} must be within [0, 1], not {getattr(self, rate)}")
        if self.rate_limit < 0:
            raise ValueError(f"rate_limit must be >= 0, not {self.rate_limit}")
        for path, faults in self.faults.items():
            unknown = set(faults) - FAULTS
            if unknown:
                raise ValueError(f"unknown fault {sorted(unknown)[0]!r} for {path} (known: {sorted(FAULTS)})")
        if self.discover_movies < 0 or self.discover_tv < 0 or self.crowded_count < 0:
            raise ValueError("discover_movies, discover_tv and crowded_count must be >= 0")
        if self.crowded_day is not None and not discover.is_date(self.crowded_day):
            raise ValueError(f"crowded_day must be a YYYY-MM-DD date, not {self.crowded_day!r}")
        for imdb_id in self.kind_overrides:
            if titles.parse_imdb_id(imdb_id) is None:
                raise ValueError(f"kind_overrides: {imdb_id!r} is not a canonical IMDb id")
        for name in ("changed_share", "new_share", "gone_share", "video_share", "person_missing_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1], not {getattr(self, name)}")
        if self.day < 0:
            raise ValueError(f"day must be >= 0, not {self.day}")
        if any(d < 1 or k < 0 for d, k in self.crowded_changes.items()):
            raise ValueError(f"crowded_changes maps days >= 1 to counts >= 0, not {self.crowded_changes}")
        if (self.export_movies or 0) < 0 or (self.export_tv or 0) < 0:
            raise ValueError("export_movies and export_tv must be >= 0")
        if self.hour is not None and not 0 <= self.hour < 24:
            raise ValueError(f"hour must be within [0, 24), not {self.hour}")
        unknown_quirks = set(self.quirks) - QUIRKS
        if unknown_quirks:
            raise ValueError(
                f"unknown quirk {sorted(unknown_quirks)[0]!r} (known: {', '.join(sorted(QUIRKS))})"
            )
        if not 0 <= self.quirk_rate <= 1:
            raise ValueError(f"quirk_rate must be within [0, 1], not {self.quirk_rate}")
        for imdb_id, case in self.find_overrides.items():
            if titles.parse_imdb_id(imdb_id) is None or case not in titles.FIND_CASES:
                raise ValueError(f"find_overrides: {imdb_id!r} -> {case!r} (known: {titles.FIND_CASES})")
        if self.export_missing_status not in (403, 404):
            raise ValueError(f"export_missing_status must be 403 or 404, not {self.export_missing_status}")


def _zero_routes() -> dict[str, int]:
    return dict.fromkeys(ROUTES, 0)


@dataclass
class StandinStats:
    """Counters since start or the last reset. Gauges (in_flight, open_connections) survive resets."""

    requests: int = 0  # API requests (the /__standin__ endpoints are not counted)
    by_route: dict[str, int] = field(default_factory=_zero_routes)
    by_status: dict[int, int] = field(default_factory=dict)  # HTTP status of the answers sent
    rate_limited: int = 0  # 429s, from the limiter and from scripted "429" faults
    faults: dict[str, int] = field(default_factory=dict)  # scripted faults served, by name
    random_errors: int = 0  # 5xx answers drawn by error_rate
    random_resets: int = 0  # connections reset, drawn by reset_rate
    max_window: int = 0  # most arrivals in any sliding 1.0 s window
    max_window_admitted: int = 0  # the same, counting only requests the limiter let through
    first_arrival: float = 0.0  # server clock of the first and the last counted request:
    last_arrival: float = 0.0  # requests / (last - first) is the rate the server saw
    in_flight: int = 0
    max_in_flight: int = 0
    open_connections: int = 0
    max_open_connections: int = 0
    connections: int = 0  # connections accepted (few, if the client reuses them)
    changes: int = 0  # /movie/changes and /tv/changes answers (counted in by_route's movie and tv too)
    exports: int = 0  # export files served (not API requests: neither counted nor rate-limited)
    export_credentials: int = 0  # export requests that carried a TMDB credential (none is needed)
    quirks: dict[str, int] = field(default_factory=dict)  # answers each quirk touched, by name
    seasons_served: int = 0  # season bodies: appended season/N sections and /tv/{id}/season/{n}

    def reset(self) -> None:
        in_flight, open_connections = self.in_flight, self.open_connections
        fresh = StandinStats(in_flight=in_flight, max_in_flight=in_flight)
        fresh.open_connections = fresh.max_open_connections = open_connections
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (status keys become strings)."""
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["by_status"] = {str(k): v for k, v in sorted(self.by_status.items())}
        d["by_route"] = dict(self.by_route)
        d["faults"] = dict(self.faults)
        d["quirks"] = dict(self.quirks)
        return d


class SlidingWindow:
    """The arrival times of the last `width` seconds. Pure: callers pass the time in."""

    __slots__ = ("_times", "width")

    def __init__(self, width: float = 1.0) -> None:
        self.width = width
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        """Arrivals in (now - width, now]."""
        times, edge = self._times, now - self.width
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def add(self, now: float) -> None:
        self._times.append(now)

    def clear(self) -> None:
        self._times.clear()


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    retry_after: float | None = None


def _error(code: int, message: str | None = None) -> _Answer:
    return _Answer(ERRORS[code][0], error_body(code, message))


def _route_of(path: str) -> str:
    if not path.startswith("/3/"):
        return "other"
    head = path[3:].partition("/")[0]
    return head if head in ROUTES else "other"


class StandinServer:
    """The request handler and its state: configuration, statistics, rate-limit window."""

    def __init__(
        self, config: StandinConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config if config is not None else StandinConfig()
        self.stats = StandinStats()
        self._clock = clock
        self._rng = random.Random(self.config.seed)
        self._quirk_rng = random.Random(f"quirks-{self.config.seed}")
        self._limit_window = SlidingWindow()  # what the limiter decides on
        self._arrivals = SlidingWindow()  # for stats.max_window
        self._admitted = SlidingWindow()  # for stats.max_window_admitted
        self._closing = asyncio.Event()
        self._downloads = exports.Downloads()  # quirk "export" cuts each file's first download

    def quirk(self, name: str) -> bool:
        """Whether quirk `name` touches this answer: it is on, and the draw falls in its share."""
        cfg = self.config
        if name not in cfg.quirks:
            return False
        hit = self._quirk_rng.random() < cfg.quirk_rate
        if hit:
            self.stats.quirks[name] = self.stats.quirks.get(name, 0) + 1
        return hit

    def reset_stats(self) -> None:
        self.stats.reset()
        self._arrivals.clear()
        self._admitted.clear()

    def release_hung(self) -> None:
        """Let "timeout" faults end (at shutdown)."""
        self._closing.set()

    # -- connections (called by _CountingServer) --

    def connection_opened(self) -> None:
        s = self.stats
        s.connections += 1
        s.open_connections += 1
        s.max_open_connections = max(s.max_open_connections, s.open_connections)

    def connection_closed(self) -> None:
        self.stats.open_connections -= 1

    # -- requests --

    def _arrive(self) -> int:
        """Record an arrival; return its window count if the limiter rejects it, else 0."""
        now, cfg, s = self._clock(), self.config, self.stats
        if not s.first_arrival:
            s.first_arrival = now
        s.last_arrival = now
        s.max_window = max(s.max_window, self._arrivals.count(now) + 1)
        self._arrivals.add(now)
        count = self._limit_window.count(now) + 1
        over = 0 < cfg.rate_limit < count
        if not over or cfg.count_rejected:
            self._limit_window.add(now)
        if over:
            return count
        s.max_window_admitted = max(s.max_window_admitted, self._admitted.count(now) + 1)
        self._admitted.add(now)
        return 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__standin__/"):
            return self._control(request)
        if path.startswith(exports.PREFIX):
            return await self._export(request)
        s, cfg = self.stats, self.config
        s.requests += 1
        s.by_route[_route_of(path)] += 1
        over_count = self._arrive()
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            lo, hi = cfg.latency
            if hi > 0:
                await asyncio.sleep(self._rng.uniform(lo, hi))
            if over_count:
                return self._too_many(over_count)
            planned = cfg.faults.get(path)
            if planned:
                fault = planned.pop(0)
                s.faults[fault] = s.faults.get(fault, 0) + 1
                return await self._fault(request, fault)
            if cfg.error_rate > 0 and self._rng.random() < cfg.error_rate:
                s.random_errors += 1
                return self._send(_error(self._rng.choice(_RANDOM_ERROR_CODES)))
            if cfg.reset_rate > 0 and self._rng.random() < cfg.reset_rate:
                s.random_resets += 1
                return await self._fault(request, "reset")
            if self.quirk("throttle"):  # the CDN's 429 out of the blue: its limits are not only ours
                return self._too_many(self._limit_window.count(self._clock()))
            if self.quirk("edge"):
                form, code = self._quirk_rng.choice(cdn.EDGE_FORMS), self._quirk_rng.choice(cdn.OK_ERRORS)
                return self._edge(form, code)
            return self._send(self._answer(request))
        finally:
            s.in_flight -= 1

    def _too_many(self, count: int, form: str | None = None) -> web.Response:
        """A 429: TMDB's JSON with `retry_after` as configured, or, with quirk "throttle" (a form drawn
        per answer) or a scripted "429-<form>", one of the CDN's forms (cdn.THROTTLE_FORMS)."""
        cfg = self.config
        limit = cfg.rate_limit or 40.0  # a scripted 429 with no limiter: TMDB's usual cap
        if form is None and "throttle" in cfg.quirks:
            form = self._quirk_rng.choice(cdn.THROTTLE_FORMS)
        if form is None:
            return self._send(_Answer(429, rate_limit_body(count, limit), cfg.retry_after))
        wait = cdn.RETRY_AFTER_S if cfg.retry_after is None else cfg.retry_after
        body, headers = cdn.throttled(form, rate_limit_body(count, limit), wait, time.time())
        return self._send(_Answer(429, body), headers)

    def _edge(self, form: str, code: int = cdn.OK_ERRORS[0]) -> web.Response:
        """What the edge answers instead of TMDB (cdn.EDGE_FORMS); "200-error" is TMDB's own error
        body on a 200, with status_code `code`."""
        if form == "200-error":
            return self._send(_error(code))
        status = int(form.partition("-")[0])
        body, headers = cdn.page(status)
        return self._send(_Answer(status, body), headers)

    def _count_status(self, status: int) -> None:
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1

    def _send(self, answer: _Answer, headers: Mapping[str, str] | None = None) -> web.Response:
        """The answer as a response; `headers` add to (or replace) the JSON content type."""
        s = self.stats
        self._count_status(answer.status)
        all_headers = {"Content-Type": CONTENT_TYPE, **(headers or {})}
        if answer.status == 429:
            s.rate_limited += 1
            if answer.retry_after is not None:
                # Real servers send whole seconds; fractions keep tests fast and clients must cope.
                all_headers["Retry-After"] = f"{answer.retry_after:g}"
        body = self._encoded(answer.body, all_headers)
        return web.Response(body=body, status=answer.status, headers=all_headers)

    def _encoded(self, body: bytes, headers: dict[str, str]) -> bytes:
        """With quirk "gzip", the body gzip-compressed (and `headers` saying so), asked for or not:
        TMDB's API does it whatever the request's Accept-Encoding."""
        if "gzip" not in self.config.quirks:
            return body
        self.stats.quirks["gzip"] = self.stats.quirks.get("gzip", 0) + 1
        headers["Content-Encoding"] = "gzip"
        return cdn.gzipped(body)

    async def _fault(self, request: web.BaseRequest, fault: str) -> web.StreamResponse:
        if fault in _FAULT_CODES:
            return self._send(_error(_FAULT_CODES[fault]))
        if fault == "429":
            return self._too_many(self._limit_window.count(self._clock()))
        if fault.startswith("429-"):
            return self._too_many(self._limit_window.count(self._clock()), fault.removeprefix("429-"))
        if fault in cdn.EDGE_FORMS:
            return self._edge(fault)
        transport = request.transport
        if fault == "badjson":
            body = self._answer(request).body
            return self._send(_Answer(200, body[: len(body) // 2]))  # complete HTTP, broken JSON
        if fault == "truncate":
            headers = {"Content-Type": CONTENT_TYPE}
            body = self._encoded(self._answer(request).body, headers)
            response = web.StreamResponse(status=200, headers=headers)
            response.content_length = len(body)
            self._count_status(200)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            if transport is not None:
                transport.close()  # flushes what was written, then FIN: the client is owed the rest
            return response
        if fault == "timeout":
            # Never answers; ends when the client gives up (handler cancellation) or at shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _HANG_S)
        # "reset", or a "timeout" released at shutdown: close without a response.
        if transport is not None:
            transport.abort()
        return web.Response()  # aiohttp finds the transport gone and drops this quietly

    def _control(self, request: web.BaseRequest) -> web.Response:
        path, method = request.path, request.method
        if path == "/__standin__/stats" and method == "GET":
            pass
        elif path == "/__standin__/reset" and method == "POST":
            self.reset_stats()
        else:
            return web.Response(body=error_body(34), status=404, headers={"Content-Type": CONTENT_TYPE})
        body = orjson.dumps(self.stats.as_dict())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    # -- TMDB proper --

    def _auth_error(self, request: web.BaseRequest) -> _Answer | None:
        cfg = self.config
        token: str | None = None
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        api_key = request.query.get("api_key")
        if token is None and api_key is None:
            return _error(7)
        if token in cfg.suspended or api_key in cfg.suspended:
            return _error(10)
        if token in cfg.valid_tokens or api_key in cfg.valid_api_keys:
            return None
        return _error(7)

    def _answer(self, request: web.BaseRequest) -> _Answer:
        """The answer TMDB would give (no faults): authentication, then routing."""
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        path = request.path
        parts = path[3:].split("/") if path.startswith("/3/") else [""]
        head = parts[0]
        if head not in ROUTES or head == "other":
            return _error(34)
        if request.method not in ("GET", "HEAD"):
            return _error(42)
        query = request.query
        language = query.get("language") or DEFAULT_LANGUAGE
        if parts == ["authentication"]:
            return _Answer(200, _AUTH_OK)
        if parts in (["genre", "movie", "list"], ["genre", "tv", "list"]):
            return _Answer(200, bodies.genre_list_body("movie" if parts[1] == "movie" else "tv"))
        if head in reference.ROUTES:  # countries, languages, certifications (reference.py)
            known = reference.body(parts)
            return _Answer(200, known) if known is not None else _error(34)
        if parts in (["discover", "movie"], ["discover", "tv"]):
            page = discover.parse_page(query.get("page"))
            if page is None:
                return _error(22)
            media_d: Media = "movie" if parts[1] == "movie" else "tv"
            return _Answer(200, discover.page_body(media_d, self.config, query, page, language))
        if parts in (["movie", "changes"], ["tv", "changes"]):
            return self._changes("movie" if head == "movie" else "tv", query)
        if parts == ["person", "changes"]:
            return self._changes("person", query)
        if head == "person" and len(parts) in (2, 3) and all(parts[1:]):
            return self._person(parts[1], query, language, parts[2] if len(parts) == 3 else "")
        if head == "tv" and len(parts) == 4 and parts[1] and parts[2] == "season" and parts[3]:
            return self._details("tv", parts[1], query, language, f"{seasons.PREFIX}{parts[3]}")
        if head in ("movie", "tv") and len(parts) == 3 and parts[1] and parts[2]:
            return self._details("movie" if head == "movie" else "tv", parts[1], query, language, parts[2])
        if len(parts) != 2 or not parts[1]:
            return _error(34)
        if head == "find":
            source = query.get("external_source")
            if source not in EXTERNAL_SOURCES:
                return _error(5)
            # Only IMDb ids are modelled: any other source finds nothing (HTTP 200, empty arrays).
            entries = titles.find_entries(parts[1], self.config) if source == "imdb_id" else []
            listed = [(e, st) for e in entries if (st := self._state(e.media, e.imdb_id)) is not None]
            if len(listed) < len(entries):
                return _Answer(200, bodies.FIND_EMPTY)  # gone from TMDB (days.py)
            if len(listed) > 1:  # quirk "find", or find_overrides (titles.find_case)
                self.stats.quirks["find"] = self.stats.quirks.get("find", 0) + 1
            return _Answer(200, bodies.find_entries_body(listed, language))
        if head in ("genre", "discover"):
            return _error(34)
        media: Media = "movie" if head == "movie" else "tv"
        return self._details(media, parts[1], query, language)

    def _details(
        self, media: Media, title_id: str, query: Mapping[str, str], language: str, sub: str = ""
    ) -> _Answer:
        """/movie/{id}, /tv/{id} (with append_to_response), or one sub-resource: /movie/{id}/credits."""
        items = [a.strip() for a in query.get("append_to_response", "").split(",") if a.strip()]
        if len(items) > MAX_APPENDS:
            return _error(27)
        cfg = self.config
        overrides = cfg.kind_overrides
        tmdb_id: int | None = None
        if title_id.isascii() and title_id.isdigit():
            tmdb_id = int(title_id)
            # A record only a /find case names (titles.find_entries) answers too.
            imdb_id = titles.imdb_id_for(media, tmdb_id, overrides) or titles.find_twin(media, tmdb_id, cfg)
        elif title_id.startswith("tt"):
            # The undocumented /movie/tt... form, misbehaviours included; /tv/tt... never works.
            imdb_id = titles.direct_lookup(title_id, overrides) if media == "movie" else None
        else:
            return _error(6)
        state = None if imdb_id is None else self._state(media, imdb_id)
        if imdb_id is None or state is None:
            return _error(34)
        holes = titles.holes_of(media, imdb_id, cfg)
        if tmdb_id is None and holes is not None and holes.imdb_id is not None:
            return _error(34)  # a record without a usable IMDb id is not found by one
        if tmdb_id is None and self.quirk("holes"):
            holes = titles.misread(holes, title_id)  # the undocumented path misbehaving
        elif holes is not None:
            self.stats.quirks["holes"] = self.stats.quirks.get("holes", 0) + 1
        if sub.startswith(seasons.PREFIX):  # /tv/{id}/season/{n}: 404 for a season the series lacks
            number = seasons.season_items([sub])
            body = seasons.season_body(imdb_id, number[0][1], state, tmdb_id) if number else None
            if body is None:
                return _error(34)
            self.stats.seasons_served += 1
            return _Answer(200, body)
        if sub:
            body = bodies.sub_resource_body(media, imdb_id, sub, language, state, holes, tmdb_id)
            return _error(34) if body is None else _Answer(200, body)
        append = list(dict.fromkeys(items))
        if append and self.quirk("append"):
            append = []  # TMDB has answered without the appended sections at all (tmdb-quirks.md)
        body = bodies.details_body(media, imdb_id, append, language, state, holes, tmdb_id)
        asked = seasons.season_items(append) if media == "tv" else []
        if asked:  # each season/N that exists, as TMDB: one that does not is silently left out
            body, served = seasons.append_seasons(body, imdb_id, asked, state, tmdb_id)
            self.stats.seasons_served += served
        return _Answer(200, body)

    def _person(self, person_id: str, query: Mapping[str, str], language: str, sub: str = "") -> _Answer:
        """/person/{id} (with append_to_response), or one sub-resource: /person/{id}/combined_credits."""
        items = [a.strip() for a in query.get("append_to_response", "").split(",") if a.strip()]
        if len(items) > MAX_APPENDS:
            return _error(27)
        if not (person_id.isascii() and person_id.isdigit()):
            return _error(34)
        pid, cfg = int(person_id), self.config
        if sub:
            body = people.sub_resource_body(pid, sub, cfg)
        else:
            append = list(dict.fromkeys(items))
            if append and self.quirk("append"):
                append = []  # as for titles: the appended sections missing altogether
            body = people.person_body(pid, cfg, append, language)
        return _error(34) if body is None else _Answer(200, body)

    def _state(self, media: Media, imdb_id: str) -> TitleState | None:
        """How the title stands on the server's day; None when it is gone (days.py)."""
        cfg = self.config
        revision = 0
        if days.moved(cfg):
            n = titles.parse_imdb_id(imdb_id)
            line = days.timeline(media, cfg)
            if n is None or not line.alive(n, cfg.day):
                return None
            revision = line.revision(n, cfg.day)
        date = discover.crowded_date(media, cfg, imdb_id)
        return TitleState(date, revision, titles.video_of(media, imdb_id, cfg.video_share))

    def _changes(self, media: people.Subject, query: Mapping[str, str]) -> _Answer:
        # The quirk's draws are seeded by the query (changes.py), not by the order of requests: the
        # answers it touched are counted here as quirk() counts its own.
        quirky, hits = "changes" in self.config.quirks, self.stats.quirks
        if quirky and changes.past_last_page(query.get("page")):
            hits["changes"] = hits.get("changes", 0) + 1
            return _Answer(422, changes.PAGE_LIMIT_BODY)  # TMDB's own body: no status_code
        page = discover.parse_page(query.get("page"))
        if page is None:
            return _error(22)
        window = changes.window(self.config, query.get("start_date"), query.get("end_date"))
        if isinstance(window, int):
            return _error(window)
        self.stats.changes += 1
        rate = self.config.quirk_rate if quirky else None
        answer = changes.page_body(self.config, media, *window, page, rate)
        if answer.planted:
            hits["changes"] = hits.get("changes", 0) + 1
        return _Answer(200, answer.body)

    # -- the daily exports (files.tmdb.org/p/exports/...) --

    async def _export(self, request: web.BaseRequest) -> web.StreamResponse:
        """An export file, streamed; no credential, no rate limit (another host on the real TMDB)."""
        cfg, path = self.config, request.path
        if "Authorization" in request.headers or "api_key" in request.query:
            self.stats.export_credentials += 1
        if request.method not in ("GET", "HEAD"):
            return self._plain(405, b"Method Not Allowed")
        planned = cfg.faults.get(path)
        fault = planned.pop(0) if planned else None
        if fault is not None:
            self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1
            if fault in _FAULT_CODES or fault == "429":
                return self._plain(int(fault), b"Service Unavailable")
            if fault in ("reset", "timeout"):
                return await self._fault(request, fault)
        wanted = exports.parse_name(path.removeprefix(exports.PREFIX))
        if wanted is None or not exports.published(cfg, wanted.date):
            missing = cfg.export_missing_status
            return self._plain(missing, b"Not Found" if missing == 404 else b"AccessDenied")
        headers = {"Content-Type": "application/octet-stream", "ETag": exports.etag(cfg, wanted)}
        if fault == "badjson":
            return self._plain(200, b"<html>not an export</html>", headers)
        limit = None
        if fault == "truncate":
            limit = sum(1 for _ in exports.export_lines(cfg, wanted)) // 2
        quirky = exports.QUIRK in cfg.quirks and request.method == "GET"
        form = exports.cut_form(cfg, wanted) if quirky else None
        cut = fault if fault in exports.CUTS else None
        if form is not None and fault is None and self._downloads.first(path):
            cut = form  # the file's first download
            self.stats.quirks[exports.QUIRK] = self.stats.quirks.get(exports.QUIRK, 0) + 1
        chunks = exports.gzip_stream(cfg, wanted, limit)
        if cut is not None or form == "short-length":
            size = self._downloads.size(cfg, wanted)
            if (cut or form) == "short-length":  # a "gzip-cut" body stays chunked: it ends properly
                headers["Content-Length"] = str(size)  # the whole file's, cut or not
            if cut is not None:
                chunks = exports.cut_stream(cfg, wanted, exports.cut_point(cfg, wanted, size))
        response = web.StreamResponse(status=200, headers=headers)
        self.stats.exports += 1
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response
        try:
            for chunk in chunks:
                await response.write(chunk)
                await asyncio.sleep(0)  # a batch at a time: the loop keeps serving other requests
        except ConnectionError:
            return response  # the client stopped reading (it had what it wanted): nothing to report
        if (limit is not None or cut == "short-length") and request.transport is not None:
            request.transport.close()  # no last chunk, or short of Content-Length: the body is cut short
            return response
        await response.write_eof()  # "gzip-cut" too: the HTTP body ends properly, its gzip does not
        return response

    def _plain(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> web.Response:
        all_headers = {"Content-Type": "text/plain", **(headers or {})}
        return web.Response(body=body, status=status, headers=all_headers)


class _CountingServer(web.Server):
    """aiohttp's low-level server, telling the stand-in when connections open and close."""

    def __init__(self, standin: StandinServer, **kwargs: Any) -> None:
        super().__init__(standin.handle, **kwargs)
        self._standin = standin

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._standin.connection_opened()

    def connection_lost(self, handler: web.RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._standin.connection_closed()


# ---------------------------------------------------------------------------------------------
# Running it


@dataclass
class RunningStandin:
    """A started stand-in. Change `config` (or its fields) at any time; requests read it afresh."""

    server: StandinServer
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/3"

    @property
    def stats(self) -> StandinStats:
        return self.server.stats

    @property
    def config(self) -> StandinConfig:
        return self.server.config

    @config.setter
    def config(self, config: StandinConfig) -> None:
        self.server.config = config


@contextlib.asynccontextmanager
async def running_standin(
    config: StandinConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[RunningStandin]:
    """Serve the stand-in on host:port (0 picks a free port) until the block exits.

    `clock` is what the rate limiter and the window statistics read: tests pass a manual clock.
    """
    bodies.warm()  # build templates and credit pools before the first request, not during it
    seasons.warm()
    standin = StandinServer(config, clock)
    # handler_cancellation: a client that gives up (e.g. on a "timeout" fault) frees its handler.
    low_level = _CountingServer(standin, handler_cancellation=True, access_log=None)
    runner = web.ServerRunner(low_level, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield RunningStandin(standin, host, bound_port)
    finally:
        standin.release_hung()
        await runner.cleanup()


def serve(config: StandinConfig, host: str = "127.0.0.1", port: int = 8765, *, quiet: bool = False) -> None:
    """Serve until SIGINT or SIGTERM (blocking). Prints the base URL first unless quiet."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_standin(config, host, port) as standin:
            if not quiet:
                print(standin.base_url, flush=True)
            await stop.wait()

    # The discover universes take about a second to build: built during the first discover request,
    # they would stall every request in flight, and a client pacing to the limit would see the stall's
    # backlog arrive as one burst (false 429s). Tests build theirs lazily, for their own sizes.
    discover.warm(config)
    people.warm(config)  # the same for the people's index (tens of ms)
    asyncio.run(run())


def _date_arg(text: str) -> Date:
    if not discover.is_date(text):
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}")
    return Date.fromisoformat(text)


def _quirks_arg(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if names == {"all"}:
        return QUIRKS
    unknown = names - QUIRKS
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown quirk {sorted(unknown)[0]!r} (known: {', '.join(sorted(QUIRKS))}, all)"
        )
    return names


PROG: Final = "tmdb_standin standin"  # also what `harvester standin` runs, see harvester/cli.py


def main_standin(argv: list[str]) -> int:
    """`python -m tmdb_standin standin ...` (or `harvester standin ...`): the stand-in in the foreground."""
    p = argparse.ArgumentParser(prog=PROG, description="A local stand-in for the TMDB API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (the base URL line tells)")
    p.add_argument("--rate-limit", type=float, default=40.0, help="requests per 1 s window; 0 = none")
    p.add_argument(
        "--count-rejected",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="whether 429'd requests fill the window (default: yes, as TMDB appears to)",
    )
    p.add_argument("--retry-after", type=float, default=None, help="send Retry-After on 429 (seconds)")
    p.add_argument("--latency-ms", type=float, nargs=2, metavar=("MIN", "MAX"), default=(0.0, 0.0))
    p.add_argument("--error-rate", type=float, default=0.0, help="share of random 5xx answers")
    p.add_argument("--reset-rate", type=float, default=0.0, help="share of connections reset unanswered")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--token", action="append", help=f"valid Bearer token, repeatable (default {DEFAULT_TOKEN})"
    )
    p.add_argument(
        "--api-key", action="append", help=f"valid api_key, repeatable (default {DEFAULT_API_KEY})"
    )
    days_group = p.add_argument_group("days and daily exports (see tmdb_standin/days.py, exports.py)")
    add = days_group.add_argument
    add("--day", type=int, default=0, help="days after --base-date: the server's today (default 0)")
    add("--base-date", type=_date_arg, default=None, help="the date of day 0 (default: today, UTC)")
    add("--hour", type=float, default=None, help="UTC hour of the server's today (default: the real one)")
    add("--export-movies", type=int, default=None, help="movies in the export (default: as discover)")
    add("--export-tv", type=int, default=None, help="series in the export (default: as discover)")
    for name, default, what in (
        ("changed-share", days.DEFAULT_CHANGED_SHARE, "changed"),
        ("new-share", days.DEFAULT_NEW_SHARE, "new"),
        ("gone-share", days.DEFAULT_GONE_SHARE, "removed"),
    ):
        add(f"--{name}", type=float, default=default, help=f"share of titles {what} a day ({default:g})")
    add("--video-share", type=float, default=0.0, help='share of movies with "video": true (default 0)')
    add(
        "--person-missing-share",
        type=float,
        default=people.DEFAULT_MISSING_SHARE,
        help="share of the people credits name that answer 404, merged or deleted (default 0)",
    )
    quirks_group = p.add_argument_group("quirks: TMDB as its users have seen it (see QUIRKS in server.py)")
    quirks_group.add_argument(
        "--quirks",
        type=_quirks_arg,
        default=frozenset(),
        help=f"comma-separated quirks to switch on, or 'all' ({', '.join(sorted(QUIRKS))}); default none",
    )
    quirks_group.add_argument(
        "--quirk-rate",
        type=float,
        default=DEFAULT_QUIRK_RATE,
        help=f"share of the answers a quirk applies to that it touches (default {DEFAULT_QUIRK_RATE:g})",
    )
    args = p.parse_args(argv)
    lo_ms, hi_ms = args.latency_ms
    try:
        config = StandinConfig(
            valid_tokens=frozenset(args.token or [DEFAULT_TOKEN]),
            valid_api_keys=frozenset(args.api_key or [DEFAULT_API_KEY]),
            rate_limit=args.rate_limit,
            count_rejected=args.count_rejected,
            retry_after=args.retry_after,
            latency=(lo_ms / 1000, hi_ms / 1000),
            error_rate=args.error_rate,
            reset_rate=args.reset_rate,
            seed=args.seed,
            day=args.day,
            base_date=args.base_date or datetime.now(UTC).date(),
            hour=args.hour,
            export_movies=args.export_movies,
            export_tv=args.export_tv,
            changed_share=args.changed_share,
            new_share=args.new_share,
            gone_share=args.gone_share,
            video_share=args.video_share,
            person_missing_share=args.person_missing_share,
            quirks=args.quirks,
            quirk_rate=args.quirk_rate,
        )
    except ValueError as exc:
        p.error(str(exc))
    try:
        serve(config, args.host, args.port)
    except OSError as exc:  # e.g. the port is taken
        print(f"{PROG}: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
