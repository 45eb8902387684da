"""The stand-in's reference endpoints (tmdb_standin/reference.py) over real sockets: TMDB's shapes (arrays
for countries and languages, certifications keyed by country), real codes and native names, and the
rules every /3/ request follows (the credential, the rate limit, 404 status 34 for what TMDB lacks)."""

from __future__ import annotations

import aiohttp
import orjson
from fixtures_tmdb import AUTH_HEADERS, ManualClock, get, standin_config

from tmdb_standin import RunningStandin, running_standin
from tmdb_standin.reference import COUNTRIES, LANGUAGES, MOVIE_CERTIFICATIONS, TV_CERTIFICATIONS

NOT_FOUND = {
    "success": False,
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
}


async def test_countries_and_languages_are_arrays_as_tmdb_sends_them(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    status, countries = await get(client, f"{standin.base_url}/configuration/countries", language="en-US")
    assert status == 200 and isinstance(countries, list) and len(countries) == len(COUNTRIES) >= 30
    assert all(set(c) == {"iso_3166_1", "english_name", "native_name"} for c in countries)
    assert {"iso_3166_1": "DE", "english_name": "Germany", "native_name": "Deutschland"} in countries
    assert {"iso_3166_1": "JP", "english_name": "Japan", "native_name": "日本"} in countries
    assert len({c["iso_3166_1"] for c in countries}) == len(countries)  # a code once

    status, languages = await get(client, f"{standin.base_url}/configuration/languages")
    assert status == 200 and isinstance(languages, list) and len(languages) == len(LANGUAGES) >= 30
    assert all(set(lang) == {"iso_639_1", "english_name", "name"} for lang in languages)
    assert {"iso_639_1": "aa", "english_name": "Afar", "name": ""} in languages  # no native name
    assert {"iso_639_1": "ko", "english_name": "Korean", "name": "한국어/조선말"} in languages


async def test_certifications_are_keyed_by_country_for_movies_and_tv(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    for media, table in (("movie", MOVIE_CERTIFICATIONS), ("tv", TV_CERTIFICATIONS)):
        status, body = await get(client, f"{standin.base_url}/certification/{media}/list")
        assert status == 200 and list(body) == ["certifications"]
        by_country = body["certifications"]
        assert set(by_country) == set(table) and len(by_country) >= 5
        for ratings in by_country.values():
            assert all(set(r) == {"certification", "meaning", "order"} for r in ratings)
            assert all(isinstance(r["order"], int) and r["meaning"] for r in ratings)
    _, movie = await get(client, f"{standin.base_url}/certification/movie/list")
    us = {r["certification"]: r["order"] for r in movie["certifications"]["US"]}
    assert us == {"NR": 0, "G": 1, "PG": 2, "PG-13": 3, "R": 4, "NC-17": 5}
    _, tv = await get(client, f"{standin.base_url}/certification/tv/list")
    assert {r["certification"] for r in tv["certifications"]["US"]} >= {"TV-Y", "TV-14", "TV-MA"}


async def test_paths_tmdb_does_not_have_are_404_status_34(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base = standin.base_url
    for path in (
        "/configuration/nope",
        "/configuration/countries/DE",
        "/certification/person/list",
        "/certification/movie",
        "/certification",
    ):
        assert await get(client, base + path) == (404, NOT_FOUND), path


async def test_they_take_the_credential_and_count_against_the_rate_limit() -> None:
    clock = ManualClock()
    async with running_standin(standin_config(rate_limit=2), clock=clock) as standin:
        url = f"{standin.base_url}/configuration/languages"
        async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as r:
            assert r.status == 401 and orjson.loads(await r.read())["status_code"] == 7
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as s:
            async with s.get(f"{standin.base_url}/certification/tv/list") as r:
                assert r.status == 200  # the second arrival of the window: admitted
            async with s.get(url) as r:
                assert r.status == 429  # the third: over the limit of 2
        stats = standin.stats
        assert stats.by_route["configuration"] == 2 and stats.by_route["certification"] == 1
        assert stats.requests == 3 and stats.rate_limited == 1
