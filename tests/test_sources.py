"""Every way in besides movies.csv goes through the same pipeline: series.csv (TV), id lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN
from harvest_helpers import read_local_lake

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.runner import harvest
from tmdb_standin import RunningStandin, kind_of, movie_ids, tmdb_id_of, write_series_csv

CREDS = Credentials(access_token=Secret(TOKEN))


def settings(standin: RunningStandin, lake: Path, source: SourceSettings, **tmdb: object) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=1000.0, concurrency=8, **tmdb),  # type: ignore[arg-type]
        source=source,
        sink=SinkSettings(url=str(lake), partition="{media}/{yyyy}/{mm}/{dd}"),
    )


def series_ids_of(csv: Path) -> list[str]:
    seen: dict[str, None] = {}
    for line in csv.read_text().splitlines()[1:]:
        seen.setdefault(line.split("|", 1)[0], None)
    return list(seen)


async def test_series_csv_harvests_tv_details_through_find(standin: RunningStandin, tmp_path: Path) -> None:
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 60, seed=5)
    ids = series_ids_of(csv)
    src = SourceSettings(type="series_csv", path=str(csv))
    s = settings(standin, tmp_path / "lake", src, append=("credits", "aggregate_credits", "external_ids"))
    result = await harvest(s, CREDS, progress=False)
    assert result.status == "complete"

    lake = read_local_lake(tmp_path / "lake")
    assert all(k.startswith("series/") for k in lake.data)  # the media stays apart in the lake
    records = [r for rs in lake.data.values() for r in rs]
    tv = [i for i in ids if kind_of(i) == "tv"]
    assert sorted(r["id"] for r in records) == sorted(tmdb_id_of(i) for i in tv)  # type: ignore[type-var]
    assert all({"aggregate_credits", "external_ids", "credits", "name"} <= set(r) for r in records)
    expected_misses = {
        i: ("not_found" if kind_of(i) == "unknown" else "movie") for i in ids if kind_of(i) != "tv"
    }
    assert lake.miss_reasons() == expected_misses
    # TV cannot be looked up by IMDb id directly: every title went through /find
    assert standin.stats.by_route["find"] == len(ids)
    assert standin.stats.by_route["movie"] == 0


async def test_ids_source_mixes_imdb_and_tmdb_ids(standin: RunningStandin, tmp_path: Path) -> None:
    movies = [i for i in movie_ids(200, seed=9) if kind_of(i) == "movie"][:6]
    imdb = movies[:3]
    tmdb = [str(tmdb_id_of(i)) for i in movies[3:]]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(
        "# my list\n" + "\n".join([*imdb, *tmdb, imdb[0], "", "nm0000001", "999999999"]) + "\n"
    )
    src = SourceSettings(type="ids", path=str(ids_file))
    result = await harvest(settings(standin, tmp_path / "lake", src), CREDS, progress=False)
    lake = read_local_lake(tmp_path / "lake")
    got = lake.record_ids()
    assert set(got) == set(movies) and max(got.values()) == 1
    s = result.summary.source
    assert s.duplicates == 1 and s.malformed == 1 and s.selected == 7
    assert lake.miss_reasons() == {"None": "not_found"}  # the unknown TMDB id 999999999
    assert [o["tmdb_id"] for o in lake.outcomes] == [999999999]
    # a TMDB id needs no lookup: one request each
    assert standin.stats.by_route["find"] == 0


async def test_inline_ids_for_tv(standin: RunningStandin, tmp_path: Path) -> None:
    tv = [i for i in movie_ids(600, seed=2) if kind_of(i) == "tv"][:2]
    src = SourceSettings(type="ids", media="tv", ids=(tv[0], str(tmdb_id_of(tv[1]))))
    await harvest(settings(standin, tmp_path / "lake", src), CREDS, progress=False)
    lake = read_local_lake(tmp_path / "lake")
    records = [r for rs in lake.data.values() for r in rs]
    assert sorted(r["id"] for r in records) == sorted(tmdb_id_of(i) for i in tv)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ({"type": "tvshows"}, "source.type must be one of"),
        ({"type": "discover", "date_from": "2022-01-01", "date_to": "2021-12-31"}, "date_from"),
        ({"type": "discover", "date_from": "2022-13-01"}, "source.date_from must be a date"),
        ({"type": "ids", "ids": ["tt12", "abc"]}, "'abc'"),
        ({"type": "discover", "params": {"page": 3}}, "source.params.page"),
        ({"type": "csv", "genres": [18]}, "IMDb genre names"),
    ],
)
async def test_bad_source_settings_exit_2(tmp_path: Path, source: dict[str, object], needle: str) -> None:
    cfg = write_config(tmp_path / "c.toml", source=source)
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2, done.output
    assert needle in done.stderr and "Traceback" not in done.stderr


async def test_genres_command(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", tmdb={"base_url": standin.base_url})
    done = await run_cli("genres", "tv", "--config", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    assert "10765  Sci-Fi & Fantasy" in done.stdout
    done = await run_cli("genres", "--config", str(cfg), env=cli_env(token=TOKEN))
    assert "10749  Romance" in done.stdout
    done = await run_cli("genres", "--config", str(cfg), env=cli_env())
    assert done.code == 3


async def test_check_counts_and_estimates_and_writes_nothing(standin: RunningStandin, tmp_path: Path) -> None:
    from tmdb_standin import write_movies_csv

    csv = tmp_path / "movies.csv"
    written = write_movies_csv(csv, 200, seed=1)
    lake = tmp_path / "lake"
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 40},
        source={"path": str(csv)},
        sink={"url": str(lake)},
    )
    done = await run_cli("check", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    assert f"{written.rows} rows" in done.stdout and "200 selected" in done.stdout
    assert "requests    about 220" in done.stdout and "at 40 requests/s" in done.stdout
    assert not any(p.is_file() for p in lake.rglob("*"))
    assert standin.stats.by_route["movie"] == 0
