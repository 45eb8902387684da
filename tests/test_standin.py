"""The TMDB stand-in: catalogue determinism, HTTP behaviour over real sockets, faults, CSV inputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import API_KEY, AUTH_HEADERS, TOKEN, ManualClock, get, standin_config

import tmdb_standin as catalogue  # the stand-in's catalogue API
from harvester.items import Media
from tmdb_standin import (
    KINDS,
    MOVIE_GENRES,
    TV_GENRES,
    Kind,
    RunningStandin,
    csvgen,
    direct_lookup,
    imdb_id_for,
    kind_of,
    main_standin,
    running_standin,
    tmdb_id_of,
)

INVALID_KEY = {
    "success": False,
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
}
NOT_FOUND = {
    "success": False,
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
}


def first_of(kind: Kind, start: int = 1, skip: int = 0) -> str:
    """The first canonical IMDb id at or after tt{start} of this kind (the skip-th one)."""
    n = start
    while True:
        imdb_id = catalogue.imdb_id_from_number(n)
        if kind_of(imdb_id) == kind:
            if skip == 0:
                return imdb_id
            skip -= 1
        n += 1


# ---------------------------------------------------------------------------------------------
# Catalogue (pure)


def test_kinds_are_deterministic_and_in_the_documented_shares() -> None:
    ids = [catalogue.imdb_id_from_number(n) for n in range(1, 20_001)]
    shares: Counter[str] = Counter(kind_of(i) for i in ids)
    assert set(shares) == set(KINDS)
    assert 0.90 < shares["movie"] / 20_000 < 0.94
    for kind, expected in (("tv", 0.03), ("unknown", 0.03), ("direct_404", 0.01), ("direct_wrong", 0.01)):
        assert abs(shares[kind] / 20_000 - expected) < 0.006, kind
    assert kind_of("tt0111161") == "movie"  # a fixed answer: the hash is stable across processes
    assert [kind_of(i) for i in ("tt123", "tt00000009", "nm0000001", "tt0000000")] == ["unknown"] * 4


def test_tmdb_ids_are_unique_per_media_and_invertible() -> None:
    ids = [catalogue.imdb_id_from_number(n) for n in range(1, 5_001)]
    known = [i for i in ids if kind_of(i) != "unknown"]
    tmdb_ids = {tmdb_id_of(i) for i in known}
    assert len(tmdb_ids) == len(known)
    for imdb_id in known:
        media: Media = "tv" if kind_of(imdb_id) == "tv" else "movie"
        other: Media = "movie" if media == "tv" else "tv"
        assert imdb_id_for(media, tmdb_id_of(imdb_id)) == imdb_id
        assert imdb_id_for(other, tmdb_id_of(imdb_id)) != imdb_id
    with pytest.raises(LookupError):
        tmdb_id_of(first_of("unknown"))


def test_every_known_append_name_has_a_body() -> None:
    for media, names in (("movie", catalogue.MOVIE_APPENDS), ("tv", catalogue.TV_APPENDS)):
        imdb_id = first_of("movie" if media == "movie" else "tv")
        body = orjson.loads(catalogue.details_body(media, imdb_id, sorted(names)))
        assert names <= set(body), media


def test_direct_lookup_names_the_body_served() -> None:
    movie, wrong = first_of("movie"), first_of("direct_wrong")
    assert direct_lookup(movie) == movie
    other = direct_lookup(wrong)
    assert other is not None and other != wrong and kind_of(other) == "movie"
    assert [direct_lookup(first_of(k)) for k in ("tv", "unknown", "direct_404")] == [None] * 3
    assert kind_of(movie, {movie: "tv"}) == "tv"


# ---------------------------------------------------------------------------------------------
# Authentication and errors


async def test_authentication_with_token_or_api_key(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    ok = {"success": True, "status_code": 1, "status_message": "Success."}
    assert await get(client, f"{standin.base_url}/authentication") == (200, ok)
    async with aiohttp.ClientSession() as anonymous:
        assert await get(anonymous, f"{standin.base_url}/authentication", api_key=API_KEY) == (200, ok)


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": f"Basic {TOKEN}"}, {}),
        ({}, {"api_key": "wrong"}),
        ({}, {"api_key": TOKEN}),  # a token is not a v3 key
    ],
)
async def test_missing_or_invalid_credential_is_401_status_7(
    standin: RunningStandin, headers: dict[str, str], params: dict[str, str]
) -> None:
    async with aiohttp.ClientSession(headers=headers) as session:
        for path in ("/authentication", "/movie/tt0111161", "/no/such/path"):
            assert await get(session, standin.base_url + path, **params) == (401, INVALID_KEY)


async def test_suspended_credential_is_401_status_10(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.suspended = frozenset({TOKEN})
    status, body = await get(client, f"{standin.base_url}/movie/tt0111161")
    assert (status, body["status_code"], body["success"]) == (401, 10, False)
    assert body["status_message"].startswith("Suspended API key")


async def test_unknown_paths_and_bad_ids(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    base = standin.base_url
    for path in ("/nope", "/movie", "/movie/", "/movie/550/nothing", "/discover", "/genre/person/list"):
        assert await get(client, base + path) == (404, NOT_FOUND), path
    async with client.get(base.removesuffix("/3") + "/4/movie/550") as r:
        assert r.status == 404
    status, body = await get(client, f"{base}/movie/fight-club")
    assert (status, body["status_code"]) == (404, 6)
    async with client.post(f"{base}/movie/550") as r:
        assert (r.status, (await r.json(content_type=None))["status_code"]) == (405, 42)


async def test_genre_lists(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    _, movie = await get(client, f"{standin.base_url}/genre/movie/list")
    _, tv = await get(client, f"{standin.base_url}/genre/tv/list")
    assert [(g["id"], g["name"]) for g in movie["genres"]] == list(MOVIE_GENRES)
    assert [(g["id"], g["name"]) for g in tv["genres"]] == list(TV_GENRES)
    assert {"id": 878, "name": "Science Fiction"} in movie["genres"]
    assert {"id": 10765, "name": "Sci-Fi & Fantasy"} in tv["genres"]


# ---------------------------------------------------------------------------------------------
# Lookups


async def test_find_for_each_kind(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    empty: dict[str, list[Any]] = {
        "movie_results": [], "person_results": [], "tv_results": [], "tv_episode_results": [],
        "tv_season_results": [],
    }  # fmt: skip
    for kind in KINDS:
        imdb_id = first_of(kind)
        status, body = await get(client, f"{standin.base_url}/find/{imdb_id}", external_source="imdb_id")
        assert status == 200
        assert set(body) == set(empty)
        if kind == "unknown":
            assert body == empty
        elif kind == "tv":
            assert body["movie_results"] == [] and len(body["tv_results"]) == 1
            assert body["tv_results"][0]["id"] == tmdb_id_of(imdb_id)
            assert body["tv_results"][0]["media_type"] == "tv"
        else:  # the direct-lookup misbehaviours do not affect /find
            assert body["tv_results"] == [] and len(body["movie_results"]) == 1
            result = body["movie_results"][0]
            assert result["id"] == tmdb_id_of(imdb_id) and result["media_type"] == "movie"
            assert {"title", "release_date", "popularity", "vote_count", "genre_ids"} <= set(result)


async def test_find_needs_a_valid_external_source(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    for params in ({}, {"external_source": "imdb"}):
        status, body = await get(client, f"{standin.base_url}/find/tt0111161", **params)
        assert (status, body["status_code"], body["success"]) == (422, 5, False)
    status, body = await get(client, f"{standin.base_url}/find/tt0111161", external_source="tvdb_id")
    assert status == 200 and body["movie_results"] == []


async def test_direct_movie_lookup_and_its_misbehaviours(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base = standin.base_url
    movie = first_of("movie")
    status, body = await get(client, f"{base}/movie/{movie}")
    assert status == 200 and body["imdb_id"] == movie and body["id"] == tmdb_id_of(movie)
    assert await get(client, f"{base}/movie/{tmdb_id_of(movie)}") == (200, body)
    for kind in ("tv", "unknown", "direct_404"):
        assert await get(client, f"{base}/movie/{first_of(kind)}") == (404, NOT_FOUND), kind
    wrong = first_of("direct_wrong")
    status, body = await get(client, f"{base}/movie/{wrong}")
    assert status == 200 and body["imdb_id"] != wrong and body["imdb_id"] == direct_lookup(wrong)
    # The fallback a careful client takes: /find, then the numeric id, which is right.
    _, found = await get(client, f"{base}/find/{wrong}", external_source="imdb_id")
    status, body = await get(client, f"{base}/movie/{found['movie_results'][0]['id']}")
    assert status == 200 and body["imdb_id"] == wrong
    hidden = first_of("direct_404")
    status, body = await get(client, f"{base}/movie/{tmdb_id_of(hidden)}")
    assert status == 200 and body["imdb_id"] == hidden


async def test_movie_details_shape(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    _, body = await get(client, f"{standin.base_url}/movie/tt0111161")
    assert list(body) == [
        "adult", "backdrop_path", "belongs_to_collection", "budget", "genres", "homepage", "id", "imdb_id",
        "origin_country", "original_language", "original_title", "overview", "popularity", "poster_path",
        "production_companies", "production_countries", "release_date", "revenue", "runtime",
        "spoken_languages", "status", "tagline", "title", "video", "vote_average", "vote_count",
    ]  # fmt: skip
    assert all(g in [{"id": i, "name": n} for i, n in MOVIE_GENRES] for g in body["genres"])
    assert body["poster_path"].startswith("/") and body["poster_path"].endswith(".jpg")


async def test_tv_goes_through_find_then_numeric_id(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base = standin.base_url
    show = first_of("tv")
    assert await get(client, f"{base}/tv/{show}") == (404, NOT_FOUND)
    append = "aggregate_credits,content_ratings,external_ids,credits"
    status, body = await get(client, f"{base}/tv/{tmdb_id_of(show)}", append_to_response=append)
    assert status == 200
    assert "imdb_id" not in body and body["external_ids"]["imdb_id"] == show
    assert {"name", "first_air_date", "number_of_seasons", "seasons", "networks"} <= set(body)
    assert {"aggregate_credits", "content_ratings", "credits"} <= set(body)
    assert body["aggregate_credits"]["cast"][0]["roles"]
    assert await get(client, f"{base}/tv/{tmdb_id_of(first_of('movie'))}") == (404, NOT_FOUND)


async def test_kind_overrides_pin_ids(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    movie = first_of("movie")
    standin.config.kind_overrides = {movie: "tv"}
    _, body = await get(client, f"{standin.base_url}/find/{movie}", external_source="imdb_id")
    assert body["movie_results"] == [] and body["tv_results"][0]["id"] == tmdb_id_of(movie, {movie: "tv"})
    assert (await get(client, f"{standin.base_url}/movie/{movie}"))[0] == 404


# ---------------------------------------------------------------------------------------------
# append_to_response, sizes, language


async def test_append_to_response_limit_is_20(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    url = f"{standin.base_url}/movie/tt0111161"
    twenty = ["credits", "external_ids", "keywords", "release_dates", "videos", "images", "translations",
              "alternative_titles", "recommendations", "similar", "reviews", "lists", "watch/providers",
              "changes", "casts", "x1", "x2", "x3", "x4", "x5"]  # fmt: skip
    status, body = await get(client, url, append_to_response=",".join(twenty))
    assert status == 200
    assert set(twenty[:14]) <= set(body) and not {"casts", "x1"} & set(body)  # unknown names ignored
    status, body = await get(client, url, append_to_response=",".join([*twenty, "x6"]))
    assert (status, body) == (400, {
        "success": False, "status_code": 27,
        "status_message": "Too many append to response objects: The maximum number of remote calls is 20.",
    })  # fmt: skip


async def test_bodies_with_credits_are_10_to_60_kb_and_vary(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    sizes = []
    for i in range(40):
        imdb_id = first_of("movie", start=1, skip=i * 7)
        async with client.get(f"{standin.base_url}/movie/{imdb_id}?append_to_response=credits") as r:
            raw = await r.read()
        body = orjson.loads(raw)
        credits = body["credits"]
        assert credits["id"] == body["id"] and credits["cast"] and credits["crew"]
        assert [c["order"] for c in credits["cast"]] == list(range(len(credits["cast"])))
        assert {"character", "credit_id", "name", "profile_path"} <= set(credits["cast"][0])
        assert {"department", "job", "credit_id"} <= set(credits["crew"][0])
        sizes.append(len(raw))
    assert all(10 * 1024 <= s <= 60 * 1024 for s in sizes), sizes
    assert len(set(sizes)) > 30 and max(sizes) - min(sizes) > 20_000


async def test_language_is_reflected(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    base = standin.base_url
    _, english = await get(client, f"{base}/movie/tt0111161", append_to_response="videos")
    _, portuguese = await get(
        client, f"{base}/movie/tt0111161", append_to_response="videos", language="pt-BR"
    )
    assert portuguese["title"] == f"{english['title']} (pt-BR)"
    assert portuguese["overview"].endswith("(pt-BR)")
    assert {v["iso_639_1"] for v in portuguese["videos"]["results"]} == {"pt"}
    assert {v["iso_3166_1"] for v in portuguese["videos"]["results"]} == {"BR"}
    _, found = await get(client, f"{base}/find/tt0111161", external_source="imdb_id", language="pt-BR")
    assert found["movie_results"][0]["title"] == portuguese["title"]


# ---------------------------------------------------------------------------------------------
# Rate limit (a manual clock: counts within one window, no wall-clock assumptions)


async def _statuses(session: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    async def one() -> int:
        async with session.get(url) as r:
            await r.read()
            return r.status

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_rate_limit_admits_up_to_the_limit_then_429s() -> None:
    clock = ManualClock()
    config = standin_config(rate_limit=5, retry_after=0.5)
    async with (
        running_standin(config, clock=clock) as standin,
        aiohttp.ClientSession(headers=AUTH_HEADERS) as s,
    ):
        url = f"{standin.base_url}/movie/tt0111161"
        assert await _statuses(s, url, 5) == [200] * 5  # at the limit: all admitted
        async with s.get(url) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "0.5"
            assert await r.json(content_type=None) == {
                "success": False,
                "status_code": 25,
                "status_message": "Your request count (6) is over the allowed limit of 5.",
            }
        clock.advance(0.999)  # still inside the window of the first arrivals
        assert await _statuses(s, url, 1) == [429]
        clock.advance(0.001)  # the first 6 arrivals leave the window; the 7th (a 429) still counts
        assert sorted(await _statuses(s, url, 5)) == [200] * 4 + [429]
        stats = standin.stats
        assert stats.rate_limited == 3 and stats.by_status == {200: 9, 429: 3}
        assert stats.max_window == 7 and stats.max_window_admitted == 5


async def test_rate_limit_not_counting_rejected_requests() -> None:
    clock = ManualClock()
    config = standin_config(rate_limit=3, count_rejected=False)
    async with (
        running_standin(config, clock=clock) as standin,
        aiohttp.ClientSession(headers=AUTH_HEADERS) as s,
    ):
        url = f"{standin.base_url}/authentication"
        assert sorted(await _statuses(s, url, 10)) == [200] * 3 + [429] * 7
        clock.advance(1.0)
        assert sorted(await _statuses(s, url, 4)) == [200] * 3 + [429]
        async with s.get(url) as r:
            assert "Retry-After" not in r.headers  # retry_after=None sends none
        assert standin.stats.max_window == 10 and standin.stats.max_window_admitted == 3


async def test_no_rate_limit_when_zero(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    standin.config.rate_limit = 0
    assert await _statuses(client, f"{standin.base_url}/authentication", 50) == [200] * 50


# ---------------------------------------------------------------------------------------------
# Faults


async def test_scripted_status_faults_then_normal(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    path = "/3/movie/tt0111161"
    standin.config.faults[path] = ["500", "502", "503", "504", "429"]
    url = standin.base_url.removesuffix("/3") + path
    seen = []
    for _ in range(6):
        status, body = await get(client, url)
        seen.append((status, body.get("status_code")))
    assert seen == [(500, 11), (502, 43), (503, 9), (504, 24), (429, 25), (200, None)]
    assert standin.config.faults[path] == []
    assert standin.stats.faults == {"500": 1, "502": 1, "503": 1, "504": 1, "429": 1}
    assert (await get(client, f"{standin.base_url}/movie/tt0068646"))[0] == 200  # other paths unaffected


async def _raw_get(standin: RunningStandin, path: str) -> bytes:
    """One request on a raw socket; everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection(standin.host, standin.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        return await reader.read()  # to EOF
    finally:
        writer.close()


async def test_reset_closes_without_a_response(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    path = "/3/movie/tt0111161"
    standin.config.faults[path] = ["reset"]
    assert await _raw_get(standin, path) == b""
    # aiohttp retries an idempotent request once on a dropped connection: two resets reach the caller.
    standin.config.faults[path] = ["reset", "reset"]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(client, standin.base_url.removesuffix("/3") + path)
    assert standin.stats.faults == {"reset": 3}


async def test_truncate_sends_less_than_content_length(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    path = "/3/movie/tt0111161"
    standin.config.faults[path] = ["truncate"]
    raw = await _raw_get(standin, path)
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"Content-Length"])
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length
    standin.config.faults[path] = ["truncate"]
    with pytest.raises(aiohttp.ClientPayloadError):
        async with client.get(standin.base_url.removesuffix("/3") + path) as r:
            await r.read()


async def test_badjson_is_a_complete_200_with_invalid_json(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    path = "/3/find/tt0111161"
    standin.config.faults[path] = ["badjson"]
    async with client.get(f"{standin.base_url}/find/tt0111161?external_source=imdb_id") as r:
        raw = await r.read()
        assert r.status == 200 and len(raw) == int(r.headers["Content-Length"])
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


async def test_timeout_never_answers(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    path = "/3/movie/tt0111161"
    standin.config.faults[path] = ["timeout", "timeout", "timeout"]
    url = standin.base_url.removesuffix("/3") + path
    timeout = aiohttp.ClientTimeout(total=0.3)

    async def attempt() -> None:
        async with client.get(url, timeout=timeout) as r:
            await r.read()

    results = await asyncio.gather(*(attempt() for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, asyncio.TimeoutError) for r in results), results
    stats = standin.stats
    assert stats.faults == {"timeout": 3} and stats.max_in_flight == 3 and stats.max_open_connections >= 3
    assert (await get(client, url))[0] == 200


async def test_error_rate_answers_tmdb_5xx_bodies(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.error_rate = 1.0
    url = f"{standin.base_url}/movie/tt0111161"
    answers = [await get(client, url) for _ in range(20)]
    assert {status for status, _ in answers} <= {500, 502, 503, 504}
    assert {body["status_code"] for _, body in answers} <= {11, 43, 9, 46, 24}
    assert all(body["success"] is False for _, body in answers)
    assert standin.stats.random_errors == 20


# ---------------------------------------------------------------------------------------------
# Statistics and connections


async def test_stats_endpoint_and_reset(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    base = standin.base_url
    for path in ("/authentication", "/find/tt0111161?external_source=imdb_id", "/movie/tt0111161",
                 "/tv/1", "/genre/tv/list", "/discover/tv?page=501", "/nope"):  # fmt: skip
        async with client.get(base + path) as r:
            await r.read()
    root = base.removesuffix("/3")
    async with aiohttp.ClientSession() as anonymous:  # no credential needed
        async with anonymous.get(f"{root}/__standin__/stats") as r:
            stats = await r.json(content_type=None)
        assert stats["requests"] == 7
        assert stats["by_route"] == {
            "authentication": 1,
            "find": 1,
            "movie": 1,
            "tv": 1,
            "person": 0,
            "genre": 1,
            "discover": 1,
            "configuration": 0,
            "certification": 0,
            "other": 1,
        }
        assert stats["by_status"] == {"200": 4, "400": 1, "404": 2}
        assert stats["max_window"] == 7 and stats["rate_limited"] == 0
        assert 0 < stats["first_arrival"] <= stats["last_arrival"]
        # the client's keep-alive connection, and this session's own
        assert stats["connections"] == 2 and stats["max_open_connections"] == 2
        assert {"max_in_flight", "in_flight", "open_connections", "faults", "random_errors"} <= set(stats)
        async with anonymous.post(f"{root}/__standin__/reset") as r:
            zeroed = await r.json(content_type=None)
    assert zeroed["requests"] == 0 and zeroed["by_status"] == {} and zeroed["max_window"] == 0
    assert standin.stats.requests == 0 and standin.stats.open_connections >= 1  # gauges survive


async def test_keep_alive_reuses_one_connection(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    for _ in range(10):
        assert (await get(client, f"{standin.base_url}/movie/tt0111161"))[0] == 200
    assert standin.stats.connections == 1


def test_main_standin_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # the command the README gives, options passed through the CLI's subcommand
    args = [sys.executable, "-m", "harvester", "standin", "--port", "0", "--token", TOKEN]
    args += ["--rate-limit", "0"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/3")

        async def check() -> int:
            async with (
                aiohttp.ClientSession(headers=AUTH_HEADERS) as s,
                s.get(f"{base_url}/authentication") as r,
            ):
                return r.status

        assert asyncio.run(check()) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_main_standin_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_standin(["--latency-ms", "5", "1"])
    assert exc.value.code == 2 and "latency" in capsys.readouterr().err


def test_main_standin_switches_quirks_on() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        "-m",
        "harvester",
        "standin",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--rate-limit",
        "0",
    ]
    args += ["--quirks", "gzip,throttle", "--quirk-rate", "1"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()

        async def check() -> tuple[int, str | None, dict[str, Any]]:
            headers = {**AUTH_HEADERS, "Accept-Encoding": "identity"}
            async with aiohttp.ClientSession(headers=headers) as s:
                async with s.get(f"{base_url}/authentication") as r:
                    status, encoding = r.status, r.headers.get("Content-Encoding")
                async with s.get(base_url.removesuffix("/3") + "/__standin__/stats") as r:
                    return status, encoding, await r.json()

        status, encoding, stats = asyncio.run(check())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    # every answer a 429 of the CDN's (rate 1), compressed though the request asked for identity
    assert (status, encoding) == (429, "gzip") and stats["quirks"]["throttle"] == 1, stats["quirks"]


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--quirks", "gzip,typo"], "typo"),
        (["--quirk-rate", "2"], "quirk_rate"),
        (["--reset-rate", "-1"], "reset"),
    ],
)
def test_main_standin_rejects_unknown_quirks_and_bad_rates(
    argv: list[str], word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main_standin(argv)
    assert exc.value.code == 2 and word in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Generated CSV inputs


def _rows(path: Path) -> list[list[str]]:
    return [line.split("|") for line in path.read_text(encoding="utf-8").splitlines()]


def test_movies_csv_has_the_real_format(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    written = csvgen.write_movies_csv(path, 3_000, seed=7)
    rows = _rows(path)
    sample_header = Path("/work/shared/data/movies_sample.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "|".join(rows[0]) == csvgen.MOVIES_HEADER == sample_header
    assert "tituloPincipal" in rows[0]
    data = rows[1:]
    assert len(data) == written.rows and all(len(r) == 15 for r in data)
    ids = list(dict.fromkeys(r[0] for r in data))
    assert ids == list(csvgen.movie_ids(3_000, seed=7)) and written.ids == 3_000
    # one run of consecutive rows per id, repeated across artists
    runs = [r[0] for i, r in enumerate(data) if i == 0 or data[i - 1][0] != r[0]]
    assert runs == ids and len(data) > len(ids)
    assert {kind_of(i) for i in ids} == set(KINDS)
    genres = {g for r in data if r[5] != "\\N" for g in r[5].split(",")}
    assert "Sci-Fi" in genres and genres <= set(csvgen.IMDB_GENRES)
    assert any(r[1].startswith('"') for r in data) and any(r[4] == "\\N" for r in data)
    assert all(r[3].isdigit() and r[7].isdigit() for r in data)
    assert csvgen.write_movies_csv(tmp_path / "again.csv", 3_000, seed=7).rows == written.rows
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()  # deterministic


def test_series_csv_has_the_real_format_and_mostly_tv(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    written = csvgen.write_series_csv(path, 300, seed=1)
    rows = _rows(path)
    sample_header = Path("/work/shared/data/series_sample.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "|".join(rows[0]) == csvgen.SERIES_HEADER == sample_header
    assert all(len(r) == 16 for r in rows[1:]) and written.rows == len(rows) - 1
    ids = list(dict.fromkeys(r[0] for r in rows[1:]))
    assert ids == list(csvgen.series_ids(300, seed=1))
    share = sum(kind_of(i) == "tv" for i in ids) / len(ids)
    assert 0.8 < share < 0.97
    assert all(r[4] == "\\N" or int(r[4]) >= int(r[3]) for r in rows[1:])
