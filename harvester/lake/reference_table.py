"""The reference tables in the lake: TMDB's genres, countries, languages and certifications, a small
table each beside the harvests' tables, one object a day, and their Athena DDL and Glue tables.

Pure: names, keys, columns and statements, built from the settings alone (reference.py fetches and
writes). Every object of a table is TMDB's list of one day, one record per row:

    _reference/genres/2026/12/04/genres-20261204.jsonl              {"media", "id", "name"}
    _reference/countries/2026/12/04/countries-20261204.jsonl        as TMDB sends each country
    _reference/languages/2026/12/04/languages-20261204.jsonl        as TMDB sends each language
    _reference/certifications/2026/12/04/certifications-20261204.jsonl
                                                                    {"media", "country", "certification",
                                                                     "meaning", "order"}

Why `_reference/` and not `reference/`: a harvest's table folder may be the sink's root (one unnamed
harvest, partition "{yyyy}/{mm}/{dd}", the default), and a `reference/` there would be inside it.
Athena would not read it (its table projects the date folders only: `storage.location.template`) nor
would DuckDB's glob by object name (`*/*/*/movies-*`), but Spark or a crawler reading the folder would,
and so does `verify`, which takes every object under a table folder not below a `_` or `.` folder as
the table's (an orphan, its ids counted as titles). A folder starting with `_` is hidden to all of them
below a table's location, and no harvest can write inside it (config refuses partition folders starting
with `_`). The reference tables' own locations are `_` folders, which Athena reads (it hides `_` paths
below a location only, as for the outcomes tables over `_harvest/`).

The day is always `{yyyy}/{mm}/{dd}` (a table of its own, whatever the harvests' partition), projected
as `dt` like the data tables; the objects take the format and compression of the deployment's sink
(a list's [sink], whatever its harvests set for themselves), and Athena reads them only as JSON Lines.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ..config import REFERENCE, REFERENCE_TABLES, Deployment, Settings, SinkSettings
from ..errors import ConfigError
from .chunks import extension
from .columns import Column
from .sink.base import HARVEST_DIR
from .table import FIRST_DAY, TableSpec, athena_problem, create_table, projection

if TYPE_CHECKING:
    from .glue import Resource

REFERENCE_DIR = "_reference"
PARTITION = "{yyyy}/{mm}/{dd}"

COLUMNS: dict[str, tuple[Column, ...]] = {
    "genres": (("media", "string"), ("id", "int"), ("name", "string")),
    "countries": (("iso_3166_1", "string"), ("english_name", "string"), ("native_name", "string")),
    "languages": (("iso_639_1", "string"), ("english_name", "string"), ("name", "string")),
    "certifications": (
        ("media", "string"),
        ("country", "string"),
        ("certification", "string"),
        ("meaning", "string"),
        ("order", "int"),
    ),
}
WHAT = {
    "genres": "TMDB's genres, movie and TV",
    "countries": "TMDB's countries",
    "languages": "TMDB's languages",
    "certifications": "TMDB's certifications by country, movie and TV",
}
assert set(COLUMNS) == set(WHAT) == set(REFERENCE_TABLES)


def table_folder(table: str) -> str:
    return f"{REFERENCE_DIR}/{table}/"


def day_stem(table: str, day: date) -> str:
    """The key of a table's object of `day`, without its extension: whatever the format, one a day."""
    return f"{table_folder(table)}{day:%Y/%m/%d}/{table}-{day:%Y%m%d}"


def object_key(table: str, day: date, settings: SinkSettings) -> str:
    return day_stem(table, day) + extension(settings.format, settings.compression)


def table_name(table: str) -> str:
    """tmdb_reference_genres; config refuses a harvest name that gives one of these."""
    return f"tmdb_{REFERENCE}_{table}"


def reference_sink(deployment: Deployment) -> SinkSettings:
    """The sink settings the reference tables are written with: a list's [sink] (its harvests share its
    place, whatever format each sets for itself), or the one harvest's."""
    return deployment.sink or deployment.harvests[0].sink


def reference_specs(deployment: Deployment, since: date | None = None) -> tuple[list[TableSpec], str | None]:
    """The reference tables as tables (table.py's TableSpec), or none and why Athena cannot read them."""
    sink = reference_sink(deployment)
    problem = athena_problem(Settings(sink=sink))
    if problem is not None:
        return [], f"reference tables: Athena cannot read them: {problem}"
    root = sink.url.rstrip("/")
    specs = [
        TableSpec(
            name=table_name(table),
            location=f"{root}/{table_folder(table)}",
            harvest_dir=f"{root}/{HARVEST_DIR}/",
            object_name=table,
            extension=extension(sink.format, sink.compression),
            columns=COLUMNS[table],
            projection=projection(PARTITION, "", since or FIRST_DAY),
        )
        for table in REFERENCE_TABLES
    ]
    return specs, None


def reference_ddl(deployment: Deployment, since: date | None = None) -> tuple[str | None, list[str]]:
    """The reference tables' statements under a header (or None), and a line for stderr if Athena
    cannot read them."""
    specs, problem = reference_specs(deployment, since)
    if problem is not None:
        return None, [problem]
    statements = [
        f"-- {WHAT[spec.object_name]}: {spec.object_name}-*{spec.extension}, one object a day "
        f"(partition projection a day each)\n{create_table(spec)}"
        for spec in specs
    ]
    return "\n\n".join(["-- == reference tables (README: Reference tables)", *statements]), []


def reference_glue(
    deployment: Deployment, since: date | None, taken: set[str]
) -> tuple[dict[str, Resource], list[str]]:
    """The reference tables as Glue tables by logical id (none, and a line, if Athena cannot read them).
    `taken`: the logical ids the harvests' tables have."""
    from .glue import data_table, logical_id  # glue.py asks this module for these: imported when used

    specs, problem = reference_specs(deployment, since)
    if problem is not None:
        return {}, [problem]
    root = reference_sink(deployment).url.rstrip("/")
    resources: dict[str, Resource] = {}
    for spec in specs:
        logical = logical_id(spec.name)
        if logical in taken:  # config refuses the names that give these; kept as a guard
            raise ConfigError(f"a harvest's table has the name of the reference table {spec.name}: rename it")
        resources[logical] = data_table(spec, root)
    return resources, []
