"""The stand-in's /discover listings behave like TMDB's: 20 a page, 500 pages at most, filters honoured,
and every body of a title (discover result, details, /find) agreeing on its date, genres and votes."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fixtures_tmdb import get, standin_config

from tmdb_standin import RunningStandin, running_standin
from tmdb_standin.discover import discover_count, discover_ids, discover_universe

SMALL = {"discover_movies": 3_000, "discover_tv": 1_000}


@pytest.fixture
async def small() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config(**SMALL)) as running:
        yield running


async def all_ids(client: aiohttp.ClientSession, url: str, **params: str) -> list[int]:
    status, first = await get(client, url, **params)
    assert status == 200
    ids = [t["id"] for t in first["results"]]
    for page in range(2, first["total_pages"] + 1):
        _, body = await get(client, url, page=str(page), **params)
        assert len(body["results"]) == (
            20 if page < first["total_pages"] else first["total_results"] - len(ids)
        )
        ids += [t["id"] for t in body["results"]]
    return ids


@pytest.mark.parametrize("page", ["0", "501", "-1", "two", "1.5"])
async def test_pages_beyond_500_or_not_integers_are_400_status_22(
    small: RunningStandin, client: aiohttp.ClientSession, page: str
) -> None:
    status, body = await get(client, f"{small.base_url}/discover/movie", page=page)
    assert status == 400
    assert body["status_code"] == 22 and body["success"] is False


async def test_20_a_page_and_totals_not_capped(small: RunningStandin, client: aiohttp.ClientSession) -> None:
    status, body = await get(client, f"{small.base_url}/discover/movie", page="500")
    total = discover_count("movie", small.config)
    assert status == 200 and body["total_results"] == total > 2_900  # a few are adult, hidden by default
    assert body["total_pages"] == math.ceil(total / 20)
    assert body["page"] == 500 and body["results"] == []  # past the last page: empty, as TMDB does
    _, first = await get(client, f"{small.base_url}/discover/movie")
    assert first["page"] == 1 and len(first["results"]) == 20
    assert set(first["results"][0]) >= {
        "id",
        "genre_ids",
        "release_date",
        "popularity",
        "vote_count",
        "title",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"primary_release_date.gte": "2000-01-01", "primary_release_date.lte": "2004-12-31"},
         {"date_gte": "2000-01-01", "date_lte": "2004-12-31"}),
        ({"with_genres": "18,10749"}, {"with_genres": "18,10749"}),
        ({"with_genres": "18|10749"}, {"with_genres": "18|10749"}),
        ({"with_genres": "18", "without_genres": "35|10749"},
         {"with_genres": "18", "without_genres": "35|10749"}),
        ({"vote_count.gte": "500", "include_adult": "true"}, {"vote_count_gte": 500, "include_adult": True}),
        ({"sort_by": "primary_release_date.desc", "release_date.gte": "1990-06-01"},
         {"sort_by": "primary_release_date.desc", "date_gte": "1990-06-01"}),
    ],
)  # fmt: skip
async def test_filters_and_order_match_a_plain_scan(
    small: RunningStandin, client: aiohttp.ClientSession, params: dict[str, str], expected: dict[str, Any]
) -> None:
    got = await all_ids(client, f"{small.base_url}/discover/movie", **params)
    want = discover_ids("movie", small.config, **expected)
    assert want  # the filter selects something
    assert got == want  # same titles, same order, every page stable


async def test_every_result_satisfies_its_filters(
    small: RunningStandin, client: aiohttp.ClientSession
) -> None:
    _, body = await get(
        client,
        f"{small.base_url}/discover/tv",
        **{"first_air_date.gte": "2010-01-01", "with_genres": "18", "vote_count.gte": "10"},
    )
    assert body["results"]
    for t in body["results"]:
        assert t["first_air_date"] >= "2010-01-01" and 18 in t["genre_ids"] and t["vote_count"] >= 10
        assert "name" in t and "origin_country" in t


async def test_details_and_find_agree_with_the_discover_result(
    small: RunningStandin, client: aiohttp.ClientSession
) -> None:
    for media in ("movie", "tv"):
        title = discover_universe(media, small.config)[1234 if media == "movie" else 321]
        _, details = await get(client, f"{small.base_url}/{media}/{title.tmdb_id}")
        date_key = "release_date" if media == "movie" else "first_air_date"
        assert details[date_key] == title.date
        assert tuple(g["id"] for g in details["genres"]) == title.genre_ids
        assert (details["vote_count"], details["popularity"]) == (title.vote_count, title.popularity)
        _, found = await get(client, f"{small.base_url}/find/{title.imdb_id}", external_source="imdb_id")
        (summary,) = found[f"{media}_results"]
        assert summary["id"] == title.tmdb_id and summary[date_key] == title.date


async def test_a_crowded_day_cannot_be_split_by_date(client: aiohttp.ClientSession) -> None:
    config = standin_config(discover_movies=12_000, crowded_day="2019-03-08", crowded_count=10_500)
    async with running_standin(config) as standin:
        day = {"primary_release_date.gte": "2019-03-08", "primary_release_date.lte": "2019-03-08"}
        _, body = await get(client, f"{standin.base_url}/discover/movie", **day)
        assert body["total_results"] > 10_000
        # the moved titles say so in their details too
        moved = body["results"][0]
        _, details = await get(client, f"{standin.base_url}/movie/{moved['id']}")
        assert details["release_date"] == "2019-03-08"


async def test_sub_resources_have_their_own_paths(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    title = discover_universe("movie", standin.config)[7]
    _, details = await get(client, f"{standin.base_url}/movie/{title.tmdb_id}", append_to_response="credits")
    status, credits = await get(client, f"{standin.base_url}/movie/{title.tmdb_id}/credits")
    assert status == 200 and credits == details["credits"]
    status, body = await get(client, f"{standin.base_url}/movie/{title.tmdb_id}/no_such_thing")
    assert status == 404 and body["status_code"] == 34
    assert standin.stats.by_route["movie"] == 3
