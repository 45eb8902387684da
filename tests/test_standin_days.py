"""The stand-in over days: TMDB's change lists, the daily id exports, and what a day does to titles.

Expectations come from the day model's pure helpers (tmdb_standin.days, exports.export_ids) or from
the bodies of day 0, never from the server's own paths; the HTTP answers are read over real sockets.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import date, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import get, standin_config

from tmdb_standin import RunningStandin, days, details_body, imdb_id_for, main_standin, running_standin
from tmdb_standin.discover import discover_ids, discover_universe
from tmdb_standin.exports import ExportFile, export_ids, file_name, gzip_stream

BASE = date(2026, 3, 2)  # day 0, pinned: nothing here depends on the real date
SMALL = {"discover_movies": 3_000, "discover_tv": 400, "base_date": BASE, "hour": 12.0}
# High shares so that a small catalogue moves visibly in one day
MOVING = {**SMALL, "changed_share": 0.02, "new_share": 0.005, "gone_share": 0.004, "video_share": 0.05}
MOVIE_LINE = re.compile(
    rb'\{"adult":(true|false),"id":\d+,"original_title":"(?:[^"\\]|\\.)*","popularity":[0-9.]+,'
    rb'"video":(true|false)\}'
)
TV_LINE = re.compile(rb'\{"id":\d+,"original_name":"(?:[^"\\]|\\.)*","popularity":[0-9.]+\}')


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config(**MOVING)) as running:
        yield running


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:  # the export host needs no credential
        yield session


def exports_root(standin: RunningStandin) -> str:
    return standin.base_url.removesuffix("/3") + "/p/exports/"


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, Mapping[str, str]]:
    async with session.get(url) as r:
        return r.status, await r.read(), r.headers


async def export_lines(session: aiohttp.ClientSession, standin: RunningStandin, name: str) -> list[bytes]:
    status, body, _ = await download(session, exports_root(standin) + name)
    assert status == 200, name
    return gzip.decompress(body).splitlines()


async def all_changes(session: aiohttp.ClientSession, base: str, media: str, **params: str) -> list[Any]:
    """Every result of a change list, page after page, as TMDB's client would read it."""
    results: list[Any] = []
    page, pages = 1, 1
    while page <= pages:
        status, body = await get(session, f"{base}/{media}/changes", page=str(page), **params)
        assert status == 200, body
        assert len(body["results"]) <= 100 and body["page"] == page
        results += body["results"]
        pages = body["total_pages"]
        page += 1
    assert len(results) == body["total_results"]
    return results


# ---------------------------------------------------------------------------------------------
# The change lists


async def test_changes_list_a_windows_changed_new_and_gone_ids_once(
    moving: RunningStandin, client: aiohttp.ClientSession
) -> None:
    moving.config.day = 3
    cfg, base = moving.config, moving.base_url
    window = {
        "start_date": (BASE + timedelta(days=1)).isoformat(),
        "end_date": (BASE + timedelta(days=2)).isoformat(),
    }
    results = await all_changes(client, base, "movie", **window)
    ids = [r["id"] for r in results]
    assert len(ids) == len(set(ids)) > 100  # more than one page, each id once
    assert set(ids) == {*days.listed_ids(cfg, "movie", 1), *days.listed_ids(cfg, "movie", 2)}
    assert all(list(r) == ["id", "adult"] and isinstance(r["adult"], bool) for r in results)
    parts = (days.changed_ids, days.appeared_ids, days.gone_ids)
    assert set(days.listed_ids(cfg, "movie", 1)) == {i for f in parts for i in f(cfg, "movie", 1)}
    # Series have their own list; a page past the last is empty, as TMDB answers
    tv = await all_changes(client, base, "tv", **window)
    assert {r["id"] for r in tv} == {*days.listed_ids(cfg, "tv", 1), *days.listed_ids(cfg, "tv", 2)}
    status, body = await get(client, f"{base}/movie/changes", page="400", **window)
    assert status == 200 and body["results"] == [] and body["total_results"] == len(ids)


async def test_changes_default_to_the_last_day_and_repeat_on_the_same_day(
    moving: RunningStandin, client: aiohttp.ClientSession
) -> None:
    base = moving.base_url
    status, body = await get(client, f"{base}/movie/changes")
    assert status == 200 and body == {"results": [], "page": 1, "total_pages": 0, "total_results": 0}  # day 0
    moving.config.day = 2
    first = await all_changes(client, base, "movie")
    again = await all_changes(client, base, "movie")
    assert first == again  # dates are days: asked twice on a day, the same ids
    expected = {*days.listed_ids(moving.config, "movie", 1), *days.listed_ids(moving.config, "movie", 2)}
    assert {r["id"] for r in first} == expected  # yesterday and today
    future = {
        "start_date": (BASE + timedelta(days=3)).isoformat(),
        "end_date": (BASE + timedelta(days=9)).isoformat(),
    }
    assert await all_changes(client, base, "movie", **future) == []


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"start_date": "2026-03-01", "end_date": "2026-03-16"}, 422, 20),  # 15 days apart
        ({"start_date": "2026-03-10", "end_date": "2026-03-09"}, 422, 20),  # ends before it starts
        ({"start_date": "2026-3-1"}, 400, 23),
        ({"end_date": "yesterday"}, 400, 23),
        ({"page": "0"}, 400, 22),
        ({"page": "501"}, 400, 22),
    ],
)
async def test_changes_refuse_what_tmdb_refuses(
    moving: RunningStandin, client: aiohttp.ClientSession, params: dict[str, str], status: int, code: int
) -> None:
    got, body = await get(client, f"{moving.base_url}/movie/changes", **params)
    assert (got, body["status_code"], body["success"]) == (status, code, False)
    ok, _ = await get(
        client, f"{moving.base_url}/movie/changes", start_date="2026-03-01", end_date="2026-03-15"
    )
    assert ok == 200  # exactly 14 days apart is allowed


# ---------------------------------------------------------------------------------------------
# The daily exports


async def test_the_export_is_gzip_json_lines_of_the_discover_universe(
    moving: RunningStandin, anonymous: aiohttp.ClientSession, client: aiohttp.ClientSession
) -> None:
    cfg = moving.config
    movies = await export_lines(anonymous, moving, file_name("movie", BASE))
    adult = await export_lines(anonymous, moving, file_name("movie", BASE, adult=True))
    assert all(MOVIE_LINE.fullmatch(line) for line in movies + adult)
    records = [orjson.loads(line) for line in movies]
    assert [list(r) for r in records[:1]] == [["adult", "id", "original_title", "popularity", "video"]]
    assert not any(r["adult"] for r in records) and all(orjson.loads(a)["adult"] for a in adult)
    assert 0 < len(adult) < len(movies) / 20 and any(r["video"] for r in records)
    ids = [r["id"] for r in records] + [orjson.loads(a)["id"] for a in adult]
    assert sorted(ids) == sorted(t.tmdb_id for t in discover_universe("movie", cfg))  # one universe
    assert [r["id"] for r in records] == export_ids(cfg, "movie", 0)
    # A line says what the details say
    for r in records[:: len(records) // 20]:
        status, details = await get(client, f"{moving.base_url}/movie/{r['id']}")
        assert status == 200
        assert (details["original_title"], details["popularity"], details["video"], details["adult"]) == (
            r["original_title"], r["popularity"], r["video"], False
        )  # fmt: skip
    series = await export_lines(anonymous, moving, file_name("tv", BASE))
    assert all(TV_LINE.fullmatch(line) for line in series)
    assert [list(orjson.loads(s)) for s in series[:1]] == [["id", "original_name", "popularity"]]
    assert [orjson.loads(s)["id"] for s in series] == export_ids(cfg, "tv", 0)
    assert moving.stats.exports == 3 and moving.stats.requests == len(records[:: len(records) // 20])


async def test_export_files_are_published_at_0800_and_kept_90_days(
    moving: RunningStandin, anonymous: aiohttp.ClientSession
) -> None:
    root = exports_root(moving)
    moving.config.day = 100
    today = BASE + timedelta(days=100)

    async def status(when: date, kind: str = "movie", adult: bool = False) -> int:
        name = file_name("movie" if kind == "movie" else "tv", when, adult)
        return (await download(anonymous, root + name))[0]

    moving.config.hour = 7.99
    assert await status(today) == 404 and await status(today - timedelta(days=1)) == 200
    moving.config.hour = 8.0
    assert await status(today) == 200 and await status(today, "tv", adult=True) == 200
    assert await status(today + timedelta(days=1)) == 404
    assert await status(today - timedelta(days=90)) == 200 and await status(today - timedelta(days=91)) == 404
    s, _, headers = await download(anonymous, root + file_name("movie", today))
    again = await download(anonymous, root + file_name("movie", today))
    assert (
        s == 200
        and headers["ETag"] == again[2]["ETag"]
        and headers["Content-Type"] == "application/octet-stream"
    )
    for name in (f"keyword_ids_{today:%m_%d_%Y}.json.gz", "movie_ids_02_30_2026.json.gz", "movie_ids.json"):
        assert (await download(anonymous, root + name))[0] == 404
    moving.config.export_missing_status = 403
    assert await status(today + timedelta(days=1)) == 403


async def test_an_export_is_streamed_a_batch_at_a_time(anonymous: aiohttp.ClientSession) -> None:
    config = standin_config(**{**SMALL, "discover_movies": 12_000})
    wanted = ExportFile("movie", False, BASE)
    chunks = list(gzip_stream(config, wanted))  # what the server writes, one piece after another
    assert len(chunks) >= 5 and max(map(len, chunks)) < 64 * 1024
    async with (
        running_standin(config) as standin,
        anonymous.get(exports_root(standin) + file_name("movie", BASE)) as r,
    ):
        assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
        body = await r.read()
    assert gzip.decompress(body) == gzip.decompress(b"".join(chunks))
    assert len(gzip.decompress(body).splitlines()) == len(export_ids(config, "movie", 0))


# ---------------------------------------------------------------------------------------------
# What a day does to titles


async def test_a_day_changes_adds_and_removes_titles(
    moving: RunningStandin, client: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    cfg, base = moving.config, moving.base_url
    day0_export = export_ids(cfg, "movie", 0)
    day0_discover = discover_ids("movie", cfg, include_adult=True)
    changed, new, gone = (f(cfg, "movie", 1) for f in (days.changed_ids, days.appeared_ids, days.gone_ids))
    n = len(day0_discover)
    assert (len(changed), len(new), len(gone)) == (round(0.02 * n), round(0.005 * n), round(0.004 * n))
    assert not set(changed) & set(gone) and not set(new) & set(day0_discover)
    before = {i: (await get(client, f"{base}/movie/{i}"))[1] for i in changed[:10]}

    moving.config.day = 1
    for i, old in before.items():
        status, now = await get(client, f"{base}/movie/{i}")
        assert status == 200 and now != old
        assert now["overview"] == old["overview"] + " [revision 1]" and now["vote_count"] > old["vote_count"]
        assert now["title"] == old["title"] and now["id"] == i
    for i in gone:
        status, body = await get(client, f"{base}/movie/{i}", append_to_response="credits")
        assert (status, body["status_code"]) == (404, 34)
        imdb_id = imdb_id_for("movie", i)
        assert (await get(client, f"{base}/movie/{imdb_id}"))[0] == 404
        _, found = await get(client, f"{base}/find/{imdb_id}", external_source="imdb_id")
        assert found["movie_results"] == []
    for i in new:
        status, body = await get(client, f"{base}/movie/{i}")
        assert status == 200 and body["id"] == i
    exported = await export_lines(anonymous, moving, file_name("movie", BASE + timedelta(days=1)))
    adult = await export_lines(anonymous, moving, file_name("movie", BASE + timedelta(days=1), adult=True))
    now_ids = {orjson.loads(line)["id"] for line in exported + adult}
    assert now_ids == (set(day0_discover) - set(gone)) | set(new)
    assert [orjson.loads(line)["id"] for line in exported] == export_ids(cfg, "movie", 1)
    assert set(discover_ids("movie", cfg, include_adult=True)) == now_ids  # discover agrees
    status, page = await get(client, f"{base}/discover/movie", include_adult="true")
    assert status == 200 and page["total_results"] == len(now_ids)
    # Yesterday's file is still yesterday's
    assert [
        orjson.loads(line)["id"] for line in await export_lines(anonymous, moving, file_name("movie", BASE))
    ] == (day0_export)


async def test_day_0_answers_as_a_standin_without_days(
    moving: RunningStandin, client: aiohttp.ClientSession
) -> None:
    cfg, base = moving.config, moving.base_url
    moving.config.day = 2  # draw the days, then come back
    changed = days.changed_ids(cfg, "movie", 1)[:5] + days.gone_ids(cfg, "movie", 1)[:5]
    assert (await get(client, f"{base}/movie/{days.gone_ids(cfg, 'movie', 1)[0]}"))[0] == 404
    moving.config.day = 0
    moving.config.video_share = 0.0
    for i in changed:
        imdb_id = imdb_id_for("movie", i)
        assert imdb_id is not None
        async with client.get(f"{base}/movie/{i}", params={"append_to_response": "credits"}) as r:
            assert r.status == 200 and await r.read() == details_body("movie", imdb_id, ["credits"])
    assert not days.moved(cfg) and days.revision_of(cfg, "movie", changed[0]) == 0


def test_the_days_are_the_same_in_every_process() -> None:
    config = standin_config(**MOVING)
    here = [days.listed_ids(config, "movie", d) for d in (1, 2)]
    code = (
        "import json; from datetime import date; from tmdb_standin import StandinConfig, days; "
        f"c = StandinConfig(base_date=date(2026, 3, 2), discover_movies={MOVING['discover_movies']}, "
        f"discover_tv={MOVING['discover_tv']}, changed_share={MOVING['changed_share']}, "
        f"new_share={MOVING['new_share']}, gone_share={MOVING['gone_share']}); "
        "print(json.dumps([days.listed_ids(c, 'movie', d) for d in (1, 2)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert json.loads(out.stdout) == here


def test_the_cli_sets_the_day_and_the_export_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main_standin(["--help"])
    help_text = capsys.readouterr().out
    for option in ("--day", "--base-date", "--hour", "--export-movies", "--changed-share", "--video-share"):
        assert option in help_text
    with pytest.raises(SystemExit):
        main_standin(["--base-date", "2026-02-30"])
    assert "not a YYYY-MM-DD date" in capsys.readouterr().err
