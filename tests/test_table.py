"""`harvester table`: the Athena DDL of a harvest's table (lake/table.py, lake/columns.py), and the command.

What the DDL does when run is proven in tests/test_query.py (DuckDB runs its view over real harvests);
here: the lines Athena needs, for each partition template a config allows, and the refusals.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cli_helpers import cli_env, run_cli, write_config

from harvester.config import (
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
    deployment_from_mapping,
)
from harvester.errors import ConfigError
from harvester.lake.columns import columns
from harvester.lake.table import FIRST_DAY, athena_problem, ddl, deployment_ddl, projection, table_spec

SHIPPED = Path(__file__).resolve().parents[1] / "config.toml"
S3 = "s3://my-lake/Raw/TMDB/JSON"


def shipped(**sink: Any) -> dict[str, Any]:
    """The shipped config.toml with these [sink] keys changed."""
    doc = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    doc["sink"].update(sink)
    return doc


def jsonl(partition: str = "{yyyy}/{mm}/{dd}", **source: Any) -> Settings:
    return Settings(
        source=SourceSettings(**source),
        sink=SinkSettings(url=S3, format="jsonl", partition=partition),
    )


def test_the_shipped_config_with_json_lines_gets_a_projected_table_and_its_view() -> None:
    text, problems = deployment_ddl(deployment_from_mapping(shipped(format="jsonl")))
    assert problems == []
    lines = {line.strip().rstrip(",;") for line in text.splitlines()}
    for golden in (
        "CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_movies (",
        "PARTITIONED BY (`dt` string)",
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'",
        "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'false')",
        "LOCATION 's3://my-bucket/Raw/TMDB/JSON/'",
        "'projection.enabled' = 'true'",
        "'projection.dt.type' = 'date'",
        "'projection.dt.format' = 'yyyy/MM/dd'",
        f"'projection.dt.range' = '{FIRST_DAY:%Y/%m/%d},NOW'",
        "'projection.dt.interval.unit' = 'DAYS'",
        "'storage.location.template' = 's3://my-bucket/Raw/TMDB/JSON/${dt}/'",
        "CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_movies_outcomes (",
        "LOCATION 's3://my-bucket/Raw/TMDB/JSON/_harvest/'",
        "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')",
        "CREATE OR REPLACE VIEW tmdb_movies_latest AS",
    ):
        assert golden in lines, golden
    # The columns analysts use, credits (the shipped config appends it) with cast and crew as structs.
    for column in ("`id` bigint", "`imdb_id` string", "`release_date` string", "`revenue` bigint"):
        assert column in lines
    assert "`genres` array<struct<`id`:int,`name`:string>>" in lines
    credits = next(line for line in lines if line.startswith("`credits`"))
    assert "`cast`:array<struct<" in credits and "`crew`:array<struct<" in credits
    assert "`character`:string" in credits and "`order`:int" in credits and "`job`:string" in credits
    assert text.count(";") == 3 + 4  # three statements and the reference tables', Athena runs one at a time


def test_a_json_arrays_harvest_is_told_to_use_json_lines() -> None:
    with pytest.raises(ConfigError, match=r'format = "jsonl"') as caught:
        deployment_ddl(deployment_from_mapping(shipped()))  # the shipped config writes JSON arrays
    assert "one record per line" in str(caught.value) and "\n" not in str(caught.value)


def test_a_local_sink_gets_its_ddl_and_a_line_saying_athena_reads_s3() -> None:
    text, lines = deployment_ddl(deployment_from_mapping({"sink": {"url": "/data/lake", "format": "jsonl"}}))
    assert "LOCATION '/data/lake/'" in text and "CREATE OR REPLACE VIEW tmdb_movies_latest AS" in text
    assert len(lines) == 1 and "local directory: Athena reads tables on S3 only" in lines[0]


def test_a_list_gets_a_table_per_harvest_folder_and_a_line_for_the_one_athena_cannot_read() -> None:
    doc = {
        "sink": {"url": S3, "format": "jsonl"},
        "harvest": [
            {"name": "movies", "source": {"type": "csv", "path": "movies.csv"}},
            {"name": "tv-shows", "source": {"type": "series_csv", "path": "series.csv"}},
            {"name": "old", "source": {"type": "ids", "ids": ["550"]}, "sink": {"format": "json"}},
        ],
    }
    text, problems = deployment_ddl(deployment_from_mapping(doc))
    assert "-- == harvest movies" in text and "-- == harvest tv-shows" in text and "harvest old" not in text
    assert f"LOCATION '{S3}/movies/'" in text
    assert f"'storage.location.template' = '{S3}/movies/${{dt}}/'" in text
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_tv_shows (" in text
    assert f"'storage.location.template' = '{S3}/tv-shows/${{dt}}/'" in text
    series = text[text.index("tmdb_tv_shows (") :]
    assert "`name` string" in series and "`first_air_date` string" in series
    assert "/series-([0-9]{8}T[0-9]{6}Z-[0-9a-f]+)-" in series  # the view reads series keys
    assert problems == ['harvest "old": Athena cannot read this harvest: ' + athena_problem_of_json()]


def athena_problem_of_json() -> str:
    problem = athena_problem(Settings(sink=SinkSettings(url=S3, format="json")))
    assert problem is not None
    return problem


@pytest.mark.parametrize(
    ("partition", "location", "fmt", "unit", "start", "template"),
    [
        ("{yyyy}/{mm}", "", "yyyy/MM", "MONTHS", "2027/03", "${dt}/"),
        ("{yyyy}", "", "yyyy", "YEARS", "2027", "${dt}/"),
        ("{media}/{yyyy}/{mm}/{dd}", "movies/", "yyyy/MM/dd", "DAYS", "2027/03/09", "movies/${dt}/"),
        ("{yyyy}/{mm}/{dd}/{media}", "", "yyyy/MM/dd", "DAYS", "2027/03/09", "${dt}/movies/"),
        ("tmdb/{yyyy}-{mm}-{dd}", "tmdb/", "yyyy-MM-dd", "DAYS", "2027-03-09", "tmdb/${dt}/"),
        (
            "year={yyyy}/month={mm}/day={dd}",
            "",
            "'year='yyyy'/month='MM'/day='dd",
            "DAYS",
            "year=2027/month=03/day=09",
            "${dt}/",
        ),
    ],
)
def test_each_partition_template_projects_onto_the_keys_the_harvester_writes(
    partition: str, location: str, fmt: str, unit: str, start: str, template: str
) -> None:
    spec = table_spec(jsonl(partition), since=date(2027, 3, 9))
    p = spec.projection
    assert p is not None and (p.format, p.unit, p.start) == (fmt, unit, start)
    assert spec.location == f"{S3}/{location}"
    text = ddl(spec)
    assert f"'storage.location.template' = '{S3}/{template}'" in text
    quoted = fmt.replace("'", "''")  # as a SQL string literal
    assert f"'projection.dt.format' = '{quoted}'" in text
    # The key the harvester writes on the first day of the range is the template with dt = start.
    key_folder = partition.format(yyyy="2027", mm="03", dd="09", media="movies") + "/"
    assert f"{S3}/{template}".replace("${dt}", start) == f"{S3}/{key_folder}"


def test_a_template_without_a_date_is_a_table_without_partitions() -> None:
    text = ddl(table_spec(jsonl("{media}")))
    assert f"LOCATION '{S3}/movies/';" in text
    assert "PARTITIONED BY" not in text and "projection" not in text
    assert ", r.dt" not in text  # the view has no partition column to show


@pytest.mark.parametrize("partition", ["{dd}/{mm}/{yyyy}", "{mm}/{dd}", "{yyyy}/{dd}", "{yyyy}/{mm}/{mm}"])
def test_a_date_part_out_of_order_is_refused_in_one_line(partition: str) -> None:
    with pytest.raises(ConfigError, match="year, then month, then day"):
        projection(partition, "movies", FIRST_DAY)
    doc = {"sink": {"url": S3, "format": "jsonl", "partition": partition}}
    with pytest.raises(ConfigError, match=r"Athena cannot read this harvest: sink\.partition"):
        deployment_ddl(deployment_from_mapping(doc))  # the same refusal, as `harvester table` says it


def test_the_columns_follow_what_the_harvest_stores() -> None:
    names = [n for n, _ in columns(jsonl())]
    assert {"id", "imdb_id", "title", "release_date", "genres", "popularity", "vote_average"} <= set(names)
    assert {"vote_count", "budget", "revenue", "runtime", "original_language", "credits"} <= set(names)
    bare = Settings(tmdb=TmdbSettings(append=()), sink=SinkSettings(url=S3, format="jsonl"))
    assert "credits" not in [n for n, _ in columns(bare)]
    tv = dict(columns(jsonl(type="ids", media="tv")))
    assert "name" in tv and "first_air_date" in tv and "budget" not in tv and "title" not in tv
    listing = dict(columns(jsonl(type="discover", details=False)))
    assert listing["genre_ids"] == "array<int>" and "genres" not in listing and "credits" not in listing


# ---------------------------------------------------------------------------------------------
# The command


async def test_table_prints_the_ddl_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps(shipped(format="jsonl", compression="gzip")), encoding="utf-8")
    done = await run_cli("table", str(config), env=cli_env())
    assert done.code == 0, done.output
    assert "'projection.enabled' = 'true'" in done.stdout
    assert "'storage.location.template' = 's3://my-bucket/Raw/TMDB/JSON/${dt}/'" in done.stdout
    assert "-- the data objects (movies-*.jsonl.gz)" in done.stdout and done.stderr == ""


async def test_table_on_a_json_arrays_config_says_to_use_json_lines_and_exits_2(tmp_path: Path) -> None:
    done = await run_cli("table", str(SHIPPED), env=cli_env())
    assert done.code == 2 and done.stdout == ""
    assert done.stderr.startswith("harvester: error: Athena cannot read this harvest: it writes JSON arrays")
    assert 'set format = "jsonl"' in done.stderr and done.stderr.count("\n") == 1


async def test_table_on_a_list_prints_what_athena_can_read_and_a_line_for_the_rest(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.toml",
        sink={"url": S3, "format": "jsonl"},
        harvest=[
            {"name": "arrays", "source": {"type": "ids", "ids": ["550"]}, "sink": {"format": "json"}},
            {"name": "lines", "source": {"type": "ids", "ids": ["551"]}},
        ],
    )
    done = await run_cli("table", str(config), "--since", "2027-01-31", env=cli_env())
    assert done.code == 0, done.output
    assert "-- == harvest lines" in done.stdout and "harvest arrays" not in done.stdout
    assert "'projection.dt.range' = '2027/01/31,NOW'" in done.stdout
    assert done.stderr == 'harvester: harvest "arrays": Athena cannot read this harvest: ' + (
        athena_problem_of_json() + "\n"
    )
    only = await run_cli("table", str(config), "--only", "lines", env=cli_env())
    assert only.code == 0 and only.stderr == "" and "-- == harvest lines" in only.stdout
    bad = await run_cli("table", str(config), "--since", "31/01/2027", env=cli_env())
    assert bad.code == 2 and "--since must be a date YYYY-MM-DD" in bad.stderr
