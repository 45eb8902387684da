"""TMDB's lookups and bodies as its users have seen them (issue 16, items 3, 4 and 7), over real
sockets: appended sections that go missing, /find with more than one answer, details bodies with
holes; the stand-in producing each, and the harvester taking each for what it is."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_local_lake, read_s3_lake

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.items import Failed, Found, Media, Miss, Outcome, Title
from harvester.runner import harvest
from harvester.tmdb import client as tmdb_client
from harvester.tmdb.client import TmdbClient, UnusableBody
from harvester.tmdb.lookup import Lookup, details_decoder
from harvester.tmdb.ratelimit import RateLimiter
from tmdb_standin import RunningStandin, details_body, kind_of, movie_ids, tmdb_id_of, write_movies_csv
from tmdb_standin.bodies import sub_resource_body
from tmdb_standin.titles import (
    BAD_IMDB_IDS,
    BIG_ID_FLOOR,
    FindCase,
    Kind,
    duplicate_id,
    find_entries,
    holes_of,
    imdb_id_from_number,
    media_numbers,
    parse_imdb_id,
    tmdb_id_for_number,
)

CREDS = Credentials(access_token=Secret(TOKEN))
RATE = 1000.0
BAD_VALUES = [orjson.loads(b) for b in BAD_IMDB_IDS]  # what a record shows instead of its IMDb id
OTHER: dict[Media, Media] = {"movie": "tv", "tv": "movie"}
MEDIA: tuple[Media, ...] = ("movie", "tv")


def ids_of(kind: Kind, count: int, skip: int = 0) -> list[str]:
    """IMDb ids the stand-in knows as `kind`, in a stable order."""
    if kind == "tv":
        return [imdb_id_from_number(n) for n in islice(media_numbers("tv"), skip, skip + count)]
    return [i for i in movie_ids(4000, seed=5) if kind_of(i) == kind][skip : skip + count]


def one_of(media: Media, skip: int = 0) -> str:
    return ids_of(media, 1, skip)[0]


async def no_wait(seconds: float) -> None:
    """The client's retry back-off, skipped: these tests count retries, not wait for them."""


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A harvest's back-off between retries, made negligible (these tests retry a lot)."""
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)


@asynccontextmanager
async def open_lookup(standin: RunningStandin, **settings: Any) -> AsyncIterator[Lookup]:
    tmdb = TmdbSettings(base_url=standin.base_url, rate_limit=RATE, concurrency=4, timeout_s=5.0, **settings)
    async with TmdbClient(tmdb, CREDS, RateLimiter(RATE), rng=random.Random(1), sleep=no_wait) as client:
        yield Lookup(client, tmdb)


async def look_up(standin: RunningStandin, title: Title, **settings: Any) -> tuple[Outcome, int]:
    """The outcome of one title and the number of requests it cost."""
    before = standin.stats.requests
    async with open_lookup(standin, **settings) as lookup:
        outcome = await lookup(title)
    return outcome, standin.stats.requests - before


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with session.get(url, params=params) as r:
        return r.status, orjson.loads(await r.read())


async def get_bytes(session: aiohttp.ClientSession, url: str, **params: str) -> bytes:
    async with session.get(url, params=params) as r:
        assert r.status == 200, (url, r.status)
        return await r.read()


def settings_for(standin: RunningStandin, lake: Path, source: SourceSettings, **tmdb: Any) -> Settings:
    t = {"rate_limit": RATE, "concurrency": 8, "timeout_s": 5.0, **tmdb}
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, **t),
        source=source,
        sink=SinkSettings(url=str(lake)),
    )


def records_of(lake: Path) -> list[dict[str, Any]]:
    return [r for rs in read_local_lake(lake).data.values() for r in rs]


def stored_bytes(lake: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(lake.rglob("*.json")) if "_harvest" not in p.parts)


# ---------------------------------------------------------------------------------------------
# Appended sections that go missing


async def test_append_quirk_answers_details_without_the_appended_sections(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    movie, series = one_of("movie"), one_of("tv")
    asks: list[tuple[Media, str, str, list[str]]] = [
        ("movie", movie, f"/movie/{tmdb_id_of(movie)}", ["credits", "keywords"]),
        ("movie", movie, f"/movie/{movie}", ["credits"]),  # the direct IMDb lookup too
        ("tv", series, f"/tv/{tmdb_id_of(series)}", ["credits", "aggregate_credits", "external_ids"]),
    ]
    for media, imdb_id, path, append in asks:  # the quirk off: every section there
        body = await get_bytes(client, standin.base_url + path, append_to_response=",".join(append))
        assert body == details_body(media, imdb_id, append)
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 1.0
    for media, imdb_id, path, append in asks:
        body = await get_bytes(client, standin.base_url + path, append_to_response=",".join(append))
        assert body == details_body(media, imdb_id, [])  # whole, bar the sections
    # a sub-resource asked for alone, and details with nothing appended, are not what the quirk touches
    credits = await get_bytes(client, f"{standin.base_url}/movie/{tmdb_id_of(movie)}/credits")
    assert credits == sub_resource_body("movie", movie, "credits")
    await get_bytes(client, f"{standin.base_url}/movie/{tmdb_id_of(movie)}")
    assert standin.stats.quirks == {"append": 3}


async def test_append_quirk_touches_its_share_of_details_answers(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 0.25
    movie = one_of("movie")
    bodies = [
        orjson.loads(
            await get_bytes(client, f"{standin.base_url}/movie/{movie}", append_to_response="credits")
        )
        for _ in range(200)
    ]
    without = sum("credits" not in b for b in bodies)
    assert 25 <= without <= 75  # 50 expected
    assert standin.stats.quirks["append"] == without


def test_details_decoder_requires_each_appended_section() -> None:
    decode = details_decoder(["credits", "watch/providers", "season/3"])
    whole = b'{"id": 7, "imdb_id": "tt0000007", "credits": {"cast": []}, "watch/providers": {"results": {}}}'
    data = decode(whole)
    assert (data.id, data.imdb_id) == (7, "tt0000007")
    # season/3 is not required: TMDB leaves out a season that does not exist, as it documents
    for broken in (
        b'{"id": 7, "imdb_id": "tt0000007", "watch/providers": {}}',  # credits gone
        b'{"id": 7, "credits": null, "watch/providers": {}}',  # credits null
        b'{"id": 7, "credits": {}}',  # watch/providers gone
    ):
        with pytest.raises(UnusableBody) as raised:
            decode(broken)
        assert raised.value.reason == "append_missing"
    assert details_decoder([])(b'{"id": 7}').id == 7  # nothing appended: nothing required
    assert details_decoder(["season/1"])(b'{"id": 7}').id == 7


async def test_a_body_without_its_sections_is_retried_then_fails_as_append_missing(
    standin: RunningStandin,
) -> None:
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 1.0
    movie = one_of("movie")
    title = Title(0, "movie", imdb_id=movie)
    outcome, requests = await look_up(standin, title, max_retries=2)
    assert outcome == Failed(title, "append_missing after 3 attempts", transient=True)
    assert requests == 3  # the direct lookup, retried: never /find for a body that was the right movie
    by_tmdb_id = Title(0, "movie", tmdb_id=tmdb_id_of(movie))
    outcome, _ = await look_up(standin, by_tmdb_id, max_retries=1)
    assert isinstance(outcome, Failed) and outcome.reason == "append_missing after 2 attempts"
    standin.config.quirk_rate = 0.0
    outcome, requests = await look_up(standin, title, max_retries=2)
    assert isinstance(outcome, Found) and requests == 1


async def test_append_missing_is_pending_then_final_after_max_title_attempts(
    standin: RunningStandin, tmp_path: Path, fast_retries: None
) -> None:
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 1.0
    movies = ids_of("movie", 3)
    src = SourceSettings(type="ids", ids=tuple(str(tmdb_id_of(i)) for i in movies))
    s = settings_for(standin, tmp_path / "lake", src, max_retries=1, max_title_attempts=2)
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "incomplete" and first.summary.pending == 3 and first.summary.failed == 0
    assert read_local_lake(tmp_path / "lake").outcomes == []  # not final yet
    second = await harvest(s, CREDS, progress=False)
    assert second.status == "complete" and second.summary.failed == 3
    lake = read_local_lake(tmp_path / "lake")
    assert lake.data == {}  # no body without its credits was ever stored
    assert sorted((o["tmdb_id"], o["outcome"], o["reason"], o["attempts"]) for o in lake.outcomes) == sorted(
        (tmdb_id_of(i), "failed", "append_missing after 2 attempts", 2) for i in movies
    )


async def test_harvest_with_sections_vanishing_completes_and_every_record_has_them(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, fast_retries: None
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 250, seed=7)
    ids = distinct_ids(csv)
    expected = expected_movies(ids)
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 0.3
    append = ("credits", "keywords")
    settings = Settings(
        tmdb=TmdbSettings(
            base_url=standin.base_url, rate_limit=RATE, concurrency=8, max_retries=20, append=append
        ),
        source=SourceSettings(path=str(csv)),
        sink=SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=endpoint),
    )
    result = await harvest(settings, CREDS, progress=False)
    assert result.status == "complete" and result.summary.failed == 0
    lake = await read_s3_lake(endpoint, bucket)
    counts = lake.record_ids()
    assert set(counts) == expected.found and max(counts.values()) == 1
    assert lake.miss_reasons() == expected.misses
    records = [r for rs in lake.data.values() for r in rs]
    assert all(isinstance(c := r.get("credits"), dict) and "cast" in c for r in records)
    assert all(isinstance(r.get("keywords"), dict) for r in records)
    assert standin.stats.quirks["append"] >= 40  # ~0.3 of ~250 details answers came without them
    assert result.summary.retries >= standin.stats.quirks["append"]


# ---------------------------------------------------------------------------------------------
# /find with more than one answer: the stand-in


def claims_path(media: Media, tmdb_id: int) -> str:
    """Where a record says which IMDb id it claims: a movie's details, a series' external ids."""
    return f"/movie/{tmdb_id}" if media == "movie" else f"/tv/{tmdb_id}/external_ids"


@pytest.mark.parametrize("media", ["movie", "tv"])
@pytest.mark.parametrize(
    ("case", "claims"),
    [
        ("dual", "own media: it; the other media: it as well"),
        ("merged", "another title first, then it"),
        ("ambiguous", "it, twice, under two ids"),
        ("unclaimed", "two other titles"),
    ],
)
async def test_find_cases_list_what_each_record_claims(
    standin: RunningStandin, client: aiohttp.ClientSession, media: Media, case: FindCase, claims: str
) -> None:
    imdb_id = one_of(media, skip=3)
    n = parse_imdb_id(imdb_id)
    assert n is not None
    standin.config.find_overrides = {imdb_id: case}  # pinned: the quirk itself may stay off
    status, found = await get_json(client, f"{standin.base_url}/find/{imdb_id}", external_source="imdb_id")
    assert status == 200
    listed: dict[Media, list[int]] = {m: [r["id"] for r in found[f"{m}_results"]] for m in MEDIA}
    claimed: dict[Media, list[str | None]] = {}
    for m, tmdb_ids in listed.items():
        claimed[m] = []
        for tmdb_id in tmdb_ids:
            status, body = await get_json(client, standin.base_url + claims_path(m, tmdb_id))
            assert status == 200 and body["id"] == tmdb_id
            claimed[m].append(body["imdb_id"])
    own, other = listed[media], listed[OTHER[media]]
    if case == "dual":
        assert own == [tmdb_id_for_number(media, n)] and other == [tmdb_id_for_number(OTHER[media], n)]
        assert claimed[media] == claimed[OTHER[media]] == [imdb_id]
    elif case == "merged":
        assert len(own) == 2 and own[1] == tmdb_id_for_number(media, n) and other == []
        assert claimed[media][1] == imdb_id and claimed[media][0] not in (imdb_id, None)
    elif case == "ambiguous":
        assert own == [tmdb_id_for_number(media, n), duplicate_id(n)] and other == []
        assert claimed[media] == [imdb_id, imdb_id]
    else:
        assert len(own) == 2 and imdb_id not in claimed[media] and other == []
    assert standin.stats.quirks == {"find": 1}


async def test_find_quirk_draws_dual_and_merged_per_title(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.quirks = frozenset({"find"})
    standin.config.quirk_rate = 1.0
    shapes: dict[str, int] = {}
    for imdb_id in [*ids_of("movie", 20), *ids_of("tv", 10)]:
        answers = [
            (await get_json(client, f"{standin.base_url}/find/{imdb_id}", external_source="imdb_id"))[1]
            for _ in range(2)
        ]
        assert answers[0] == answers[1]  # a property of the title: the same answer every time
        sizes = (len(answers[0]["movie_results"]), len(answers[0]["tv_results"]))
        shape = "dual" if sizes == (1, 1) else "merged"
        assert sizes in ((1, 1), (2, 0), (0, 2)), sizes
        shapes[shape] = shapes.get(shape, 0) + 1
    assert set(shapes) == {"dual", "merged"}, shapes
    standin.config.quirk_rate = 0.0
    _, plain = await get_json(
        client, f"{standin.base_url}/find/{ids_of('movie', 1)[0]}", external_source="imdb_id"
    )
    assert len(plain["movie_results"]) == 1 and plain["tv_results"] == []


# ---------------------------------------------------------------------------------------------
# /find with more than one answer: the harvester


@pytest.mark.parametrize("kind", ["movie", "tv"])
async def test_find_naming_both_media_a_movie_harvest_takes_the_movie_a_series_harvest_the_series(
    standin: RunningStandin, kind: Media
) -> None:
    imdb_id = one_of(kind, skip=4)
    n = parse_imdb_id(imdb_id)
    assert n is not None
    standin.config.find_overrides = {imdb_id: "dual"}
    for media in MEDIA:
        title = Title(0, media, imdb_id=imdb_id)
        outcome, requests = await look_up(standin, title, lookup="find")
        assert isinstance(outcome, Found), outcome
        tmdb_id = tmdb_id_for_number(media, n)  # the record of the harvest's own media
        assert outcome.tmdb_id == tmdb_id
        assert outcome.body == details_body(media, imdb_id, ["credits"])
        assert orjson.loads(outcome.body)["id"] == tmdb_id
        assert requests == 2  # /find, then details: one candidate of its media, nothing to resolve


@pytest.mark.parametrize(("media", "cost"), [("movie", 1 + 2), ("tv", 1 + 2 + 1)])
async def test_two_candidates_are_resolved_by_the_imdb_id_their_records_claim(
    standin: RunningStandin, media: Media, cost: int
) -> None:
    imdb_id = one_of(media, skip=5)
    standin.config.find_overrides = {imdb_id: "merged"}  # the other title is listed first
    title = Title(0, media, imdb_id=imdb_id)
    outcome, requests = await look_up(standin, title, lookup="find")
    assert outcome == Found(title, details_body(media, imdb_id, ["credits"]), tmdb_id_of(imdb_id))
    # movies: /find and the details of both; series: /find, both external ids, the one's details
    assert requests == cost
    if media == "tv":
        assert standin.stats.by_route["tv"] == 3


@pytest.mark.parametrize("media", ["movie", "tv"])
@pytest.mark.parametrize("case", ["ambiguous", "unclaimed"])
async def test_candidates_that_all_or_none_claim_the_id_are_a_miss_ambiguous(
    standin: RunningStandin, media: Media, case: FindCase
) -> None:
    imdb_id = one_of(media, skip=6)
    standin.config.find_overrides = {imdb_id: case}
    title = Title(0, media, imdb_id=imdb_id)
    outcome, requests = await look_up(standin, title, lookup="find")
    assert outcome == Miss(title, "ambiguous")
    assert requests == 1 + 2  # /find and what each candidate claims; no details of a guess


async def test_find_cases_end_to_end_in_the_lake(standin: RunningStandin, tmp_path: Path) -> None:
    dual, merged, ambiguous, unclaimed, plain = ids_of("movie", 5, skip=10)
    tv_dual, tv_plain = ids_of("tv", 2, skip=10)
    standin.config.find_overrides = {
        dual: "dual",
        merged: "merged",
        ambiguous: "ambiguous",
        unclaimed: "unclaimed",
        tv_dual: "dual",
    }
    src = SourceSettings(type="ids", ids=(dual, merged, ambiguous, unclaimed, plain, tv_dual, tv_plain))
    result = await harvest(
        settings_for(standin, tmp_path / "lake", src, lookup="find"), CREDS, progress=False
    )
    assert result.status == "complete"
    lake = read_local_lake(tmp_path / "lake")
    counts = lake.record_ids()
    assert set(counts) == {dual, merged, plain, tv_dual} and max(counts.values()) == 1
    assert lake.miss_reasons() == {ambiguous: "ambiguous", unclaimed: "ambiguous", tv_plain: "tv"}
    assert result.summary.misses == {"ambiguous": 2, "tv": 1}
    by_imdb = {r["imdb_id"]: r for r in records_of(tmp_path / "lake")}
    assert by_imdb[merged]["id"] == tmdb_id_of(merged)  # the one that claims it, not the first listed
    assert by_imdb[tv_dual]["id"] == tmdb_id_for_number("movie", parse_imdb_id(tv_dual) or 0)


# ---------------------------------------------------------------------------------------------
# Details bodies with holes: the stand-in


def test_holes_are_a_property_of_the_title_at_the_quirk_rate() -> None:
    cfg = standin_config(seed=3, quirks=frozenset({"holes"}), quirk_rate=0.1)
    movies = ids_of("movie", 2000)
    holed = [i for i in movies if holes_of("movie", i, cfg) is not None]
    assert 120 <= len(holed) <= 280  # 200 expected
    assert holed == [i for i in movies if holes_of("movie", i, cfg) is not None]  # deterministic
    other_seed = replace(cfg, seed=4)
    assert holed != [i for i in movies if holes_of("movie", i, other_seed) is not None]  # from the seed
    assert all(holes_of("movie", i, replace(cfg, quirks=frozenset())) is None for i in movies)


async def test_details_with_holes_keep_the_titles_own_id(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.quirks = frozenset({"holes"})
    standin.config.quirk_rate = 1.0  # every title has holes: which ones is the title's
    seen: set[str] = set()
    for imdb_id in ids_of("movie", 30):
        holes = holes_of("movie", imdb_id, standin.config)
        assert holes is not None
        url = f"{standin.base_url}/movie/{tmdb_id_of(imdb_id)}"
        status, body = await get_json(client, url, append_to_response="credits")
        assert status == 200 and body["id"] == tmdb_id_of(imdb_id) and body["credits"]["id"] == body["id"]
        if holes.imdb_id is None:
            assert body["imdb_id"] == imdb_id
        else:
            assert body["imdb_id"] in BAD_VALUES and body["imdb_id"] != imdb_id
            seen.add(f"imdb_id {body['imdb_id']!r}")
        assert (body["release_date"] == "") == holes.date
        assert (body["popularity"] is None) == holes.popularity
        assert (body["runtime"] is None) == holes.runtime
        assert body["production_companies"][0]["id"] >= BIG_ID_FLOOR
        seen.update(name for name in ("date", "popularity", "runtime") if getattr(holes, name))
    assert seen >= {"date", "popularity", "runtime", "imdb_id None", "imdb_id ''"}, seen
    assert standin.stats.quirks["holes"] == 30
    series = one_of("tv")
    holes = holes_of("tv", series, standin.config)
    assert holes is not None
    url = f"{standin.base_url}/tv/{tmdb_id_of(series)}"
    status, body = await get_json(client, url, append_to_response="external_ids")
    assert status == 200 and body["id"] == tmdb_id_of(series) == body["external_ids"]["id"]
    assert body["external_ids"]["tvdb_id"] >= BIG_ID_FLOOR
    assert (body["first_air_date"] == "") == holes.date


async def test_a_record_without_a_usable_imdb_id_is_not_found_by_it(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.quirks = frozenset({"holes"})
    standin.config.quirk_rate = 1.0
    cfg = standin.config
    for media in MEDIA:
        imdb_id = next(i for i in ids_of(media, 40) if (h := holes_of(media, i, cfg)) and h.imdb_id)
        assert find_entries(imdb_id, cfg) == []
        _, found = await get_json(client, f"{standin.base_url}/find/{imdb_id}", external_source="imdb_id")
        assert found["movie_results"] == found["tv_results"] == []
        if media == "movie":
            status, _ = await get_json(client, f"{standin.base_url}/movie/{imdb_id}")
            assert status == 404
        status, body = await get_json(client, standin.base_url + claims_path(media, tmdb_id_of(imdb_id)))
        assert status == 200 and body["imdb_id"] in BAD_VALUES  # reached by its TMDB id, hole and all


async def test_the_direct_lookup_misbehaves_with_an_unusable_imdb_id_at_the_quirk_rate(
    standin: RunningStandin, client: aiohttp.ClientSession
) -> None:
    standin.config.quirks = frozenset({"holes"})
    standin.config.quirk_rate = 1.0
    cfg = standin.config
    movies = [i for i in ids_of("movie", 40) if (h := holes_of("movie", i, cfg)) and h.imdb_id is None][:8]
    values = []
    for imdb_id in movies:
        status, body = await get_json(client, f"{standin.base_url}/movie/{imdb_id}")
        assert status == 200 and body["id"] == tmdb_id_of(imdb_id) and body["imdb_id"] in BAD_VALUES
        values.append(body["imdb_id"])
        _, by_id = await get_json(client, f"{standin.base_url}/movie/{tmdb_id_of(imdb_id)}")
        assert by_id["imdb_id"] == imdb_id  # the record itself holds it
    assert len(set(map(repr, values))) >= 2
    standin.config.quirk_rate = 0.0  # no title holes, no misbehaviour
    status, body = await get_json(client, f"{standin.base_url}/movie/{movies[0]}")
    assert body["imdb_id"] == movies[0]


# ---------------------------------------------------------------------------------------------
# Details bodies with holes: the harvester


async def test_bodies_with_holes_are_stored_as_tmdb_sent_them(
    standin: RunningStandin, tmp_path: Path
) -> None:
    standin.config.quirks = frozenset({"holes"})
    standin.config.quirk_rate = 1.0
    movies = ids_of("movie", 12)
    src = SourceSettings(type="ids", ids=tuple(str(tmdb_id_of(i)) for i in movies))
    result = await harvest(settings_for(standin, tmp_path / "lake", src), CREDS, progress=False)
    assert result.status == "complete" and result.summary.harvested == len(movies)
    stored = stored_bytes(tmp_path / "lake")
    for imdb_id in movies:  # each body byte for byte as served
        holes = holes_of("movie", imdb_id, standin.config)
        assert details_body("movie", imdb_id, ["credits"], holes=holes) in stored
    records = {r["id"]: r for r in records_of(tmp_path / "lake")}
    assert set(records) == {tmdb_id_of(i) for i in movies}  # the title's own id, whatever its holes
    values = [r["imdb_id"] for r in records.values()]
    assert None in values and "" in values
    assert any(r["release_date"] == "" for r in records.values())
    assert any(r["popularity"] is None for r in records.values())
    assert any(r["runtime"] is None for r in records.values())
    assert all(r["production_companies"][0]["id"] >= BIG_ID_FLOOR for r in records.values())


async def test_a_direct_lookup_without_a_usable_imdb_id_falls_back_to_find(
    standin: RunningStandin, tmp_path: Path
) -> None:
    standin.config.quirks = frozenset({"holes"})
    standin.config.quirk_rate = 1.0  # every direct lookup misbehaves
    cfg = standin.config
    movies = [i for i in ids_of("movie", 40) if (h := holes_of("movie", i, cfg)) and h.imdb_id is None][:5]
    src = SourceSettings(type="ids", ids=tuple(movies))
    result = await harvest(settings_for(standin, tmp_path / "lake", src), CREDS, progress=False)
    assert result.status == "complete" and result.summary.harvested == len(movies)
    # per title: /movie/tt... (unusable), /find, /movie/{id}
    assert standin.stats.by_route["movie"] == 2 * len(movies) and standin.stats.by_route["find"] == len(
        movies
    )
    stored = stored_bytes(tmp_path / "lake")
    for imdb_id in movies:  # the body of the details by TMDB id, not the direct lookup's
        body = details_body("movie", imdb_id, ["credits"], holes=holes_of("movie", imdb_id, cfg))
        assert body in stored and orjson.loads(body)["imdb_id"] == imdb_id
    assert {r["imdb_id"] for r in records_of(tmp_path / "lake")} == set(movies)


# ---------------------------------------------------------------------------------------------
# All three at once


async def test_a_movies_csv_harvest_with_the_lookup_quirks_on(
    standin: RunningStandin, tmp_path: Path, fast_retries: None
) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 250, seed=7)
    ids = distinct_ids(csv)
    standin.config.quirks = frozenset({"append", "find", "holes"})
    standin.config.quirk_rate = 0.2
    cfg = standin.config
    expected: dict[str, str] = {}  # IMDb id -> "found" or the miss reason, from the catalogue
    for imdb_id in ids:
        listed = {e.media for e in find_entries(imdb_id, cfg)}
        expected[imdb_id] = "found" if "movie" in listed else ("tv" if listed else "not_found")
    s = Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=RATE, concurrency=8, max_retries=20),
        source=SourceSettings(path=str(csv)),
        sink=SinkSettings(url=str(tmp_path / "lake")),
    )
    result = await harvest(s, CREDS, progress=False)
    assert result.status == "complete" and result.summary.failed == 0
    lake = read_local_lake(tmp_path / "lake")
    counts = lake.record_ids()
    assert set(counts) == {i for i, what in expected.items() if what == "found"}
    assert max(counts.values()) == 1
    assert lake.miss_reasons() == {i: what for i, what in expected.items() if what != "found"}
    assert all(isinstance(r.get("credits"), dict) for r in records_of(tmp_path / "lake"))
    assert {"append", "find", "holes"} <= set(standin.stats.quirks)
    # the catalogue's quirks changed outcomes: series found as movies, records TMDB holds without an IMDb id
    kinds = {i: kind_of(i) for i in ids}
    assert any(kinds[i] == "tv" and what == "found" for i, what in expected.items())
    assert any(kinds[i] == "movie" and what == "not_found" for i, what in expected.items())
