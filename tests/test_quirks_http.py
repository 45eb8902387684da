"""TMDB's edge as its users have seen it (issue 16, items 1, 2 and 8), over real sockets: the CDN's
forms of a 429, HTML and error bodies from the edge, gzip asked for or not; the stand-in producing
each, and the harvester's client taking each for what it is."""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import AUTH_HEADERS, TOKEN, ManualClock, standin_config
from harvest_helpers import distinct_ids, expected_movies, read_local_lake

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.items import Failed, Found, Title
from harvester.runner import harvest
from harvester.tmdb import client as tmdb_client
from harvester.tmdb.client import (
    RequestFailed,
    TmdbClient,
    UnusableBody,
    connection_warning,
    refuse_error_body,
)
from harvester.tmdb.lookup import Lookup
from harvester.tmdb.ratelimit import RateLimiter
from tmdb_standin import RunningStandin, kind_of, movie_ids, running_standin, write_movies_csv
from tmdb_standin.errors import error_body
from tmdb_standin.exports import file_name

CREDS = Credentials(access_token=Secret(TOKEN))
RATE = 1000.0
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
CDN = {"server": "openresty", "x-cache": "Error from cloudfront"}
EDGE_FORMS = ("502-html", "503-html", "504-html", "200-html", "200-error")


def a_movie(skip: int = 0) -> str:
    """An IMDb id the stand-in answers as a movie on the direct lookup."""
    return [i for i in movie_ids(400, seed=1) if kind_of(i) == "movie"][skip]


def details_path(imdb_id: str) -> str:
    return f"/3/movie/{imdb_id}"


# ---------------------------------------------------------------------------------------------
# Raw HTTP: what the stand-in sends


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    async with session.get(url) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def throttle_form(headers: dict[str, str]) -> str:
    """Which of the CDN's forms a 429 came in."""
    if headers["content-type"].startswith("text/html"):
        assert "retry-after" not in headers
        return "html"
    if "retry-after" not in headers:
        return "json"
    try:
        float(headers["retry-after"])
    except ValueError:
        assert IMF_FIXDATE.match(headers["retry-after"]), headers["retry-after"]
        return "date"
    return "seconds"


def edge_form(status: int, headers: dict[str, str], body: bytes) -> str | None:
    """Which of the edge's answers this is; None for TMDB's own, fine, answer."""
    if headers["content-type"].startswith("text/html"):
        return f"{status}-html"
    data = orjson.loads(body)
    if status == 200 and data.get("success") is False:
        return f"200-error {data['status_code']}"
    assert status == 200, (status, body)
    return None


async def test_scripted_429s_in_each_of_the_cdns_forms(standin: RunningStandin) -> None:
    standin.config.retry_after = 2.0
    path = details_path(a_movie())
    standin.config.faults[path] = ["429-json", "429-seconds", "429-date", "429-html", "429"]
    url = standin.base_url.removesuffix("/3") + path
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as s:
        answers = [await fetch(s, url) for _ in range(6)]
    forms = [throttle_form(h) for status, h, _ in answers[:4]]
    assert forms == ["json", "seconds", "date", "html"]
    for status, headers, _ in answers[:4]:
        assert status == 429 and {k: headers[k] for k in CDN} == CDN
        assert not any(k.startswith("x-ratelimit") for k in headers)
    json_body = orjson.loads(answers[0][2])
    assert json_body["success"] is False and json_body["status_code"] == 25
    assert json_body["status_message"].startswith("Your request count (")
    assert answers[1][1]["retry-after"] == "2"
    when = parsedate_to_datetime(answers[2][1]["retry-after"])
    sent = parsedate_to_datetime(answers[2][1]["date"])
    assert timedelta(seconds=1) <= when - sent <= timedelta(seconds=2)  # whole seconds: up to 1 s short
    assert b"429 Too Many Requests" in answers[3][2] and b"openresty" in answers[3][2]
    # the plain "429" with the quirk off: TMDB's JSON and the configured Retry-After, no CDN headers
    status, headers, body = answers[4]
    assert status == 429 and headers["retry-after"] == "2" and headers["server"] != "openresty"
    assert orjson.loads(body)["status_code"] == 25
    assert answers[5][0] == 200
    assert standin.stats.rate_limited == 5
    assert standin.stats.faults == {"429-json": 1, "429-seconds": 1, "429-date": 1, "429-html": 1, "429": 1}


@pytest.mark.parametrize("quirks", [frozenset({"throttle"}), frozenset()])
async def test_with_the_throttle_quirk_every_429_of_the_limiter_takes_a_cdn_form(
    quirks: frozenset[str],
) -> None:
    clock = ManualClock()  # frozen: all arrivals in one window
    config = standin_config(rate_limit=2, retry_after=0.5, quirks=quirks, quirk_rate=0.0)
    async with (
        running_standin(config, clock=clock) as standin,
        aiohttp.ClientSession(headers=AUTH_HEADERS) as s,
    ):
        answers = [await fetch(s, f"{standin.base_url}/authentication") for _ in range(42)]
    assert [status for status, _, _ in answers] == [200] * 2 + [429] * 40
    throttled = [headers for status, headers, _ in answers if status == 429]
    if quirks:
        forms = Counter(throttle_form(h) for h in throttled)
        assert set(forms) == {"json", "seconds", "date", "html"}, forms
        assert all(h["server"] == "openresty" and h["x-cache"] == "Error from cloudfront" for h in throttled)
    else:  # exactly as before the quirks: TMDB's JSON, the configured Retry-After, no CDN headers
        assert all(h["retry-after"] == "0.5" and h["server"] != "openresty" for h in throttled)
        assert all(orjson.loads(body)["status_code"] == 25 for status, _, body in answers[2:])
    assert "throttle" not in standin.stats.quirks  # quirk_rate 0: none out of the blue


async def test_throttle_quirk_429s_out_of_the_blue_at_about_the_rate() -> None:
    config = standin_config(quirks=frozenset({"throttle"}), quirk_rate=0.2, retry_after=0.5)
    async with running_standin(config) as standin, aiohttp.ClientSession(headers=AUTH_HEADERS) as s:
        answers = [await fetch(s, f"{standin.base_url}/authentication") for _ in range(400)]
    throttled = [h for status, h, _ in answers if status == 429]
    assert 50 <= len(throttled) <= 110  # 80 expected
    assert standin.stats.quirks == {"throttle": len(throttled)}
    assert set(Counter(throttle_form(h) for h in throttled)) == {"json", "seconds", "date", "html"}
    assert all(orjson.loads(b)["success"] is True for status, _, b in answers if status == 200)


async def test_edge_faults_as_scripted(standin: RunningStandin) -> None:
    path = details_path(a_movie())
    standin.config.faults[path] = list(EDGE_FORMS)
    url = standin.base_url.removesuffix("/3") + path
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as s:
        answers = [await fetch(s, url) for _ in range(len(EDGE_FORMS) + 1)]
    got = [edge_form(*a) for a in answers]
    assert got == ["502-html", "503-html", "504-html", "200-html", "200-error 21", None]
    for _, headers, body in answers[:4]:
        assert headers["content-type"] == "text/html" and headers["x-cache"].endswith("from cloudfront")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)
    assert orjson.loads(answers[4][2]) == {
        "success": False,
        "status_code": 21,
        "status_message": "Entry not found: The item you are trying to edit cannot be found.",
    }


async def test_edge_quirk_touches_about_the_rate_with_every_form() -> None:
    config = standin_config(quirks=frozenset({"edge"}), quirk_rate=0.25)
    async with running_standin(config) as standin, aiohttp.ClientSession(headers=AUTH_HEADERS) as s:
        url = f"{standin.base_url}/movie/{a_movie()}"
        forms = Counter([edge_form(*await fetch(s, url)) for _ in range(400)])
    touched = 400 - forms[None]
    assert 65 <= touched <= 135  # 100 expected
    assert standin.stats.quirks == {"edge": touched}
    assert set(forms) - {None} == {
        "502-html",
        "503-html",
        "504-html",
        "200-html",
        "200-error 21",
        "200-error 40",
    }


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, extra: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One request and its response on an open connection (HTTP/1.1, so it stays open)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, body


async def test_gzip_quirk_compresses_every_api_answer_asked_for_or_not() -> None:
    config = standin_config(quirks=frozenset({"gzip"}), hour=9.0, export_movies=5)
    async with running_standin(config) as standin:
        reader, writer = await asyncio.open_connection(standin.host, standin.port)
        try:
            movie = a_movie()
            plain = await _exchange(reader, writer, f"/3/movie/{movie}")  # no Accept-Encoding at all
            identity = await _exchange(reader, writer, "/3/authentication", "Accept-Encoding: identity\r\n")
            missing = await _exchange(reader, writer, "/3/movie/nope")  # an error answer too
            control = await _exchange(reader, writer, "/__standin__/stats")
        finally:
            writer.close()
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            export = await fetch(
                s, f"{standin.base_url.removesuffix('/3')}/p/exports/{file_name('movie', config.base_date)}"
            )
    for _, headers, _ in (plain, identity, missing):
        assert headers["content-encoding"] == "gzip", headers
    assert orjson.loads(gzip.decompress(plain[2]))["imdb_id"] == movie
    assert orjson.loads(gzip.decompress(identity[2]))["success"] is True
    assert (missing[0], orjson.loads(gzip.decompress(missing[2]))["status_code"]) == (404, 6)
    # neither the control endpoint nor an export file (a gzip file already) is compressed again
    assert "content-encoding" not in control[1] and orjson.loads(control[2])["requests"] == 3
    assert export[0] == 200 and "content-encoding" not in export[1]
    assert gzip.decompress(export[2]).count(b"\n") == 5
    assert standin.stats.connections == 2  # keep-alive: four requests on one connection, and the export's
    assert standin.stats.quirks == {"gzip": 3}


async def test_without_the_gzip_quirk_nothing_is_compressed(standin: RunningStandin) -> None:
    async with (
        aiohttp.ClientSession(headers=AUTH_HEADERS) as s,  # aiohttp asks for gzip by default
        s.get(f"{standin.base_url}/authentication") as r,
    ):
        assert "Content-Encoding" not in r.headers
        assert r.request_info.headers["Accept-Encoding"].startswith("gzip")


# ---------------------------------------------------------------------------------------------
# The harvester's client against them


class PausingLimiter(RateLimiter):
    """The pacer, with its pauses recorded: what "every worker waits" means (test_ratelimit.py)."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.pauses: list[float] = []

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        super().pause(seconds)


async def _no_wait(seconds: float) -> None:
    """The client's retry back-off, skipped: these tests count retries, not wait for them."""


@asynccontextmanager
async def open_client(
    standin: RunningStandin, **settings: Any
) -> AsyncIterator[tuple[TmdbClient, PausingLimiter]]:
    limiter = PausingLimiter(RATE)
    tmdb = TmdbSettings(base_url=standin.base_url, rate_limit=RATE, concurrency=4, timeout_s=5.0, **settings)
    async with TmdbClient(tmdb, CREDS, limiter, rng=random.Random(1), sleep=_no_wait) as client:
        yield client, limiter


BACKOFF_S = 0.123  # the back-off after an unexplained 429, made recognisable


@pytest.mark.parametrize(
    ("form", "retry_after", "low", "high"),
    [
        ("json", 0.3, BACKOFF_S, BACKOFF_S),  # no Retry-After: the client backs off
        ("html", 0.3, BACKOFF_S, BACKOFF_S),
        ("seconds", 0.3, 0.3, 0.3),  # Retry-After: 0.3
        ("date", 1.5, 0.4, 1.5),  # Retry-After: an HTTP date 0.5 to 1.5 s ahead (whole seconds)
        ("date", 0.0, BACKOFF_S, BACKOFF_S),  # a date already past: no reason to hammer
    ],
)
async def test_each_429_form_is_throttling_and_the_title_is_harvested(
    standin: RunningStandin,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
    retry_after: float,
    low: float,
    high: float,
) -> None:
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: BACKOFF_S)
    movie = a_movie()
    standin.config.retry_after = retry_after
    standin.config.faults[details_path(movie)] = [f"429-{form}"]
    async with open_client(standin) as (client, limiter):
        outcome = await Lookup(client, TmdbSettings())(Title(0, "movie", imdb_id=movie))
    assert isinstance(outcome, Found) and orjson.loads(outcome.body)["imdb_id"] == movie
    assert client.counters.throttled == 1 and client.counters.retries == 0  # a 429 uses up no retry
    assert limiter.throttles == 1 and limiter.cap < RATE  # the pacer slowed ...
    [paused] = limiter.pauses  # ... and every worker paused as the 429 said, or backed off
    assert low <= paused <= high
    assert standin.stats.by_route["movie"] == 2 and standin.stats.by_route["find"] == 0


async def test_edge_errors_and_html_bodies_are_retried_and_the_title_harvested(
    standin: RunningStandin,
) -> None:
    movie = a_movie()
    standin.config.faults[details_path(movie)] = list(EDGE_FORMS)
    async with open_client(standin, max_retries=len(EDGE_FORMS)) as (client, _):
        outcome = await Lookup(client, TmdbSettings())(Title(0, "movie", imdb_id=movie))
    assert isinstance(outcome, Found) and orjson.loads(outcome.body)["imdb_id"] == movie
    assert client.counters.retries == len(EDGE_FORMS) and client.counters.throttled == 0
    assert standin.stats.faults == dict.fromkeys(EDGE_FORMS, 1)


@pytest.mark.parametrize("fault", EDGE_FORMS)
async def test_an_edge_answer_that_persists_is_a_transient_failure(
    standin: RunningStandin, fault: str
) -> None:
    movie = a_movie()
    standin.config.faults[details_path(movie)] = [fault] * 3
    async with open_client(standin, max_retries=2) as (client, _):
        outcome = await Lookup(client, TmdbSettings())(Title(0, "movie", imdb_id=movie))
    reason = {
        "502-html": "http_502",
        "503-html": "http_503",
        "504-html": "http_504",
        "200-html": "invalid_json",
        "200-error": "error_body status_code 21",
    }[fault]
    # never a miss (not "not found", no /find), never stored: pending, for the next run
    assert outcome == Failed(Title(0, "movie", imdb_id=movie), f"{reason} after 3 attempts", True)
    assert standin.stats.by_route["find"] == 0


def test_an_error_body_is_caught_before_any_decoder_and_only_in_small_bodies() -> None:
    for code in (21, 40):
        with pytest.raises(UnusableBody, match=rf"^error_body status_code {code}$"):
            refuse_error_body(error_body(code))
    with pytest.raises(UnusableBody, match=r"^error_body status_code None$"):
        refuse_error_body(b'{"success": false}')
    # not an error body: TMDB's answer to /authentication, a small listing, HTML, a JSON array
    refuse_error_body(b'{"success":true,"status_code":1,"status_message":"Success."}')
    refuse_error_body(b'{"movie_results":[],"tv_results":[]}')
    refuse_error_body(b"<html>success</html>")
    refuse_error_body(b'[{"success": false}]')
    # a title's body (KBs) is never parsed a second time, whatever it says inside
    big = orjson.dumps({"success": False, "overview": "x" * tmdb_client.ERROR_BODY_MAX})
    refuse_error_body(big)


async def test_check_credential_survives_the_edge(
    standin: RunningStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)
    standin.config.faults["/3/authentication"] = ["200-error", "200-html", "429-html", "502-html"]
    async with open_client(standin, max_retries=3) as (client, _):
        await client.check_credential()
        assert (client.counters.retries, client.counters.throttled) == (3, 1)
        await client.check_credential()  # success: true is the credential accepted


async def test_a_persistent_error_body_on_a_200_is_retried_then_fails_transiently(
    standin: RunningStandin,
) -> None:
    standin.config.faults["/3/genre/movie/list"] = ["200-error"] * 3
    async with open_client(standin, max_retries=2) as (client, _):
        with pytest.raises(RequestFailed) as caught:
            await client.get("/genre/movie/list")
    assert caught.value.transient and caught.value.reason == "error_body status_code 21 after 3 attempts"


async def test_gzip_answers_are_read_over_one_kept_alive_connection() -> None:
    async with running_standin(standin_config(quirks=frozenset({"gzip"}))) as standin:
        movies = [a_movie(n) for n in range(5)]
        async with open_client(standin) as (client, _):
            lookup = Lookup(client, TmdbSettings())
            outcomes = [await lookup(Title(n, "movie", imdb_id=m)) for n, m in enumerate(movies)]
            find = await client.get(f"/find/{movies[0]}", {"external_source": "imdb_id"})
    assert [orjson.loads(o.body)["imdb_id"] for o in outcomes if isinstance(o, Found)] == movies
    assert find.status == 200 and find.data["movie_results"]
    assert standin.stats.quirks == {"gzip": 6} and standin.stats.connections == 1


# ---------------------------------------------------------------------------------------------
# Whole harvests


def settings_for(standin: RunningStandin, csv: Path, lake: Path, **tmdb: Any) -> Settings:
    fields = {"rate_limit": RATE, "concurrency": 8, "timeout_s": 5.0, **tmdb}
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, **fields),
        source=SourceSettings(path=str(csv)),
        sink=SinkSettings(url=str(lake)),
    )


async def test_an_error_body_that_persists_leaves_the_title_pending_and_unstored(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 20, seed=2)
    movies = [i for i in distinct_ids(csv) if kind_of(i) == "movie"]
    healed, doomed = movies[0], movies[1]
    standin.config.faults[details_path(healed)] = ["200-error", "200-html"]
    standin.config.faults[details_path(doomed)] = ["200-error"] * 10
    result = await harvest(
        settings_for(standin, csv, tmp_path / "lake", max_retries=2), CREDS, progress=False
    )
    lake = read_local_lake(tmp_path / "lake")
    got = lake.record_ids()
    assert got[healed] == 1 and doomed not in got
    assert result.status == "incomplete" and result.summary.pending == 1 and result.summary.failed == 0
    assert doomed not in lake.miss_reasons()  # not "not found" either
    assert [o for o in lake.outcomes if o["outcome"] == "failed"] == []


async def test_a_harvest_through_the_cdns_throttling_edge_errors_and_gzip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 80, seed=6)
    ids = distinct_ids(csv)
    expected = expected_movies(ids)
    quirks = frozenset({"throttle", "edge", "gzip"})
    config = standin_config(quirks=quirks, quirk_rate=0.1, retry_after=0.05)
    async with running_standin(config) as standin:
        result = await harvest(settings_for(standin, csv, tmp_path / "lake"), CREDS, progress=False)
        stats = standin.stats
    assert result.status == "complete"
    lake = read_local_lake(tmp_path / "lake")
    counts = lake.record_ids()
    assert set(counts) == expected.found and max(counts.values()) == 1
    assert lake.miss_reasons() == expected.misses  # no 429 or edge answer became a miss
    assert result.summary.failed == 0 and result.summary.pending == 0
    assert stats.quirks["throttle"] > 0 and stats.quirks["edge"] > 0
    assert result.summary.throttled == stats.quirks["throttle"]
    assert stats.quirks["gzip"] == stats.requests


# ---------------------------------------------------------------------------------------------
# TMDB's CDN and its 20 connections per IP


def test_the_connection_warning_is_for_tmdbs_own_api_above_20() -> None:
    message = connection_warning("https://api.themoviedb.org/3", 21)
    assert message is not None and "21" in message and "20 connections per IP" in message
    assert connection_warning("https://API.TheMovieDB.org:443/3/", 64) is not None
    assert connection_warning("https://api.themoviedb.org/3", 20) is None
    assert connection_warning("http://127.0.0.1:8765/3", 64) is None  # a stand-in
    assert connection_warning("https://api.themoviedb.org.example.com/3", 64) is None


@pytest.mark.parametrize(
    ("base_url", "concurrency", "warnings"),
    [
        ("https://api.themoviedb.org/3", 32, 1),
        ("https://api.themoviedb.org/3", 20, 0),
        ("http://127.0.0.1:8765/3", 32, 0),
    ],
)
async def test_the_client_warns_once_at_start(
    caplog: pytest.LogCaptureFixture, base_url: str, concurrency: int, warnings: int
) -> None:
    caplog.set_level(logging.WARNING, logger="harvester")
    settings = TmdbSettings(base_url=base_url, concurrency=concurrency)
    async with TmdbClient(settings, CREDS, RateLimiter(40.0)):  # no request is made
        pass
    said = [r for r in caplog.records if r.levelno == logging.WARNING and "per IP" in r.getMessage()]
    assert len(said) == warnings
