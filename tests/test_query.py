"""The lake read by a real query engine: DuckDB over what the harvester wrote, on a local sink and on
moto's S3 (DuckDB's httpfs, from the duckdb-extension-httpfs package: nothing is downloaded).

The answers are computed from the stand-in's catalogue (tmdb_standin's discover universe, templates and
bodies), never from the harvester. The Athena side is proven by running `harvester table`'s own SQL in
DuckDB: relations named like the Athena tables, with the columns the DDL declares (so a declared type
that TMDB's bodies do not fit fails the read) and a `"$path"` column as Athena has; the view's text runs
as printed. The queries below are the README's ("Querying the lake").
"""

from __future__ import annotations

import importlib.util
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import orjson
import pytest
from fixtures_s3 import SINK_PREFIX
from fixtures_tmdb import TOKEN, standin_config

from harvester.config import (
    Compression,
    Credentials,
    OutputFormat,
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
)
from harvester.lake.columns import OUTCOMES, Column
from harvester.lake.table import TableSpec, create_view, data_glob, table_properties, table_spec
from harvester.runner import harvest
from tmdb_standin import RunningStandin, StandinConfig, days, details_body, running_standin
from tmdb_standin.discover import discover_ids, discover_universe
from tmdb_standin.templates import template_bodies, template_index

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
SINCE = "1900-01-01"  # the discover query: every movie of the universe with a date

# The README's queries. Athena runs them over the view; DuckDB over a view of the files (a lake that
# was never refreshed) or over the same view built from `harvester table`'s SQL.
TOP_REVENUES = """
SELECT decade, id, title, release_date, revenue FROM (
  SELECT id, title, release_date, revenue,
    CAST(substr(CAST(release_date AS varchar), 1, 3) AS integer) * 10 AS decade,
    row_number() OVER (
      PARTITION BY substr(CAST(release_date AS varchar), 1, 3) ORDER BY revenue DESC, id
    ) AS place
  FROM {table}
  WHERE revenue > 0 AND CAST(release_date AS varchar) <> ''
) AS ranked
WHERE place <= 5
ORDER BY decade, place
"""
MOST_POPULAR = """
SELECT id, title, release_date, popularity
FROM {table}
WHERE CAST(release_date AS varchar) BETWEEN '2000-01-01' AND '2022-12-31'
ORDER BY popularity DESC, id
LIMIT 10
"""
# DuckDB on a laptop: JSON Lines or arrays, plain or gzip, DuckDB's own schema detection.
LAPTOP_VIEW = "CREATE VIEW movies AS SELECT * FROM read_json('{lake}*/*/*/movies-*.json*')"
# A refreshed lake on a laptop: the two relations `harvester table`'s view reads, then that view as is.
LAPTOP_LATEST = (
    """CREATE VIEW {table} AS SELECT * EXCLUDE (filename), filename AS "$path",
  regexp_extract(filename, '([0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}})/[^/]*$', 1) AS dt
FROM read_json('{lake}*/*/*/movies-*.jsonl*', filename = true)""",
    """CREATE VIEW {table}_outcomes AS SELECT *, filename AS "$path"
FROM read_json('{root}/_harvest/*/outcomes-*.jsonl', filename = true)""",
)


# Before any outcome object exists: what the view reads of the outcomes, empty.
NO_OUTCOMES = """CREATE VIEW {table}_outcomes AS
SELECT CAST(NULL AS BIGINT) AS tmdb_id, CAST(NULL AS VARCHAR) AS outcome, '' AS "$path" LIMIT 0"""


class Title(NamedTuple):
    id: int
    imdb_id: str
    date: str
    popularity: float
    revenue: int


def catalogue(config: StandinConfig) -> list[Title]:
    """The movies the discover harvest selects, with their facts as the stand-in's catalogue holds them."""
    selected = set(discover_ids("movie", config, date_gte=SINCE))
    return [
        Title(t.tmdb_id, t.imdb_id, t.date, t.popularity, revenue_of(t.imdb_id))
        for t in discover_universe("movie", config)
        if t.tmdb_id in selected
    ]


def revenue_of(imdb_id: str) -> int:
    return template_bodies("movie", template_index("movie", imdb_id)).facts.revenue


def title_of(imdb_id: str) -> str:
    return str(orjson.loads(details_body("movie", imdb_id))["title"])


def expected_top_revenues(titles: list[Title]) -> list[tuple[Any, ...]]:
    by_decade: dict[int, list[Title]] = defaultdict(list)
    for t in titles:
        if t.revenue > 0 and t.date:
            by_decade[int(t.date[:3]) * 10].append(t)
    return [
        (decade, t.id, title_of(t.imdb_id), t.date, t.revenue)
        for decade in sorted(by_decade)
        for t in sorted(by_decade[decade], key=lambda t: (-t.revenue, t.id))[:5]
    ]


def expected_most_popular(titles: list[Title]) -> list[tuple[Any, ...]]:
    window = [t for t in titles if "2000-01-01" <= t.date <= "2022-12-31"]
    best = sorted(window, key=lambda t: (-t.popularity, t.id))[:10]
    return [(t.id, title_of(t.imdb_id), t.date, t.popularity) for t in best]


# ---------------------------------------------------------------------------------------------
# DuckDB: a connection (httpfs on moto's S3), and the Athena tables as DuckDB relations


def httpfs_extension() -> str:
    """The httpfs build the duckdb-extension-httpfs package ships for this DuckDB (no download)."""
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]'"
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(folder / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension")


@contextmanager
def duck(endpoint: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        if endpoint:
            con.execute(f"LOAD '{httpfs_extension()}'")
            host = endpoint.removeprefix("http://")
            con.execute(
                "CREATE SECRET moto (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1', "
                f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
            )
        yield con
    finally:
        con.close()


def duck_type(hive: str) -> str:
    """A Hive/Glue type as DuckDB spells it: array<struct<id:int>> -> STRUCT("id" INTEGER)[]."""
    kind, rest = _parse_type(hive)
    assert not rest, hive
    return kind


_SCALARS = {
    "bigint": "BIGINT",
    "int": "INTEGER",
    "string": "VARCHAR",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
}


def _parse_type(text: str) -> tuple[str, str]:
    if text.startswith("array<"):
        inner, rest = _parse_type(text[len("array<") :])
        assert rest.startswith(">"), text
        return f"{inner}[]", rest[1:]
    if text.startswith("struct<"):
        rest, fields = text[len("struct<") :], []
        while True:
            name, rest = rest.split(":", 1)
            kind, rest = _parse_type(rest)
            fields.append(f'"{name}" {kind}')
            if rest.startswith(">"):
                return f"STRUCT({', '.join(fields)})", rest[1:]
            assert rest.startswith(","), text
            rest = rest[1:]
    m = re.match(r"[a-z]+", text)
    assert m, text
    return _SCALARS[m.group()], text[m.end() :]


def _columns(cols: tuple[Column, ...]) -> str:
    return "{" + ", ".join(f"'{name}': '{duck_type(kind)}'" for name, kind in cols) + "}"


def athena_tables(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """The two tables `harvester table` creates, as DuckDB relations: the declared columns, `"$path"`,
    the `dt` partition (the default template's three date folders), then the view's SQL as printed."""
    con.execute(
        f'CREATE VIEW {spec.name} AS SELECT * EXCLUDE (filename), filename AS "$path", '
        "regexp_extract(filename, '([0-9]{4}/[0-9]{2}/[0-9]{2})/[^/]*$', 1) AS dt "
        f"FROM read_json('{data_glob(spec)}', format = 'newline_delimited', "
        f"columns = {_columns(spec.columns)}, filename = true)"
    )
    outcomes = f"{spec.harvest_dir}*/outcomes-*.jsonl"
    if con.execute(f"SELECT count(*) FROM glob('{outcomes}')").fetchone() == (0,):
        # No harvest of the prefix recorded an outcome yet (read_json refuses an empty glob).
        con.execute(NO_OUTCOMES.format(table=spec.name))
    else:
        con.execute(
            f'CREATE VIEW {spec.outcomes_table} AS SELECT * EXCLUDE (filename), filename AS "$path" '
            f"FROM read_json('{outcomes}', format = 'newline_delimited', columns = {_columns(OUTCOMES)}, "
            "filename = true)"
        )
    con.execute(create_view(spec))


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return [
        tuple(str(v) if k == "release_date" else v for k, v in zip(_names(con), r, strict=True))
        for r in con.execute(sql).fetchall()
    ]


def _names(con: duckdb.DuckDBPyConnection) -> list[str]:
    assert con.description is not None
    return [d[0] for d in con.description]


# ---------------------------------------------------------------------------------------------
# Harvests of the stand-in


@pytest.fixture
async def catalogue_standin() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config(discover_movies=900, discover_tv=50)) as running:
        yield running


def settings(
    standin: RunningStandin,
    url: str,
    compression: Compression,
    endpoint: str = "",
    name: str = "",
    partition: str = "{yyyy}/{mm}/{dd}",
    fmt: OutputFormat = "jsonl",
) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16),
        source=SourceSettings(type="discover", date_from=SINCE),
        sink=SinkSettings(
            url=url, endpoint_url=endpoint, format=fmt, compression=compression, partition=partition
        ),
        name=name,
    )


def sink_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(sink url, endpoint): a local directory, or a prefix in a fresh bucket on moto's server."""
    if kind == "s3":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        return f"s3://{bucket}/{SINK_PREFIX}", endpoint
    return str(tmp_path / "lake"), ""


@pytest.mark.parametrize("kind", ["local", "s3"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_the_seeds_questions_as_the_catalogue_answers_them(
    catalogue_standin: RunningStandin,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    kind: str,
    compression: Compression,
) -> None:
    url, endpoint = sink_url(kind, tmp_path, request)
    s = settings(catalogue_standin, url, compression, endpoint)
    result = await harvest(s, CREDS, progress=False)
    assert result.status == "complete"
    titles = catalogue(catalogue_standin.config)
    top, popular = expected_top_revenues(titles), expected_most_popular(titles)
    assert len({row[0] for row in top}) >= 8 and len(popular) == 10  # several decades, a full list

    spec = table_spec(s)
    with duck(endpoint) as con:
        athena_tables(con, spec)
        assert rows(con, TOP_REVENUES.format(table=spec.latest_view)) == top
        assert rows(con, MOST_POPULAR.format(table=spec.latest_view)) == popular
        # The whole table, once each, in the folder partition projection points at for the run's day.
        day = datetime.strptime(result.summary.run[:8], "%Y%m%d").strftime("%Y/%m/%d")
        folder = table_properties(spec)["storage.location.template"].replace("${dt}", day)
        paths = con.execute(f'SELECT DISTINCT "$path" FROM {spec.name}').fetchall()
        assert paths and all(p.startswith(folder) for (p,) in paths), (folder, paths[:3])
        assert con.execute(f"SELECT count(*), count(DISTINCT id) FROM {spec.latest_view}").fetchone() == (
            len(titles),
            len(titles),
        )
        # The README's laptop lines: DuckDB's own schema detection over the same objects.
        con.execute(LAPTOP_VIEW.format(lake=spec.location))
        assert rows(con, TOP_REVENUES.format(table="movies")) == top
        assert rows(con, MOST_POPULAR.format(table="movies")) == popular


async def test_duckdb_reads_json_arrays_as_well(catalogue_standin: RunningStandin, tmp_path: Path) -> None:
    """Athena cannot read `format = "json"` (one array per object); DuckDB's read_json can."""
    s = settings(catalogue_standin, str(tmp_path / "lake"), "gzip", fmt="json")
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    titles = catalogue(catalogue_standin.config)
    with duck() as con:
        con.execute(LAPTOP_VIEW.format(lake=table_spec(s).location))
        assert rows(con, TOP_REVENUES.format(table="movies")) == expected_top_revenues(titles)
        assert rows(con, MOST_POPULAR.format(table="movies")) == expected_most_popular(titles)


# ---------------------------------------------------------------------------------------------
# A refreshed lake: the latest record of each id, without the removed ones


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    """A stand-in whose catalogue changes 3% of its movies a day (1% go), and whose day 1 is today."""
    today = datetime.now(UTC).date()
    config = standin_config(
        discover_movies=600,
        discover_tv=50,
        base_date=today - timedelta(days=1),
        changed_share=0.03,
        new_share=0.01,
        gone_share=0.01,
        hour=12.0,
    )
    async with running_standin(config) as running:
        yield running


@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_the_view_keeps_the_newest_record_of_each_title_and_drops_the_removed(
    moving: RunningStandin, tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """Two harvests of the same movies share the prefix; only "b" is refreshed. Its view shows the day's
    revisions and drops the titles that went; "a", which recorded nothing, keeps them all."""
    url, endpoint = sink_url(kind, tmp_path, request)
    a = settings(moving, url, "gzip", endpoint, name="a", partition="a/{yyyy}/{mm}/{dd}")
    b = settings(moving, url, "gzip", endpoint, name="b", partition="b/{yyyy}/{mm}/{dd}")
    for s in (a, b):
        assert (await harvest(s, CREDS, progress=False)).status == "complete"
    selection = set(discover_ids("movie", moving.config, date_gte=SINCE))
    moving.config.day = 1
    assert (await harvest(b, CREDS, mode="refresh", progress=False)).status == "complete"
    changed = set(days.changed_ids(moving.config, "movie", 1)) & selection
    gone = set(days.gone_ids(moving.config, "movie", 1)) & selection
    entered = set(discover_ids("movie", moving.config, date_gte=SINCE)) - selection
    assert changed - gone and gone and entered  # the day did all three to the harvest

    spec_a, spec_b = table_spec(a), table_spec(b)
    with duck(endpoint) as con:
        athena_tables(con, spec_a)
        athena_tables(con, spec_b)
        removed = {
            i
            for (i,) in con.execute(
                f"SELECT tmdb_id FROM {spec_b.outcomes_table} WHERE outcome = 'removed'"
            ).fetchall()
        }
        assert removed == gone
        raw = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {spec_b.name}").fetchone()
        assert raw is not None and raw[0] > raw[1]  # the refresh wrote changed titles again

        latest = dict(con.execute(f"SELECT id, overview FROM {spec_b.latest_view}").fetchall())
        assert con.execute(f"SELECT count(*) FROM {spec_b.latest_view}").fetchone() == (len(latest),)
        assert set(latest) == (selection - gone) | entered
        revised = {i for i, overview in latest.items() if overview.endswith("[revision 1]")}
        assert changed - gone <= revised == set(latest) & set(days.changed_ids(moving.config, "movie", 1))

        kept = dict(con.execute(f"SELECT id, overview FROM {spec_a.latest_view}").fetchall())
        assert set(kept) == selection  # b's removals are not a's
        assert not any(o.endswith("[revision 1]") for o in kept.values())

    with duck(endpoint) as con:  # the README's laptop recipe: DuckDB's schema detection, the same view
        for statement in LAPTOP_LATEST:
            con.execute(statement.format(table=spec_b.name, lake=spec_b.location, root=url))
        con.execute(create_view(spec_b))
        assert dict(con.execute(f"SELECT id, overview FROM {spec_b.latest_view}").fetchall()) == latest
