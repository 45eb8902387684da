"""Discover listings as a source: every matching title once, however many, through the same pipeline."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import read_local_lake, stop_after_commits

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.runner import harvest
from tmdb_standin import RunningStandin, running_standin
from tmdb_standin.discover import discover_ids, discover_universe

CREDS = Credentials(access_token=Secret(TOKEN))
ROMANCE, DRAMA = 10749, 18


def settings(standin: RunningStandin, lake: Path, source: SourceSettings, **tmdb: object) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16, **tmdb),  # type: ignore[arg-type]
        source=source,
        sink=SinkSettings(url=str(lake), partition="{media}/{yyyy}/{mm}/{dd}", chunk_size=500),
    )


def records(lake: Path) -> list[dict[str, object]]:
    return [r for rs in read_local_lake(lake).data.values() for r in rs]


def counted(lake: Path) -> Counter[int]:
    return Counter(int(r["id"]) for r in records(lake))  # type: ignore[call-overload]


@pytest.fixture
async def small() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config(discover_movies=3_000, discover_tv=1_000)) as running:
        yield running


async def test_more_than_10000_titles_are_split_into_date_windows_and_harvested_once(tmp_path: Path) -> None:
    async with running_standin(standin_config(discover_movies=24_000)) as standin:
        expected = discover_ids("movie", standin.config, date_gte="1950-01-01")
        assert len(expected) > 20_000  # twice what one query can page through
        src = SourceSettings(type="discover", date_from="1950-01-01", details=False)
        result = await harvest(settings(standin, tmp_path / "lake", src), CREDS, progress=False)
        assert result.status == "complete"
        got = counted(tmp_path / "lake")
        assert set(got) == set(expected) and max(got.values()) == 1
        # every page asked for was one TMDB serves, and enumeration cost little above the minimum
        assert standin.stats.by_status == {200: standin.stats.requests}
        pages = standin.stats.by_route["discover"]
        minimum = math.ceil(len(expected) / 20)
        assert minimum <= pages <= minimum * 1.1
        assert standin.stats.by_route["movie"] == 0  # details = false: the listing is the record


async def test_details_fetch_each_title_with_append(small: RunningStandin, tmp_path: Path) -> None:
    src = SourceSettings(type="discover", date_from="2020-01-01", date_to="2021-12-31")
    expected = discover_ids("movie", small.config, date_gte="2020-01-01", date_lte="2021-12-31")
    result = await harvest(settings(small, tmp_path / "lake", src), CREDS, progress=False)
    assert result.status == "complete"
    recs = records(tmp_path / "lake")
    assert sorted(int(r["id"]) for r in recs) == sorted(expected)  # type: ignore[call-overload]
    assert all("credits" in r and "budget" in r for r in recs)  # details bodies, not summaries
    assert small.stats.by_route["movie"] == len(expected)  # one request per title, no lookup
    assert all(k.startswith("movies/") for k in read_local_lake(tmp_path / "lake").data)


async def test_tv_listings_fetch_tv_details(small: RunningStandin, tmp_path: Path) -> None:
    src = SourceSettings(type="discover", media="tv", date_from="2015-01-01")
    s = settings(small, tmp_path / "lake", src, append=("aggregate_credits", "external_ids"))
    await harvest(s, CREDS, progress=False)
    recs = records(tmp_path / "lake")
    expected = discover_ids("tv", small.config, date_gte="2015-01-01")
    assert sorted(int(r["id"]) for r in recs) == sorted(expected)  # type: ignore[call-overload]
    assert all({"name", "aggregate_credits", "external_ids"} <= set(r) for r in recs)
    assert all(k.startswith("series/") for k in read_local_lake(tmp_path / "lake").data)


@pytest.mark.parametrize("mode", ["any", "all", "only"])
async def test_genre_modes(small: RunningStandin, tmp_path: Path, mode: str) -> None:
    src = SourceSettings(type="discover", genres=("Romance", "drama"), genres_mode=mode, details=False)  # type: ignore[arg-type]
    await harvest(settings(small, tmp_path / "lake", src), CREDS, progress=False)
    wanted = {ROMANCE, DRAMA}
    ok = {
        "any": lambda g: bool(g & wanted),
        "all": lambda g: wanted <= g,
        "only": lambda g: bool(g) and g <= wanted,  # Romance, Drama, or both, and nothing else
    }[mode]
    expected = {
        t.tmdb_id for t in discover_universe("movie", small.config) if not t.adult and ok(set(t.genre_ids))
    }
    got = counted(tmp_path / "lake")
    assert expected and set(got) == expected and max(got.values()) == 1
    assert all(ok(set(r["genre_ids"])) for r in records(tmp_path / "lake"))  # type: ignore[arg-type]


async def test_details_false_stores_the_discover_results(small: RunningStandin, tmp_path: Path) -> None:
    src = SourceSettings(type="discover", date_from="2024-06-01", date_to="2024-06-30", details=False)
    await harvest(settings(small, tmp_path / "lake", src, language="pt-BR"), CREDS, progress=False)
    recs = records(tmp_path / "lake")
    assert recs and all("genre_ids" in r and "budget" not in r for r in recs)
    assert all(str(r["release_date"]).startswith("2024-06") for r in recs)
    assert small.stats.by_route["movie"] == 0
    # the language reaches the listing
    assert all(str(r["overview"]).endswith("(pt-BR)") or not r["overview"] for r in recs)


async def test_a_day_with_more_than_10000_titles_is_a_clear_error(tmp_path: Path) -> None:
    config = standin_config(discover_movies=12_000, crowded_day="2019-03-08", crowded_count=10_500)
    async with running_standin(config) as standin:
        cfg = write_config(
            tmp_path / "c.toml",
            tmdb={"base_url": standin.base_url, "rate_limit": 5000},
            source={"type": "discover", "date_from": "2019-01-01", "date_to": "2019-12-31"},
            sink={"url": str(tmp_path / "lake")},
        )
        done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert "2019-03-08" in done.output and "Traceback" not in done.output
    # No data: only bookkeeping, and the day's reference tables (written whatever the harvest does).
    assert not any(
        not p.relative_to(tmp_path / "lake").as_posix().startswith(("_harvest/", "_reference/"))
        for p in (tmp_path / "lake").rglob("*.json")
    )


async def test_unknown_genre_is_exit_2_listing_the_valid_ones(small: RunningStandin, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url},
        source={"type": "discover", "genres": ["Romantic"]},
        sink={"url": str(tmp_path / "lake")},
    )
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    lines = [line for line in done.output.splitlines() if "Romantic" in line]
    assert len(lines) == 1 and "Romance (10749)" in lines[0] and "Science Fiction (878)" in lines[0]
    assert "Traceback" not in done.output


async def test_stopped_discover_harvest_resumes_from_the_spool(small: RunningStandin, tmp_path: Path) -> None:
    """A resumed run reads the spooled listing, not the live one: no page is requested twice."""
    src = SourceSettings(type="discover", date_from="2000-01-01")
    base = settings(small, tmp_path / "lake", src, append=())
    s = Settings(tmdb=base.tmdb, source=src, sink=SinkSettings(url=base.sink.url, chunk_size=20))
    expected = discover_ids("movie", small.config, date_gte="2000-01-01")
    assert len(expected) > 200

    with stop_after_commits(3) as stop:
        first = await harvest(s, CREDS, stop=stop, progress=False)
    assert first.status == "incomplete"
    partial = counted(tmp_path / "lake")
    assert 0 < len(partial) < len(expected)
    pages = small.stats.by_route["discover"]

    second = await harvest(s, CREDS, progress=False)
    assert second.status == "complete"
    assert small.stats.by_route["discover"] == pages  # the listing was not enumerated again
    got = counted(tmp_path / "lake")
    assert set(got) == set(expected) and max(got.values()) == 1


async def test_check_counts_a_discover_query_from_total_results(
    small: RunningStandin, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url, "rate_limit": 40},
        source={"type": "discover", "genres": ["Crime"], "date_from": "1990-01-01", "date_to": "2000-12-31"},
        sink={"url": str(tmp_path / "lake")},
    )
    done = await run_cli("check", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    total = len(
        discover_ids("movie", small.config, with_genres="80", date_gte="1990-01-01", date_lte="2000-12-31")
    )
    pages = math.ceil(total / 20)
    assert f"TMDB reports {total} matching titles" in done.stdout
    assert f"requests    about {pages + total} ({pages} discover pages" in done.stdout
    assert small.stats.by_route["discover"] == 1 and small.stats.by_route["movie"] == 0
    assert not any(p.is_file() for p in (tmp_path / "lake").rglob("*"))
