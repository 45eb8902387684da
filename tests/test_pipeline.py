"""The real pipeline, end to end over real sockets: bundled TMDB stand-in -> harvester -> moto S3."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fixtures_s3 import open_uploads, s3_objects
from fixtures_tmdb import TOKEN
from harvest_helpers import (
    PREFIX,
    SAMPLE_MOVIES,
    distinct_ids,
    expected_movies,
    read_local_lake,
    read_s3_lake,
)

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import CredentialError, SinkError, SourceError
from harvester.runner import harvest
from harvester.tmdb import client as tmdb_client
from tmdb_standin import RunningStandin, kind_of, movie_ids, write_movies_csv
from tmdb_standin.csvgen import MOVIES_HEADER

CREDS = Credentials(access_token=Secret(TOKEN))
# <partition>/movies-<run tag: time and random id>-<writer token>-<commit number>
DATE_KEY = re.compile(r"^\d{4}/\d{2}/\d{2}/movies-[0-9TZ]+-[0-9a-f]{8}-w[0-9a-f]{6}-\d{6}\.json(l)?(\.gz)?$")


def settings_for(
    standin: RunningStandin, csv: Path, sink_url: str, endpoint: str = "", **tmdb: Any
) -> Settings:
    sink_fields = tmdb.pop("sink", {})
    source_fields = tmdb.pop("source", {})
    t = {"rate_limit": 1000.0, "concurrency": 8, "timeout_s": 5.0, **tmdb}
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, **t),
        source=SourceSettings(path=str(csv), **source_fields),
        sink=SinkSettings(url=sink_url, endpoint_url=endpoint, **sink_fields),
    )


@pytest.fixture
def movies_csv(tmp_path: Path) -> Path:
    path = tmp_path / "movies.csv"
    write_movies_csv(path, 250, seed=7)
    return path


async def test_harvest_to_s3_every_movie_exactly_once(
    standin: RunningStandin, s3_bucket: tuple[str, str], movies_csv: Path
) -> None:
    endpoint, bucket = s3_bucket
    ids = distinct_ids(movies_csv)
    expected = expected_movies(ids)
    assert {kind_of(i) for i in ids} >= {"movie", "tv", "unknown"}  # the fixture exercises every path

    settings = settings_for(standin, movies_csv, f"s3://{bucket}/{PREFIX}", endpoint)
    result = await harvest(settings, CREDS, progress=False)

    assert result.status == "complete"
    lake = await read_s3_lake(endpoint, bucket)
    counts = lake.record_ids()
    assert set(counts) == expected.found
    assert max(counts.values()) == 1  # exactly once
    assert lake.miss_reasons() == expected.misses
    for key, records in lake.data.items():
        assert DATE_KEY.match(key), key
        assert 1 <= len(records) <= 100
        # a record is TMDB's details body as returned, appended credits included
        assert "credits" in records[0] and "cast" in records[0]["credits"]  # type: ignore[operator]
    assert len(lake.data) == -(-len(expected.found) // 100)
    assert "_harvest/state-csv-movie.json" in lake.other
    assert any(k.endswith("summary.json") for k in lake.other)
    assert await open_uploads(endpoint, bucket) == []
    s = result.summary
    assert s.harvested == len(expected.found)
    assert sum(s.misses.values()) == len(expected.misses)
    assert s.failed == 0 and s.throttled == 0
    assert s.source.selected == len(ids)


async def test_configured_rate_is_never_exceeded_at_the_server(
    standin: RunningStandin, tmp_path: Path
) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 90, seed=3)
    standin.config.rate_limit = 40  # TMDB's strict sliding window
    standin.config.latency = (0.005, 0.02)
    settings = settings_for(standin, csv, str(tmp_path / "lake"), rate_limit=40.0, concurrency=20)
    result = await harvest(settings, CREDS, progress=False)
    assert result.status == "complete"
    assert standin.stats.rate_limited == 0
    assert standin.stats.max_window <= 40
    assert standin.stats.max_in_flight <= 20
    assert result.summary.throttled == 0


async def test_real_sample_csv_to_local_directory(standin: RunningStandin, tmp_path: Path) -> None:
    if not SAMPLE_MOVIES.exists():
        pytest.skip(f"shared sample not found at {SAMPLE_MOVIES}")
    lake_dir = tmp_path / "lake"
    settings = settings_for(standin, SAMPLE_MOVIES, str(lake_dir))
    result = await harvest(settings, CREDS, progress=False)
    ids = distinct_ids(SAMPLE_MOVIES)
    expected = expected_movies(ids)
    lake = read_local_lake(lake_dir)
    assert set(lake.record_ids()) == expected.found
    assert lake.miss_reasons() == expected.misses
    s = result.summary.source
    assert s.rows == 100 and s.selected == len(ids) and s.duplicates == 100 - len(ids)
    assert not list(lake_dir.rglob("*.harvest-tmp"))


async def test_filters_and_language_and_appends_reach_tmdb(standin: RunningStandin, tmp_path: Path) -> None:
    if not SAMPLE_MOVIES.exists():
        pytest.skip(f"shared sample not found at {SAMPLE_MOVIES}")
    lake_dir = tmp_path / "lake"
    settings = settings_for(
        standin,
        SAMPLE_MOVIES,
        str(lake_dir),
        language="pt-BR",
        append=("credits", "external_ids", "keywords"),
        source={"genres": ("Drama",)},
    )
    result = await harvest(settings, CREDS, progress=False)
    assert result.summary.source.filtered_out > 0
    lake = read_local_lake(lake_dir)
    records = [r for rs in lake.data.values() for r in rs]
    assert records
    for r in records:
        assert {"credits", "external_ids", "keywords"} <= set(r)
        assert "pt-BR" in str(r) or "pt" in str(r.get("spoken_languages", ""))


async def test_find_lookup_mode_costs_two_requests_per_movie(standin: RunningStandin, tmp_path: Path) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 40, seed=11)
    expected = expected_movies(distinct_ids(csv))
    settings = settings_for(standin, csv, str(tmp_path / "lake"), lookup="find")
    result = await harvest(settings, CREDS, progress=False)
    assert result.summary.harvested == len(expected.found)
    # one /authentication, then /find for every title and details for every movie found
    assert standin.stats.by_route["find"] == 40
    assert standin.stats.by_route["movie"] == len(expected.found)


async def test_direct_lookup_verifies_the_imdb_id(standin: RunningStandin, tmp_path: Path) -> None:
    # One movie of each kind the direct lookup can meet.
    by_kind: dict[str, str] = {}
    for i in movie_ids(3000, seed=5):
        by_kind.setdefault(kind_of(i), i)
    csv = tmp_path / "movies.csv"
    rows = [f"{i}|T|T|2000|90|Drama|7.0|100|actor|x|y|1950|\\N|actor|{i}" for i in by_kind.values()]
    csv.write_text("\n".join([MOVIES_HEADER, *rows]) + "\n")
    settings = settings_for(standin, csv, str(tmp_path / "lake"))
    await harvest(settings, CREDS, progress=False)
    lake = read_local_lake(tmp_path / "lake")
    got = lake.record_ids()
    # direct_wrong: /movie/tt... answered with another movie; the harvester noticed and used /find
    assert set(got) == {by_kind[k] for k in ("movie", "direct_404", "direct_wrong")}
    assert lake.miss_reasons() == {by_kind["tv"]: "tv", by_kind["unknown"]: "not_found"}


async def test_transient_faults_are_retried_and_exhausted_ones_recorded(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tmdb_client, "backoff_delay", lambda attempt, rng: 0.001)
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 30, seed=2)
    ids = [i for i in distinct_ids(csv) if kind_of(i) == "movie"]
    healed, doomed = ids[:6], ids[6]
    faults = ["500", "502", "503", "504", "truncate", "badjson"]
    for i, fault in zip(healed, faults, strict=True):
        standin.config.faults[f"/3/movie/{i}"] = [fault, fault]
    standin.config.faults[f"/3/movie/{doomed}"] = ["503"] * 10
    settings = settings_for(standin, csv, str(tmp_path / "lake"), max_retries=2, max_title_attempts=3)
    result = await harvest(settings, CREDS, progress=False)
    lake = read_local_lake(tmp_path / "lake")
    got = lake.record_ids()
    assert all(got[i] == 1 for i in healed)
    assert doomed not in got
    # A transient failure is never final in its first run: the title stays pending, the run incomplete.
    assert result.status == "incomplete" and not result.stopped
    assert result.summary.pending == 1 and result.summary.failed == 0
    assert result.summary.retries >= 12
    assert [o for o in lake.outcomes if o["outcome"] == "failed"] == []
    # The next runs take it first (one request each when it fails again: 3 attempts per run) ...
    second = await harvest(settings, CREDS, progress=False)
    assert second.status == "incomplete" and second.summary.pending == 1
    assert second.summary.requests == 1 + 3  # /authentication, then only the pending title
    # ... and in its third run the failure becomes final: listed in the outcomes and the summary.
    third = await harvest(settings, CREDS, progress=False)
    assert third.status == "complete"
    assert third.summary.failed == 1 and third.summary.final_failures == [doomed]
    failed = [o for o in read_local_lake(tmp_path / "lake").outcomes if o["outcome"] == "failed"]
    assert [(o["imdb_id"], o["reason"], o["attempts"]) for o in failed] == [
        (doomed, "http_503 after 3 attempts", 3)
    ]


async def test_429_pauses_every_worker_and_honours_retry_after(
    standin: RunningStandin, tmp_path: Path
) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 20, seed=4)
    first = next(i for i in distinct_ids(csv) if kind_of(i) == "movie")
    standin.config.faults[f"/3/movie/{first}"] = ["429"]
    standin.config.retry_after = 0.2
    settings = settings_for(standin, csv, str(tmp_path / "lake"))
    result = await harvest(settings, CREDS, progress=False)
    assert result.summary.throttled == 1
    assert result.summary.failed == 0
    assert read_local_lake(tmp_path / "lake").record_ids()[first] == 1


async def test_big_chunks_go_multipart_and_leave_no_upload_open(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 420, seed=9)
    expected = expected_movies(distinct_ids(csv))
    settings = settings_for(
        standin, csv, f"s3://{bucket}/{PREFIX}", endpoint, concurrency=16, sink={"chunk_size": 1000}
    )
    result = await harvest(settings, CREDS, progress=False)
    assert result.summary.bytes_written > 8 * 1024 * 1024  # one object, above the part size
    lake = await read_s3_lake(endpoint, bucket)
    assert len(lake.data) == 1
    assert set(lake.record_ids()) == expected.found
    assert await open_uploads(endpoint, bucket) == []


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
async def test_gzip_and_jsonl_output(standin: RunningStandin, tmp_path: Path, fmt: str) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 60, seed=8)
    expected = expected_movies(distinct_ids(csv))
    sink = {"format": fmt, "compression": "gzip", "chunk_size": 25}
    await harvest(settings_for(standin, csv, str(tmp_path / "lake"), sink=sink), CREDS, progress=False)
    lake = read_local_lake(tmp_path / "lake")
    assert all(k.endswith(f".{fmt}.gz") for k in lake.data)
    assert all(len(r) <= 25 for r in lake.data.values())
    assert set(lake.record_ids()) == expected.found


async def test_preflight_failures_write_nothing(
    standin: RunningStandin, s3_bucket: tuple[str, str], movies_csv: Path, tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    bad = Credentials(access_token=Secret("not-the-token"))
    with pytest.raises(CredentialError):
        await harvest(settings_for(standin, movies_csv, f"s3://{bucket}/a", endpoint), bad, progress=False)
    assert await s3_objects(endpoint, bucket, "") == {}  # the probe deleted, the lease released
    with pytest.raises(SinkError, match="does not exist"):
        await harvest(
            settings_for(standin, movies_csv, "s3://no-such-bucket/x", endpoint), CREDS, progress=False
        )
    with pytest.raises(SourceError):
        await harvest(
            settings_for(standin, tmp_path / "missing.csv", str(tmp_path / "b")), CREDS, progress=False
        )
    assert standin.stats.by_route["movie"] == 0
