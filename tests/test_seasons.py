"""Series harvests with `[source] seasons = true`, from outside: against the stand-in over real sockets
and moto's S3, every season of every selected series exactly once, in the fewest requests, through
TMDB dropping appends, kills, resumes, and read as a table by DuckDB with `harvester table`'s SQL."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import PREFIX, Lake, read_local_lake, read_s3_lake
from test_query import _columns, athena_tables, duck

from harvester.config import (
    Credentials,
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
    seasons_partition,
)
from harvester.lake.table import create_view, data_glob, seasons_spec, table_spec
from harvester.runner import harvest
from harvester.tmdb import client as tmdb_client
from harvester.tmdb.seasons import FOLLOW_UP_SEASONS, first_seasons
from harvester.verify import verify
from tmdb_standin import RunningStandin, days, running_standin, titles, write_series_csv
from tmdb_standin import seasons as standin_seasons
from tmdb_standin.seasonplan import LONG_SEASONS

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
RATE = 1000.0


def series_records(lake: Lake) -> list[dict[str, Any]]:
    return [r for key, rs in lake.data.items() if "/seasons-" not in key for r in rs]


def season_records(lake: Lake) -> list[dict[str, Any]]:
    return [r for key, rs in lake.data.items() if "/seasons-" in key for r in rs]


def listed(series: dict[str, Any]) -> set[int]:
    return {s["season_number"] for s in series["seasons"]}


def assert_every_season_once(lake: Lake) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each series once, without its seasons; each season it lists once, in the seasons table."""
    series, seasons = series_records(lake), season_records(lake)
    assert Counter(s["id"] for s in series).most_common(1)[0][1] == 1
    assert not [k for s in series for k in s if k.startswith("season/")]
    pairs = Counter((r["series_id"], r["season_number"]) for r in seasons)
    assert max(pairs.values()) == 1, [p for p, n in pairs.items() if n > 1]
    assert set(pairs) == {(s["id"], n) for s in series for n in listed(s)}
    for r in seasons:  # the body as TMDB sent it, episodes included
        assert r["season"]["season_number"] == r["season_number"]
        assert isinstance(r["season"]["episodes"], list)
    return series, seasons


def settings(standin: RunningStandin, source: SourceSettings, url: str, **sink: Any) -> Settings:
    sink.setdefault("partition", "series/{yyyy}/{mm}/{dd}")
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=RATE, concurrency=8, max_retries=20),
        source=source,
        sink=SinkSettings(url=url, **sink),
    )


async def test_a_series_harvest_holds_every_season_once_in_a_table_of_its_own(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 160, seed=3)
    source = SourceSettings(type="series_csv", path=str(csv), seasons=True)
    s = settings(standin, source, f"s3://{bucket}/{PREFIX}", endpoint_url=endpoint, chunk_size=25)
    result = await harvest(s, CREDS, progress=False)
    assert result.status == "complete"
    lake = await read_s3_lake(endpoint, bucket)
    series, seasons = assert_every_season_once(lake)
    assert len(series) >= 100
    truth = {s["id"]: set(standin_seasons.season_numbers(s["id"], standin.config)) for s in series}
    assert {(r["series_id"], r["season_number"]) for r in seasons} == {
        (i, n) for i, ns in truth.items() for n in ns
    }
    assert any(len(listed(s)) > len(first_seasons(("credits",))) for s in series)  # needs follow-ups
    assert all("credits" in s for s in series)  # the harvest's own appends stay with the series
    summary = result.summary
    assert summary.seasons is not None and summary.seasons.left_out == 0
    assert summary.seasons.records == len(seasons) == result.summary.run_totals.seasons
    # The seasons' own table folder, beside the series'; one seasons object per commit with series.
    keys = [k for k in lake.data if "/seasons-" in k]
    assert all(k.startswith("series-seasons/") for k in keys)
    assert len(keys) == len([k for k in lake.data if "/series-" in k])


async def test_requests_per_series_are_one_and_one_per_19_seasons_past_the_first(
    standin: RunningStandin, tmp_path: Path
) -> None:
    """The cost the issue measures against: 1 + ceil(seasons / available appends) a series."""
    ids = [str(tmdb_id) for tmdb_id in tv_ids(120)]
    source = SourceSettings(type="ids", media="tv", ids=tuple(ids), seasons=True)
    result = await harvest(settings(standin, source, str(tmp_path / "lake")), CREDS, progress=False)
    assert result.status == "complete" and result.summary.retries == 0
    series, _ = assert_every_season_once(read_local_lake(tmp_path / "lake"))
    first = len(first_seasons(("credits",)))
    ours = sum(1 + -(-sum(1 for n in listed(s) if n >= first) // FOLLOW_UP_SEASONS) for s in series)
    minimum = sum(1 + -(-len(listed(s)) // first) for s in series)
    assert result.summary.requests - 1 == ours <= minimum * 1.02  # 1: the credential check
    assert max(len(listed(s)) for s in series) >= LONG_SEASONS[0]


def tv_ids(count: int) -> list[int]:
    """TMDB ids of the first `count` series the stand-in serves (long ones among them)."""
    return [titles.tmdb_id_for_number("tv", n) for n in islice(titles.media_numbers("tv"), count)]


async def test_seasons_dropped_by_tmdb_are_fetched_again_never_missing_or_invented(
    standin: RunningStandin, tmp_path: Path, fast_retries: None
) -> None:
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 120, seed=5)
    standin.config.quirks = frozenset({"append"})
    standin.config.quirk_rate = 0.3
    source = SourceSettings(type="series_csv", path=str(csv), seasons=True)
    result = await harvest(settings(standin, source, str(tmp_path / "lake")), CREDS, progress=False)
    assert result.status == "complete" and result.summary.failed == 0
    series, _ = assert_every_season_once(read_local_lake(tmp_path / "lake"))
    assert all("credits" in s for s in series)
    assert standin.stats.quirks["append"] >= 20
    assert result.summary.seasons is not None and result.summary.seasons.left_out == 0


async def test_sigkill_mid_harvest_then_every_season_exactly_once(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 220, seed=11)
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 200, "concurrency": 8, "timeout_s": 5},
        source={"type": "series_csv", "path": str(csv), "seasons": True},
        sink={
            "url": f"s3://{bucket}/{PREFIX}",
            "endpoint_url": endpoint,
            "chunk_size": 10,
            "lease_s": 1,
            "partition": "series/{yyyy}/{mm}/{dd}",
        },
    )
    standin.config.latency = (0.005, 0.02)
    rng = random.Random(20261204)
    kills = refused = 0
    while kills < 4 and refused < 50:
        proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
        assert proc.stderr is not None
        seen: list[str] = []
        await wait_for_line(proc.stderr, " harvest ", seen)
        if "already complete" in seen[-1]:
            await proc.communicate()
            break
        if "is writing this harvest" in seen[-1]:
            await proc.communicate()
            refused += 1
            continue
        try:
            async with asyncio.timeout(rng.uniform(0.3, 1.2)):
                await proc.wait()
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await proc.communicate()
    assert kills >= 2
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    for _ in range(50):
        if done.code != 6:
            break
        done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    lake = await read_s3_lake(endpoint, bucket)
    assert_every_season_once(lake)
    state = orjson.loads(lake.other["_harvest/state-series_csv-tv.json"])
    assert state["status"] == "complete"
    assert state["counts"]["seasons"] == len(season_records(lake))


async def test_the_seasons_view_is_each_series_seasons_as_last_harvested(
    standin: RunningStandin, tmp_path: Path
) -> None:
    """`harvester table`'s SQL, run by DuckDB: the seasons table and its latest view."""
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 60, seed=8)
    source = SourceSettings(type="series_csv", path=str(csv), seasons=True)
    s = settings(standin, source, str(tmp_path / "lake"), format="jsonl")
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    assert seasons_partition(s.sink.partition) == "series-seasons/{yyyy}/{mm}/{dd}"
    lake = read_local_lake(tmp_path / "lake")
    _, seasons = assert_every_season_once(lake)
    spec = seasons_spec(s)
    assert spec is not None
    with duck() as con:
        athena_tables(con, table_spec(s))
        con.execute(
            f'CREATE VIEW {spec.name} AS SELECT * EXCLUDE (filename), filename AS "$path", '
            "regexp_extract(filename, '([0-9]{4}/[0-9]{2}/[0-9]{2})/[^/]*$', 1) AS dt "
            f"FROM read_json('{data_glob(spec)}', format = 'newline_delimited', "
            f"columns = {_columns(spec.columns)}, filename = true)"
        )
        con.execute(create_view(spec))
        got = con.execute(f"SELECT series_id, season_number FROM {spec.latest_view}").fetchall()
        assert Counter(got) == Counter((r["series_id"], r["season_number"]) for r in seasons)
        best = con.execute(
            f"SELECT s.series_id, e.name, e.vote_average FROM {spec.latest_view} s, "
            "unnest(s.season.episodes) AS t(e) ORDER BY e.vote_average DESC LIMIT 1"
        ).fetchall()
        assert best and best[0][1]


async def test_verify_audits_the_seasons_objects_and_finds_what_is_planted(
    standin: RunningStandin, tmp_path: Path
) -> None:
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 40, seed=9)
    source = SourceSettings(type="series_csv", path=str(csv), seasons=True)
    s = settings(standin, source, str(tmp_path / "lake"), chunk_size=10)
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    report = await verify(s)
    assert report.clean and report.seasons == len(season_records(read_local_lake(tmp_path / "lake")))
    objects = sorted((tmp_path / "lake" / "series-seasons").rglob("seasons-*.json"))
    first, second = objects[0], objects[1]
    copy = first.with_name(first.name.replace(first.name.rsplit("-", 1)[-1], "000900.json"))
    copy.write_bytes(first.read_bytes())  # under no commit of the run: an orphan
    second.write_bytes(second.read_bytes()[:-40])  # cut short: invalid, and its seasons are missing
    found = {f.kind: f for f in (await verify(s)).findings}
    assert copy.name in found["orphans"].examples[0]
    assert "invalid" in found and "counts" in found
    copy.unlink()
    second.write_bytes(first.read_bytes())  # another commit's seasons again: duplicates
    found = {f.kind: f for f in (await verify(s)).findings}
    assert "duplicates" in found and "orphans" not in found


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    """A stand-in whose catalogue changes 5% of its series a day, and whose day 1 is today."""
    config = standin_config(
        base_date=datetime.now(UTC).date() - timedelta(days=1), changed_share=0.05, hour=12.0
    )
    async with running_standin(config) as running:
        yield running


async def test_a_refresh_takes_the_seasons_of_the_series_it_takes_again(
    moving: RunningStandin, tmp_path: Path
) -> None:
    csv = tmp_path / "series.csv"
    write_series_csv(csv, 200, seed=13)
    source = SourceSettings(type="series_csv", path=str(csv), seasons=True)
    s = settings(moving, source, str(tmp_path / "lake"))
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    held = {r["id"] for r in series_records(read_local_lake(tmp_path / "lake"))}
    moving.config.day = 1
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete"
    lake = read_local_lake(tmp_path / "lake")
    tag = refreshed.summary.run
    again = [r for k, rs in lake.data.items() if tag in k and "/series-" in k for r in rs]
    seasons = [r for k, rs in lake.data.items() if tag in k and "/seasons-" in k for r in rs]
    changed = set(days.changed_ids(moving.config, "tv", 1)) & held
    assert changed and changed <= {r["id"] for r in again}
    pairs = Counter((r["series_id"], r["season_number"]) for r in seasons)
    assert max(pairs.values()) == 1
    assert set(pairs) == {(r["id"], n) for r in again for n in listed(r)}  # each one's seasons, again
    assert refreshed.summary.seasons is not None and refreshed.summary.seasons.records == len(seasons)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A harvest's back-off between retries, made negligible (these tests retry a lot)."""
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)
