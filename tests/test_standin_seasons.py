"""The stand-in's TV seasons: `season/N` in append_to_response and `/tv/{id}/season/{n}`, over real sockets.

Expectations come from the season plans (tmdb_standin.seasons.season_numbers / episode_counts, the
truth a harvester test uses too) and from the details the server sends, never from its own paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from fixtures_tmdb import get, standin_config

from tmdb_standin import RunningStandin, days, running_standin, seasons, tmdb_id_of, write_series_csv
from tmdb_standin.credits import credit_pools
from tmdb_standin.seasonplan import SeasonPlan
from tmdb_standin.templates import TEMPLATES_PER_MEDIA, template_bodies
from tmdb_standin.titles import imdb_id_from_number, media_numbers

NOT_FOUND_34 = 34
SEASON_KEYS = [
    "_id", "air_date", "episodes", "name", "networks", "overview", "id", "poster_path", "season_number",
    "vote_average",
]  # fmt: skip
EPISODE_KEYS = {
    "air_date", "episode_number", "episode_type", "id", "name", "overview", "production_code", "runtime",
    "season_number", "show_id", "still_path", "vote_average", "vote_count", "crew", "guest_stars",
}  # fmt: skip
PERSON_KEYS = {
    "adult", "gender", "id", "known_for_department", "name", "original_name", "popularity", "profile_path",
}  # fmt: skip
SUMMARY_KEYS = [
    "air_date", "episode_count", "id", "name", "overview", "poster_path", "season_number", "vote_average",
]  # fmt: skip


def a_series(wanted: Callable[[SeasonPlan], bool]) -> str:
    """The first series of the catalogue (IMDb id) whose seasons are `wanted`."""
    return next(
        imdb_id
        for imdb_id in map(imdb_id_from_number, media_numbers("tv"))
        if wanted(seasons.plan_of(imdb_id))
    )


def has_gap(plan: SeasonPlan) -> bool:
    regular = [n for n in plan.numbers if n > 0]
    return regular != list(range(regular[0], regular[0] + len(regular)))


def appends(numbers: range | list[int], *more: str) -> str:
    return ",".join([*more, *(f"season/{n}" for n in numbers)])


async def details(client: aiohttp.ClientSession, standin: RunningStandin, tmdb_id: int, append: str) -> Any:
    status, body = await get(client, f"{standin.base_url}/tv/{tmdb_id}", append_to_response=append)
    assert status == 200
    return body


# ---------------------------------------------------------------------------------------------
# The catalogue's seasons (pure)


def test_the_catalogue_has_specials_gaps_and_long_series() -> None:
    plans = [template_bodies("tv", k).facts.plan for k in range(TEMPLATES_PER_MEDIA["tv"])]
    regular = [p.regular for p in plans]
    long = [r for r in regular if r >= 20]
    assert 6 <= len(long) <= 10 and max(long) <= 60  # ~3% of templates: 20..60 seasons
    assert sum(1 <= r <= 8 for r in regular) == len(plans) - len(long)  # the others: 1..8
    assert 0.2 < sum(0 in p.numbers for p in plans) / len(plans) < 0.4  # ~30% have Specials
    assert any(has_gap(p) for p in plans)  # one inner season number missing
    assert any(min(n for n in p.numbers if n) > 1 for p in plans)  # numbering from 2..4
    for p in plans:
        assert list(p.numbers) == sorted(set(p.numbers)) and all(e >= 1 for e in p.episodes)


def test_truth_by_tmdb_id_and_by_imdb_id_agree_and_a_movie_has_none() -> None:
    show = a_series(lambda p: 0 in p.numbers)
    numbers = seasons.season_numbers(show)
    assert numbers[0] == 0 and seasons.season_numbers(tmdb_id_of(show), standin_config()) == numbers
    assert list(seasons.episode_counts(show)) == list(numbers)
    movie = next(imdb_id_from_number(n) for n in media_numbers("movie"))
    assert seasons.season_numbers(movie) == () and seasons.episode_counts(movie) == {}


def test_a_small_generated_series_csv_holds_several_long_series(tmp_path: Path) -> None:
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 200, seed=0)
    ids = {line.partition("|")[0] for line in csv.read_text().splitlines()[1:]}
    long = [i for i in ids if len(seasons.season_numbers(i)) >= 20]
    assert len(long) >= 3  # a harvest of a small csv needs more than one request of 20 appends


# ---------------------------------------------------------------------------------------------
# Over HTTP


async def test_appended_seasons_are_exactly_the_ones_the_series_has(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    show = a_series(lambda p: 0 in p.numbers and has_gap(p) and max(p.numbers) <= 17)
    tmdb_id = tmdb_id_of(show)
    truth = seasons.season_numbers(tmdb_id, standin.config)
    asked = range(max(truth) + 2)  # 0 .. one past the last: the gap and the one past are missing
    body = await details(client, standin, tmdb_id, appends(asked, "credits"))
    assert {k for k in body if k.startswith("season/")} == {f"season/{n}" for n in truth}
    assert "credits" in body and standin.stats.seasons_served == len(truth)
    assert len(truth) < len(asked)  # some were asked for and silently left out
    # The details list what is served, and count it as TMDB does (Specials listed, not counted).
    listed = body["seasons"]
    assert [s["season_number"] for s in listed] == list(truth)
    assert all(list(s) == SUMMARY_KEYS for s in listed)
    assert listed[0]["name"] == "Specials"
    assert body["number_of_seasons"] == sum(1 for n in truth if n > 0)
    counts = seasons.episode_counts(tmdb_id, standin.config)
    assert [s["episode_count"] for s in listed] == list(counts.values())
    assert body["number_of_episodes"] == sum(e for n, e in counts.items() if n > 0)
    assert standin.stats.requests == 1


async def test_a_season_body_has_tmdbs_shape_and_agrees_with_the_details(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    show = a_series(lambda p: p.regular >= 3)
    tmdb_id = tmdb_id_of(show)
    truth = seasons.season_numbers(tmdb_id)
    body = await details(client, standin, tmdb_id, appends(truth))
    summaries = {s["season_number"]: s for s in body["seasons"]}
    pool_people = {
        e["id"]
        for block in (*credit_pools().tv_cast, *credit_pools().crew)
        for e in orjson.loads(b"[" + bytes(block.data) + b"]")
    }
    for n in truth:
        season = body[f"season/{n}"]
        summary = summaries[n]
        assert list(season) == SEASON_KEYS and len(season["_id"]) == 24 and int(season["_id"], 16) >= 0
        for key in ("air_date", "name", "overview", "id", "poster_path", "season_number", "vote_average"):
            assert season[key] == summary[key], key
        episodes = season["episodes"]
        assert len(episodes) == summary["episode_count"]
        assert [e["episode_number"] for e in episodes] == list(range(1, len(episodes) + 1))
        assert episodes[0]["air_date"] == season["air_date"]
        assert [e["air_date"] for e in episodes] == sorted(e["air_date"] for e in episodes)
        assert len({e["id"] for e in episodes}) == len(episodes)
        for e in episodes:
            assert set(e) == EPISODE_KEYS and e["season_number"] == n and e["show_id"] == tmdb_id
            assert e["episode_type"] in ("standard", "mid_season", "finale")
            for person in e["crew"]:
                assert set(person) == PERSON_KEYS | {"job", "department", "credit_id"}
            assert [g["order"] for g in e["guest_stars"]] == list(range(len(e["guest_stars"])))
            for person in e["guest_stars"]:
                assert set(person) == PERSON_KEYS | {"character", "credit_id", "order"}
            # the people of the catalogue's credits: a people harvest finds them
            assert {p["id"] for p in e["crew"] + e["guest_stars"]} <= pool_people
        if n > 0:
            assert episodes[-1]["episode_type"] == "finale"
    last = body[f"season/{truth[-1]}"]["episodes"][-1]
    assert body["last_air_date"] == last["air_date"]
    assert {k: body["last_episode_to_air"][k] for k in ("id", "season_number", "episode_number")} == {
        k: last[k] for k in ("id", "season_number", "episode_number")
    }


async def test_the_season_endpoint_answers_the_appended_body_or_404(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    show = a_series(lambda p: 0 in p.numbers and p.regular >= 2)
    tmdb_id = tmdb_id_of(show)
    truth = seasons.season_numbers(tmdb_id)
    base = f"{standin.base_url}/tv/{tmdb_id}"
    async with client.get(base, params={"append_to_response": appends(truth)}) as r:
        appended = orjson.loads(await r.read())
    for n in truth:
        async with client.get(f"{base}/season/{n}") as r:
            assert r.status == 200
            raw = await r.read()
        assert orjson.loads(raw) == appended[f"season/{n}"]
    assert standin.stats.seasons_served == 2 * len(truth)
    for missing in (f"{max(truth) + 1}", "x", "-1"):
        status, error = await get(client, f"{base}/season/{missing}")
        assert (status, error["status_code"]) == (404, NOT_FOUND_34)
    movie = next(imdb_id_from_number(n) for n in media_numbers("movie"))
    status, error = await get(client, f"{standin.base_url}/movie/{tmdb_id_of(movie)}/season/1")
    assert (status, error["status_code"]) == (404, NOT_FOUND_34)
    assert standin.stats.seasons_served == 2 * len(truth)


async def test_a_long_series_takes_a_request_per_20_appends_and_21_is_refused(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    show = a_series(lambda p: p.regular > 40)
    tmdb_id = tmdb_id_of(show)
    truth = seasons.season_numbers(tmdb_id)
    status, error = await get(
        client, f"{standin.base_url}/tv/{tmdb_id}", append_to_response=appends(list(truth[:21]))
    )
    assert (status, error["status_code"]) == (400, 27)
    assert standin.stats.seasons_served == 0
    standin.stats.reset()
    got: set[str] = set()
    for batch in range(0, len(truth), 20):
        body = await details(client, standin, tmdb_id, appends(list(truth[batch : batch + 20])))
        got |= {k for k in body if k.startswith("season/")}
    assert got == {f"season/{n}" for n in truth}
    assert standin.stats.requests == math.ceil(len(truth) / 20)  # one request, however much it carries
    assert standin.stats.seasons_served == len(truth)


async def test_the_append_quirk_drops_the_seasons_too(client: aiohttp.ClientSession) -> None:
    show = a_series(lambda p: p.regular >= 2)
    tmdb_id = tmdb_id_of(show)
    config = standin_config(quirks=frozenset({"append"}), quirk_rate=1.0)
    async with running_standin(config) as standin:
        body = await details(client, standin, tmdb_id, appends([1, 2], "credits"))
        assert not {"credits", "season/1", "season/2"} & set(body) and body["seasons"]
        assert standin.stats.quirks["append"] == 1 and standin.stats.seasons_served == 0


async def test_over_days_a_gone_series_has_no_seasons_and_a_changed_one_shows_more_votes(
    client: aiohttp.ClientSession,
) -> None:
    config = standin_config(discover_tv=400, changed_share=0.05, gone_share=0.02, new_share=0.0)
    async with running_standin(config) as standin:
        config.day = 1
        gone = days.gone_ids(config, "tv", 1)[0]
        changed = days.changed_ids(config, "tv", 1)[0]
        assert seasons.season_numbers(gone, config) == ()
        assert seasons.season_numbers(changed, config) == seasons.season_numbers(changed)
        first = seasons.season_numbers(changed)[0]
        status, error = await get(client, f"{standin.base_url}/tv/{gone}/season/1")
        assert (status, error["status_code"]) == (404, NOT_FOUND_34)
        _, today = await get(client, f"{standin.base_url}/tv/{changed}/season/{first}")
        config.day = 0
        _, before = await get(client, f"{standin.base_url}/tv/{changed}/season/{first}")
    votes = [
        (e["vote_count"], b["vote_count"]) for e, b in zip(today["episodes"], before["episodes"], strict=True)
    ]
    assert all(now > then for now, then in votes)  # votes only grow
    assert {**today, "episodes": None} == {**before, "episodes": None}


def test_long_series_exist_among_the_first_series_of_the_catalogue() -> None:
    first = [imdb_id_from_number(n) for n in islice(media_numbers("tv"), 400)]
    assert sum(len(seasons.season_numbers(i)) >= 20 for i in first) >= 5
