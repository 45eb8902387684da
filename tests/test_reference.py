"""The reference tables (harvester/reference.py, lake/reference_table.py): every run writes TMDB's genres,
countries, languages and certifications once a day at most, beside the harvests, under the one rate
limiter; a failure is one warning line and the harvests' exit code stays theirs; readers join them.

The expected tables are the stand-in's own lists (tmdb_standin/reference.py, its genre lists), never
the harvester's; the lake is read as it is stored (S3 on moto's server, or a directory) and by DuckDB."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_s3 import SINK_PREFIX, s3_client, s3_objects
from fixtures_tmdb import TOKEN, standin_config
from test_query import duck, duck_type

from harvester import config
from harvester.config import Credentials, Deployment, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import ConfigError
from harvester.fleet import harvest_all
from harvester.lake.reference_table import REFERENCE_DIR, object_key, reference_specs
from harvester.lake.table import data_glob, deployment_ddl, table_spec
from harvester.verify import verify
from tmdb_standin import MOVIE_GENRES, TV_GENRES, RunningStandin, running_standin
from tmdb_standin.discover import discover_ids, discover_universe
from tmdb_standin.reference import COUNTRIES, LANGUAGES, MOVIE_CERTIFICATIONS, TV_CERTIFICATIONS

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
TABLES = ("genres", "countries", "languages", "certifications")
ROUTES = ("genre", "configuration", "certification")  # the stand-in's counters of the reference paths
DATES = {"date_from": "2023-01-01", "date_to": "2024-12-31"}  # a small listing: a few dozen movies


def expected_tables() -> dict[str, list[dict[str, Any]]]:
    """The four tables as the stand-in's lists make them: flattened, one record a row."""
    ratings = (("movie", MOVIE_CERTIFICATIONS), ("tv", TV_CERTIFICATIONS))
    return {
        "genres": [
            {"media": media, "id": gid, "name": name}
            for media, genres in (("movie", MOVIE_GENRES), ("tv", TV_GENRES))
            for gid, name in genres
        ],
        "countries": [{"iso_3166_1": c, "english_name": e, "native_name": n} for c, e, n in COUNTRIES],
        "languages": [{"iso_639_1": c, "english_name": e, "name": n} for c, e, n in LANGUAGES],
        "certifications": [
            {"media": media, "country": country, "certification": c, "meaning": m, "order": o}
            for media, table in ratings
            for country, rows in table.items()
            for c, m, o in rows
        ],
    }


def today() -> str:
    return f"{datetime.now(UTC).date():%Y/%m/%d}"


def reference_objects(objects: dict[str, bytes], prefix: str = "") -> dict[str, list[dict[str, Any]]]:
    """The day's reference objects of a listing of the lake, parsed, by table."""
    found = {}
    for key, body in objects.items():
        rel = key.removeprefix(f"{prefix}/") if prefix else key
        if rel.startswith(f"{REFERENCE_DIR}/"):
            table, day = rel.split("/")[1], "/".join(rel.split("/")[2:5])
            assert day == today() and rel.rsplit("/", 1)[1].startswith(f"{table}-{day.replace('/', '')}.")
            text = gzip.decompress(body) if rel.endswith(".gz") else body
            found[table] = [orjson.loads(line) for line in text.splitlines()]
    return found


def local_objects(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def reference_requests(standin: RunningStandin) -> dict[str, int]:
    return {route: standin.stats.by_route[route] for route in ROUTES}


@pytest.fixture
async def small() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config(discover_movies=3_000, discover_tv=500)) as running:
        yield running


# ---------------------------------------------------------------------------------------------
# A run, and the second of the day


async def test_a_run_writes_the_four_tables_and_a_second_run_that_day_asks_and_writes_nothing(
    small: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url, "rate_limit": 300, "concurrency": 8},
        sink={
            "url": f"s3://{bucket}/{SINK_PREFIX}",
            "endpoint_url": endpoint,
            "format": "jsonl",
            "compression": "gzip",
        },
        harvest=[{"name": "june", "source": {"type": "discover", "details": False, **DATES}}],
    )
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    objects = await s3_objects(endpoint, bucket, SINK_PREFIX)
    assert reference_objects(objects, SINK_PREFIX) == expected_tables()  # all four, each as TMDB sent it
    assert reference_requests(small) == {"genre": 2, "configuration": 2, "certification": 2}
    assert (
        f"reference tables of {today().replace('/', '-')}: genres 35 rows; countries 42 rows" in done.stdout
    )
    assert "WARNING" not in done.stderr, done.stderr

    # The same day again: today's objects are there, so nothing is asked and nothing written (a marker
    # put in place of one of them stays as it is).
    genres = object_key("genres", datetime.now(UTC).date(), SinkSettings(format="jsonl", compression="gzip"))
    async with s3_client(endpoint) as s3:
        await s3.put_object(Bucket=bucket, Key=f"{SINK_PREFIX}/{genres}", Body=b"marker")
    small.server.reset_stats()
    again = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert again.code == 0, again.output
    assert reference_requests(small) == {"genre": 0, "configuration": 0, "certification": 0}
    after = await s3_objects(endpoint, bucket, SINK_PREFIX)
    assert after[f"{SINK_PREFIX}/{genres}"] == b"marker"
    assert {k: v for k, v in after.items() if "genres" not in k} == {
        k: v for k, v in objects.items() if "genres" not in k
    }
    assert "genres, countries, languages, certifications already there (0 requests)" in again.stdout


async def test_a_config_of_one_harvest_writes_them_too(small: RunningStandin, tmp_path: Path) -> None:
    """The CLI's one-harvest path (fleet.harvest_one) takes them beside its harvest, once a day."""
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url, "rate_limit": 300, "concurrency": 8},
        source={"type": "discover", "details": False, **DATES},
        sink={"url": str(tmp_path / "lake"), "format": "jsonl"},
    )
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    assert reference_objects(local_objects(tmp_path / "lake")) == expected_tables()
    assert reference_requests(small) == {"genre": 2, "configuration": 2, "certification": 2}
    small.server.reset_stats()
    again = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert again.code == 0, again.output
    assert reference_requests(small) == {"genre": 0, "configuration": 0, "certification": 0}


async def test_a_failed_reference_endpoint_is_one_warning_and_the_next_run_takes_that_table_alone(
    small: RunningStandin, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url, "rate_limit": 300, "concurrency": 8, "max_retries": 1},
        sink={"url": str(lake), "format": "jsonl"},
        harvest=[{"name": "june", "source": {"type": "discover", "details": False, **DATES}}],
    )
    small.config.faults = {"/3/configuration/countries": ["503", "503"]}  # the request and its one retry
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output  # the harvest's own exit code
    assert "status           complete" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "reference tables" in warnings[0], done.stderr
    assert "countries: http_503 after 2 attempts" in warnings[0] and "the next run tries again" in warnings[0]
    written = reference_objects(local_objects(lake))
    assert set(written) == {"genres", "languages", "certifications"}
    assert written == {t: rows for t, rows in expected_tables().items() if t != "countries"}

    small.server.reset_stats()
    again = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert again.code == 0 and "WARNING" not in again.stderr, again.output
    assert reference_requests(small) == {"genre": 0, "configuration": 1, "certification": 0}
    assert reference_objects(local_objects(lake)) == expected_tables()


async def test_check_counts_the_requests_a_run_would_make_for_them_today(
    small: RunningStandin, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "c.toml",
        tmdb={"base_url": small.base_url, "rate_limit": 300, "concurrency": 8},
        sink={"url": str(tmp_path / "lake"), "format": "jsonl"},
        harvest=[{"name": "june", "source": {"type": "discover", "details": False, **DATES}}],
    )
    before = await run_cli("check", str(cfg), env=cli_env(token=TOKEN))
    assert before.code == 0, before.output
    assert "reference   6 requests today (genres, countries, languages, certifications; once a day)" in (
        before.stdout
    )
    assert reference_requests(small) == {"genre": 0, "configuration": 0, "certification": 0}  # counted only
    assert (await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))).code == 0
    after = await run_cli("check", str(cfg), env=cli_env(token=TOKEN))
    assert "reference   none: today's reference tables are written" in after.stdout, after.output


# ---------------------------------------------------------------------------------------------
# Where they are, and reading them


def root_harvest(standin: RunningStandin, lake: Path) -> Settings:
    """An unnamed harvest whose table folder is the sink's root (the default partition)."""
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16),
        source=SourceSettings(type="discover", details=False, **DATES),
        sink=SinkSettings(url=str(lake), format="jsonl", partition="{yyyy}/{mm}/{dd}"),
    )


async def test_readers_join_genre_ids_to_names_and_the_harvests_table_reads_none_of_it(
    small: RunningStandin, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    settings = root_harvest(small, lake)
    deployment = Deployment((settings,))
    fleet = await harvest_all(deployment, CREDS, progress=False)
    assert fleet.exit_code == 0 and fleet.reference is not None
    assert [w.table for w in fleet.reference.written] == list(TABLES)
    # The sink's root is the harvest's table folder, and the reference tables do not join it: the audit
    # (which takes every object under a table folder but hidden ones as the table's) finds nothing.
    report = await verify(settings)
    assert report.clean, report.findings
    listed = set(discover_ids("movie", small.config, date_gte=DATES["date_from"], date_lte=DATES["date_to"]))
    expected = {
        t.tmdb_id: t.genre_ids for t in discover_universe("movie", small.config) if t.tmdb_id in listed
    }
    names = dict(MOVIE_GENRES)
    assert len(expected) >= 20 and sum(len(g) for g in expected.values()) >= 40  # a join worth the name
    specs = {spec.object_name: spec for spec in reference_specs(deployment)[0]}
    with duck() as con:
        movies = data_glob(table_spec(settings))
        con.execute(
            f"CREATE VIEW movies AS SELECT * FROM read_json('{movies}', format = 'newline_delimited')"
        )
        genres = specs["genres"]
        declared = ", ".join(f"'{name}': '{duck_type(kind)}'" for name, kind in genres.columns)
        con.execute(
            f"CREATE VIEW genres AS SELECT * FROM read_json('{data_glob(genres)}', "
            f"format = 'newline_delimited', columns = {{{declared}}})"
        )
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM movies").fetchone() == (
            len(expected),
            len(expected),
        )  # the movies' glob reads the movies alone
        joined = con.execute(
            "SELECT m.id, list(g.name ORDER BY g.name) FROM movies m, unnest(m.genre_ids) AS t(gid) "
            "LEFT JOIN genres g ON g.id = t.gid AND g.media = 'movie' GROUP BY m.id"
        ).fetchall()
    assert {mid: sorted(got) for mid, got in joined} == {
        mid: sorted(names[g] for g in gids) for mid, gids in expected.items() if gids
    }


async def test_a_stop_cuts_a_hung_reference_request_short_and_nothing_is_written(
    small: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    settings = msgspec.structs.replace(
        root_harvest(small, lake),
        tmdb=TmdbSettings(base_url=small.base_url, rate_limit=5000.0, timeout_s=3600),
    )
    stop = asyncio.Event()
    served = small.server._fault

    async def hang_then_stop(request: Any, fault: str) -> Any:
        stop.set()  # the signal arrives while TMDB holds the genre list's request
        return await served(request, fault)

    monkeypatch.setattr(small.server, "_fault", hang_then_stop)
    small.config.faults = {"/3/genre/movie/list": ["timeout"]}
    async with asyncio.timeout(120):  # a guard against a hang, not a measure: it ends at once
        fleet = await harvest_all(Deployment((settings,)), CREDS, stop=stop, progress=False)
    assert fleet.reference is not None and fleet.reference.written == ()
    assert dict(fleet.reference.failed) == dict.fromkeys(TABLES, "stopped before it was written")
    assert not (lake / REFERENCE_DIR).exists()
    assert small.stats.faults == {"timeout": 1} and small.stats.by_route["configuration"] == 0


def test_the_ddl_has_the_four_tables_projected_a_day_each_under_the_reference_folder() -> None:
    url = "s3://my-bucket/Raw/TMDB/JSON"
    text, problems = deployment_ddl(config.deployment_from_mapping({"sink": {"url": url, "format": "jsonl"}}))
    assert problems == []
    for table in TABLES:
        assert f"CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_reference_{table} (" in text
        assert f"LOCATION '{url}/_reference/{table}/'" in text
        assert f"'storage.location.template' = '{url}/_reference/{table}/${{dt}}/'" in text
    assert text.count("'projection.dt.format' = 'yyyy/MM/dd'") == 1 + len(TABLES)
    assert "`order` int" in text and "`native_name` string" in text
    # JSON arrays: the harvests' refusal, and the reference tables' own line.
    arrays = config.deployment_from_mapping(
        {"sink": {"url": url}, "harvest": [{"name": "a"}, {"name": "b", "sink": {"format": "jsonl"}}]}
    )
    text, problems = deployment_ddl(arrays)
    assert "tmdb_reference_" not in text and problems[-1].startswith("reference tables: Athena cannot read")
    # A list's [sink] decides, whatever its first harvest writes.
    lines = config.deployment_from_mapping(
        {
            "sink": {"url": url, "format": "jsonl"},
            "harvest": [{"name": "a", "sink": {"format": "json"}}, {"name": "b"}],
        }
    )
    text, problems = deployment_ddl(lines)
    assert text.count("CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_reference_") == len(TABLES)
    assert not any(p.startswith("reference tables") for p in problems)


@pytest.mark.parametrize("name", ["reference-genres", "reference_countries", "reference-certifications"])
def test_a_harvest_name_that_gives_a_reference_tables_name_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"gives the Athena table tmdb_{name.replace('-', '_')}"):
        config.deployment_from_mapping({"harvest": [{"name": name}]})
    with pytest.raises(ConfigError, match="the name of a reference table"):
        config.deployment_from_mapping({"name": name})
    assert (
        config.deployment_from_mapping({"harvest": [{"name": "reference"}]}).harvests[0].name == "reference"
    )
