"""The stand-in's people: /person/{id} and its appends, the person export, /person/changes.

Over real sockets. Expectations come from the credits bodies the stand-in serves (what a people
harvest reads its ids from) and from people.py's pure helpers, never from the person paths
themselves.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import get, standin_config

from tmdb_standin import RunningStandin, imdb_id_for, people, running_standin, tmdb_id_of
from tmdb_standin.titles import imdb_id_from_number, population_numbers

BASE = date(2026, 3, 2)  # day 0, pinned
DAYS = {"base_date": BASE, "hour": 12.0, "discover_movies": 3_000, "discover_tv": 400}
PERSON_KEYS = {
    "adult", "also_known_as", "biography", "birthday", "deathday", "gender", "homepage", "id", "imdb_id",
    "known_for_department", "name", "place_of_birth", "popularity", "profile_path",
}  # fmt: skip
EXTERNAL_KEYS = {
    "id", "freebase_mid", "freebase_id", "imdb_id", "tvrage_id", "wikidata_id", "facebook_id",
    "instagram_id", "tiktok_id", "twitter_id", "youtube_id",
}  # fmt: skip
PERSON_LINE = re.compile(rb'\{"adult":false,"id":\d+,"name":"(?:[^"\\]|\\.)*","popularity":[0-9.]+\}')


def movies(count: int) -> list[str]:
    return [imdb_id_from_number(n) for n in population_numbers("movie", count)]


async def credits_of(client: aiohttp.ClientSession, base: str, media: str, tmdb_id: int) -> list[Any]:
    status, body = await get(client, f"{base}/{media}/{tmdb_id}/credits")
    assert status == 200
    return [*body["cast"], *body["crew"]]


def busy_person() -> int:
    """A person whose combined_credits hold cast and crew of movies and series (pure helpers)."""
    config = standin_config()
    for pid in people.all_person_ids():
        body = orjson.loads(people.person_body(pid, config, ["combined_credits"]) or b"{}")
        credits = body["combined_credits"]
        kinds = {(e["media_type"], "job" in e) for e in credits["cast"] + credits["crew"]}
        if len(kinds) == 4:
            return pid
    raise AssertionError("no person with movie and TV cast and crew credits")


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def export_url(standin: RunningStandin, name: str) -> str:
    return standin.base_url.removesuffix("/3") + "/p/exports/" + name


# ---------------------------------------------------------------------------------------------
# /person/{id}


async def test_the_people_of_the_credits_answer_with_the_credits_values(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base, seen = standin.base_url, 0
    series = imdb_id_from_number(population_numbers("tv", 1)[0])
    chosen: list[tuple[people.TitleMedia, str]] = [*(("movie", i) for i in movies(4)), ("tv", series)]
    for media, imdb_id in chosen:
        tmdb_id = tmdb_id_of(imdb_id)
        entries = await credits_of(client, base, media, tmdb_id)
        # The pure helper names the same people, in body order.
        assert [(e["id"], e["credit_id"]) for e in entries] == [
            (c.person_id, c.credit_id) for c in people.credit_entries(media, imdb_id)
        ]
        for entry in entries[:3] + entries[-3:]:
            status, body = await get(client, f"{base}/person/{entry['id']}")
            assert status == 200
            assert set(body) == PERSON_KEYS
            for key in (
                "id",
                "name",
                "known_for_department",
                "gender",
                "profile_path",
                "adult",
                "popularity",
            ):
                assert body[key] == entry[key], key
            assert body["imdb_id"] is None or re.fullmatch(r"nm\d{7}", body["imdb_id"])
            seen += 1
    assert seen == 30
    assert standin.stats.by_route["person"] == seen


async def test_the_directors_of_movies_are_the_ids_the_pure_helper_names(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base, served = standin.base_url, set()
    chosen = movies(40)
    for imdb_id in chosen:
        status, body = await get(client, f"{base}/movie/{tmdb_id_of(imdb_id)}", append_to_response="credits")
        assert status == 200
        served |= {e["id"] for e in body["credits"]["crew"] if e["job"] == "Director"}
    expected = {
        e.person_id
        for imdb_id in chosen
        for e in people.credit_entries("movie", imdb_id)
        if e.job == "Director"
    }
    assert served == expected and len(expected) >= 5
    for pid in sorted(expected):
        assert people.person_exists(pid, standin.config)
        status, body = await get(client, f"{base}/person/{pid}")
        assert status == 200 and body["id"] == pid


async def test_appends_and_sub_resources_answer_tmdbs_sections(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base, pid = standin.base_url, busy_person()
    names = sorted(people.APPENDS)
    status, body = await get(
        client, f"{base}/person/{pid}", append_to_response=",".join([*names, "nonsense"])
    )
    assert status == 200
    assert set(body) == PERSON_KEYS | set(names)  # the unknown name is left out, silently
    for name in names:
        status, alone = await get(client, f"{base}/person/{pid}/{name}")
        assert status == 200 and alone == body[name], name
    assert set(body["external_ids"]) == EXTERNAL_KEYS and body["external_ids"]["imdb_id"] == body["imdb_id"]
    assert body["images"]["id"] == pid
    assert body["profile_path"] is None or body["images"]["profiles"][0]["file_path"] == body["profile_path"]
    assert body["tagged_images"]["results"] == [] and body["changes"] == {"changes": []}  # day 0
    translations = body["translations"]["translations"]
    assert translations[0]["iso_639_1"] == "en" and translations[0]["data"]["biography"] == body["biography"]
    combined = body["combined_credits"]
    assert combined["id"] == pid and combined["cast"] and combined["crew"]
    for key, media in (("movie_credits", "movie"), ("tv_credits", "tv")):
        for part in ("cast", "crew"):
            mine = [
                {k: v for k, v in e.items() if k != "media_type"}
                for e in combined[part]
                if e["media_type"] == media
            ]
            assert body[key][part] == mine and mine, (key, part)
    # Each credit names a title whose own credits hold this person with that credit_id.
    for entry in combined["cast"][:4] + combined["crew"][:4]:
        media = entry["media_type"]
        assert ("job" in entry) == ("character" not in entry)
        assert {"id", "credit_id", "popularity", "vote_average", "genre_ids"} <= set(entry)
        assert ("title" if media == "movie" else "name") in entry
        assert ("release_date" if media == "movie" else "first_air_date") in entry
        assert imdb_id_for(media, entry["id"]) is not None
        credits = await credits_of(client, base, media, entry["id"])
        mine = [c for c in credits if c["credit_id"] == entry["credit_id"]]
        assert mine and mine[0]["id"] == pid and mine[0].get("job") == entry.get("job")


async def test_unknown_people_and_names_answer_404_status_34(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    known = set(people.all_person_ids())
    stranger = next(i for i in range(1, 10_000) if i not in known)
    pid = min(known)
    for path in (f"person/{stranger}", "person/abc", f"person/{pid}/nonsense", f"person/{stranger}/images"):
        status, body = await get(client, f"{standin.base_url}/{path}")
        assert (status, body["status_code"]) == (404, 34), path


async def test_a_share_of_the_credited_people_is_gone_and_out_of_the_export(
    anonymous: aiohttp.ClientSession, client: aiohttp.ClientSession
) -> None:
    async with running_standin(standin_config(person_missing_share=0.25, **DAYS)) as standin:
        ids = people.all_person_ids()
        gone = [pid for pid in ids if not people.person_exists(pid, standin.config)]
        assert 0.2 * len(ids) < len(gone) < 0.3 * len(ids)
        for pid in gone[:5]:
            status, body = await get(client, f"{standin.base_url}/person/{pid}")
            assert (status, body["status_code"]) == (404, 34)
        async with anonymous.get(export_url(standin, f"person_ids_{BASE:%m_%d_%Y}.json.gz")) as r:
            lines = gzip.decompress(await r.read()).splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == [pid for pid in ids if pid not in set(gone)]


async def test_more_than_20_appends_answer_400_status_27(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    pid, names = min(people.all_person_ids()), sorted(people.APPENDS)
    twenty = (names * 3)[:20]
    status, body = await get(client, f"{standin.base_url}/person/{pid}", append_to_response=",".join(twenty))
    assert status == 200 and set(names) <= set(body)
    too_many = ",".join([*twenty, "images"])
    status, body = await get(client, f"{standin.base_url}/person/{pid}", append_to_response=too_many)
    assert (status, body["status_code"]) == (400, 27)


async def test_holes_show_null_popularity_and_unusable_imdb_ids(client: aiohttp.ClientSession) -> None:
    chosen = people.all_person_ids()[:40]
    shown: dict[str, list[Any]] = {}
    for quirks in (frozenset(), frozenset({"holes"})):
        async with running_standin(standin_config(quirks=quirks, quirk_rate=1.0)) as standin:
            bodies = [(await get(client, f"{standin.base_url}/person/{pid}"))[1] for pid in chosen]
        shown[",".join(quirks)] = bodies
    whole, holed = shown[""], shown["holes"]
    assert all(isinstance(b["popularity"], float) for b in whole)
    assert sum(b["popularity"] is None for b in holed) >= 10
    assert sum(b["imdb_id"] == "" for b in holed) >= 3
    assert sum(b["imdb_id"] is None for b in holed) > sum(b["imdb_id"] is None for b in whole)
    for w, h in zip(whole, holed, strict=True):  # holes and nothing else
        assert {k for k in w if w[k] != h[k]} <= {"popularity", "imdb_id"}


# ---------------------------------------------------------------------------------------------
# The export


async def test_the_person_export_is_json_lines_that_agree_with_the_bodies(
    anonymous: aiohttp.ClientSession, client: aiohttp.ClientSession
) -> None:
    config = standin_config(**DAYS, day=2, changed_share=0.05)
    async with running_standin(config) as standin:
        for day in (0, 2):
            when = BASE + timedelta(days=day)
            async with anonymous.get(export_url(standin, f"person_ids_{when:%m_%d_%Y}.json.gz")) as r:
                assert r.status == 200
                lines = gzip.decompress(await r.read()).splitlines()
            assert all(PERSON_LINE.fullmatch(line) for line in lines)
            records = [orjson.loads(line) for line in lines]
            assert [rec["id"] for rec in records] == list(people.all_person_ids())
            if day == 2:  # today: the bodies as they stand now, revised ones included
                revised = set(people.changed_ids(config, 1)) | set(people.changed_ids(config, 2))
                sample = [rec for rec in records if rec["id"] in revised][:5] + records[:5]
                for rec in sample:
                    status, body = await get(client, f"{standin.base_url}/person/{rec['id']}")
                    assert status == 200
                    assert (body["name"], body["popularity"]) == (rec["name"], rec["popularity"])
        async with anonymous.get(export_url(standin, f"adult_person_ids_{BASE:%m_%d_%Y}.json.gz")) as r:
            assert r.status == 200 and gzip.decompress(await r.read()) == b""  # no credited person is adult
        assert standin.stats.exports == 3


async def test_the_export_quirk_cuts_the_person_files_first_download(
    anonymous: aiohttp.ClientSession,
) -> None:
    config = standin_config(**DAYS, quirks=frozenset({"export"}), quirk_rate=0.05)
    async with running_standin(config) as standin:
        url = export_url(standin, f"person_ids_{BASE:%m_%d_%Y}.json.gz")
        async with anonymous.get(url) as r:
            try:
                first: bytes | None = gzip.decompress(await r.read())
            except (EOFError, OSError, aiohttp.ClientPayloadError):
                first = None
        assert first is None  # cut short where HTTP does not show it
        async with anonymous.get(url) as r:
            lines = gzip.decompress(await r.read()).splitlines()
        records = [orjson.loads(line) for line in lines if line]
        assert [rec["id"] for rec in records] == list(people.all_person_ids())
        assert b"" in lines  # the quirk's blank lines
        assert any(rec["name"] != people.credit_name(rec["id"]) for rec in records)  # names in other scripts


# ---------------------------------------------------------------------------------------------
# /person/changes


async def all_changes(client: aiohttp.ClientSession, base: str, **params: str) -> list[Any]:
    results: list[Any] = []
    page, pages = 1, 1
    while page <= pages:
        status, body = await get(client, f"{base}/person/changes", page=str(page), **params)
        assert status == 200, body
        assert len(body["results"]) <= 100 and body["page"] == page
        results += body["results"]
        pages = body["total_pages"]
        page += 1
    assert len(results) == body["total_results"]
    return results


async def test_person_changes_list_the_changed_people_a_page_of_100_at_a_time(
    client: aiohttp.ClientSession,
) -> None:
    config = standin_config(**DAYS, day=14, changed_share=0.02)
    async with running_standin(config) as standin:
        base = standin.base_url
        results = await all_changes(
            client, base, start_date=str(BASE), end_date=str(BASE + timedelta(days=14))
        )
        expected: list[int] = []
        for day in range(14, 0, -1):  # latest day first, each id once
            expected += [pid for pid in people.changed_ids(config, day) if pid not in set(expected)]
        assert [r["id"] for r in results] == expected and len(expected) > 500
        assert all(r == {"id": r["id"], "adult": False} for r in results)
        today = await all_changes(client, base)  # default: yesterday and today
        assert [r["id"] for r in today] == [
            *people.changed_ids(config, 14),
            *[p for p in people.changed_ids(config, 13) if p not in set(people.changed_ids(config, 14))],
        ]
        pid = people.changed_ids(config, 14)[0]
        status, body = await get(client, f"{base}/person/{pid}", append_to_response="changes")
        assert status == 200 and body["changes"]["changes"][0]["key"] == "biography"
        revision = people.revision_of(config, pid)
        assert revision >= 1 and (
            body["biography"] == "" or body["biography"].endswith(f"[revision {revision}]")
        )
        assert standin.stats.changes == -(-len(results) // 100) - (-len(today) // 100)  # a page a request


async def test_person_changes_refuse_what_tmdb_refuses(client: aiohttp.ClientSession) -> None:
    async with running_standin(standin_config(**DAYS, day=3)) as standin:
        url = f"{standin.base_url}/person/changes"
        for params, answer in (
            ({"start_date": str(BASE), "end_date": str(BASE + timedelta(days=15))}, (422, 20)),
            ({"start_date": "2026-3-2"}, (400, 23)),
            ({"page": "0"}, (400, 22)),
            ({"page": "501"}, (400, 22)),
        ):
            status, body = await get(client, url, **params)
            assert (status, body["status_code"]) == answer, params
        status, body = await get(client, url, start_date=str(BASE), end_date=str(BASE + timedelta(days=14)))
        assert status == 200 and body["total_results"] > 0


async def test_day_0_lists_no_person_changes(standin: RunningStandin, client: aiohttp.ClientSession) -> None:
    status, body = await get(client, f"{standin.base_url}/person/changes")
    assert (status, body) == (200, {"results": [], "page": 1, "total_pages": 0, "total_results": 0})
