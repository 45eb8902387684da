"""Athena's view of a harvest (`harvester table`): its table folder as a table, its bookkeeping, the latest
record of each title.

Pure: built from the settings alone, nothing is read. For each harvest Athena can read (JSON Lines):

- `CREATE EXTERNAL TABLE` over the table folder (config.table_folder) with the OpenX JSON SerDe and the
  columns of columns.py. The date partition is a `dt` string key with partition projection, so a new
  day's objects are in the table the day they land: no crawler, no `MSCK REPAIR`, no `ADD PARTITION`.
  `{yyyy}/{mm}/{dd}` gives `dt` values like '2026/11/23' (format 'yyyy/MM/dd', a day each); `{yyyy}/{mm}`
  a month each, `{yyyy}` a year each; folders around the date part (`{media}`, fixed names, `year=`)
  are fixed text in the location, the format or the template. Gzipped objects are read by their `.gz`.
- `CREATE EXTERNAL TABLE` over the sink's `_harvest/` folder, for its outcome lines: the titles a refresh
  recorded as removed. Athena treats files starting with `_` or `.` as hidden; Trino, its engine, checks
  that on the path below the listed location only, so a location may itself be a `_` folder. The
  folder's other objects (states, spools, bitmaps) are not one JSON object a line and read as null rows
  (`ignore.malformed.json`); the view takes only the outcome objects' rows. Should a reader skip the
  folder anyway, the view degrades to the latest record of each id, removed titles included.
- `CREATE VIEW <table>_latest`: per id, the record of the last key (keys sort by date partition, then run
  tag, then commit: layout.py), unless a later run of this table recorded the title removed. "Of this
  table": the runs whose records are in it, so another harvest sharing the prefix never removes titles
  from this one (a refresh that fetched nothing and removed titles is not seen: see the README).

The view's SQL runs unchanged in DuckDB over relations with a `"$path"` column (tests/test_query.py).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from ..config import Deployment, Settings, is_s3_url, media_of, seasons_partition, table_folder
from ..errors import ConfigError
from ..items import OBJECT_NAMES, Media
from .chunks import extension
from .columns import OUTCOMES, SEASONS, Column, columns
from .sink.base import HARVEST_DIR

SERDE = "org.openx.data.jsonserde.JsonSerDe"
INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
PARTITION_KEY = "dt"
# No harvest can have started before the harvester's first version: the projection's default first day.
FIRST_DAY = date(2026, 11, 23)
_OBJECT_NAME: dict[Media, str] = OBJECT_NAMES
_DATE_PLACEHOLDER = re.compile(r"\{(yyyy|mm|dd)\}")
_JAVA = {"yyyy": "yyyy", "mm": "MM", "dd": "dd"}  # java.time DateTimeFormatter letters
Unit = Literal["DAYS", "MONTHS", "YEARS"]
_UNIT: dict[str, Unit] = {"yyyy": "YEARS", "mm": "MONTHS", "dd": "DAYS"}
_PLAIN = re.compile(r"[0-9/_.\-]*")  # literal text a DateTimeFormatter pattern may hold unquoted
_TAG = "[0-9]{8}T[0-9]{6}Z-[0-9a-f]+"  # a run tag (state.RunState.new)


@dataclass(frozen=True)
class Projection:
    """Partition projection of the date part of a partition template."""

    format: str  # DateTimeFormatter pattern of the `dt` values ('yyyy/MM/dd')
    unit: Unit
    start: str  # the first `dt` value of the range, in that format
    depth: int  # folders the date part spans
    suffix: str  # fixed folders after the date part, "" or ending in "/"


@dataclass(frozen=True)
class TableSpec:
    """What a reader needs to take one harvest's table folder as a table."""

    name: str  # tmdb_movies, tmdb_<harvest name>
    location: str  # the table folder under the sink, ending in "/"
    harvest_dir: str  # the sink's _harvest/ folder
    object_name: str  # "movies" or "series": the first word of data object names
    extension: str  # ".jsonl", ".jsonl.gz", ...
    columns: tuple[Column, ...]
    projection: Projection | None  # None: the template has no date placeholder
    series_table: str = ""  # a seasons table: the series table whose outcomes it shares

    @property
    def outcomes_table(self) -> str:
        return f"{self.series_table or self.name}_outcomes"

    @property
    def latest_view(self) -> str:
        return f"{self.name}_latest"


def table_spec(settings: Settings, since: date | None = None) -> TableSpec:
    """The table of a harvest; `since` is the first day of the projection's range (default FIRST_DAY).
    Raises ConfigError for a partition template the table cannot follow."""
    media = media_of(settings.source)
    root = settings.sink.url.rstrip("/")
    words = _OBJECT_NAME[media]
    name = settings.name.replace("-", "_") if settings.name else words
    return TableSpec(
        name=f"tmdb_{name}",
        location=f"{root}/{table_folder(settings.sink.partition, media)}",
        harvest_dir=f"{root}/{HARVEST_DIR}/",
        object_name=words,
        extension=extension(settings.sink.format, settings.sink.compression),
        columns=columns(settings),
        projection=projection(settings.sink.partition, words, since or FIRST_DAY),
    )


def seasons_spec(settings: Settings, since: date | None = None) -> TableSpec | None:
    """The seasons table of a series harvest with seasons (tmdb/seasons.py), or None."""
    if not settings.source.seasons:
        return None
    series = table_spec(settings, since)
    partition = seasons_partition(settings.sink.partition)
    root = settings.sink.url.rstrip("/")
    return replace(
        series,
        name=f"{series.name}_seasons",
        location=f"{root}/{table_folder(partition, 'tv')}",
        object_name="seasons",
        columns=SEASONS,
        projection=projection(partition, series.object_name, since or FIRST_DAY),
        series_table=series.name,
    )


def projection(partition: str, media_folder: str, since: date) -> Projection | None:
    """The projection of a partition template's date part: from the first folder with a date
    placeholder to the last one. Year, then month, then day, each at most once: `"$path"` then sorts
    by date, which the latest-record view relies on."""
    segments = partition.strip("/").split("/")
    dated = [i for i, segment in enumerate(segments) if _DATE_PLACEHOLDER.search(segment)]
    if not dated:
        return None
    first, last = dated[0], dated[-1]
    part = "/".join(segments[first : last + 1])
    found = _DATE_PLACEHOLDER.findall(part)
    if found not in (["yyyy"], ["yyyy", "mm"], ["yyyy", "mm", "dd"]):
        raise ConfigError(
            f"sink.partition {partition!r}: a table needs the date part as year, then month, then day "
            "(e.g. '{yyyy}/{mm}/{dd}', '{yyyy}/{mm}'), each once, so that keys sort by date"
        )
    pattern = []
    for piece in re.split(r"(\{yyyy\}|\{mm\}|\{dd\})", part):
        match = _DATE_PLACEHOLDER.fullmatch(piece)
        if match:
            pattern.append(_JAVA[match.group(1)])
        elif piece:
            pattern.append(_java_literal(_render(piece, media_folder)))
    start = _render(part, media_folder, yyyy=f"{since:%Y}", mm=f"{since:%m}", dd=f"{since:%d}")
    suffix = "".join(f"{_render(segment, media_folder)}/" for segment in segments[last + 1 :])
    return Projection("".join(pattern), _UNIT[found[-1]], start, last - first + 1, suffix)


def _render(text: str, media_folder: str, **dates: str) -> str:
    fields = {"yyyy": "{yyyy}", "mm": "{mm}", "dd": "{dd}", **dates}
    return text.format(media=media_folder, **fields)


def _java_literal(text: str) -> str:
    """Literal text in a DateTimeFormatter pattern: letters and most signs must be quoted."""
    return text if _PLAIN.fullmatch(text) else "'" + text.replace("'", "''") + "'"


def parse_day(text: str, where: str) -> date:
    """A date spelt YYYY-MM-DD (an option's value), or ConfigError."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(f"{where} must be a date YYYY-MM-DD, not {text!r}")


def athena_problem(settings: Settings) -> str | None:
    """Why Athena cannot read this harvest's objects, or None."""
    if settings.sink.format == "json":
        return (
            'it writes JSON arrays (format = "json"), and Athena\'s JSON SerDes read one record per line: '
            'set format = "jsonl" in its sink (a new harvest: run it with --fresh)'
        )
    return None


def location_note(settings: Settings) -> str | None:
    """What to know about the tables' LOCATION when the sink is not on S3, or None."""
    if is_s3_url(settings.sink.url):
        return None
    return (
        f"its sink {settings.sink.url!r} is a local directory: Athena reads tables on S3 only (the view's "
        "SQL runs in DuckDB as printed: README, Querying the lake)"
    )


# ---------------------------------------------------------------------------------------------
# The statements


def table_properties(spec: TableSpec) -> dict[str, str]:
    """The TBLPROPERTIES of the data table (partition projection), for the DDL and a Glue table alike."""
    p = spec.projection
    if p is None:
        return {}
    key = f"projection.{PARTITION_KEY}"
    return {
        "projection.enabled": "true",
        f"{key}.type": "date",
        f"{key}.format": p.format,
        f"{key}.range": f"{p.start},NOW",
        f"{key}.interval": "1",
        f"{key}.interval.unit": p.unit,
        "storage.location.template": f"{spec.location}${{{PARTITION_KEY}}}/{p.suffix}",
    }


def create_table(spec: TableSpec) -> str:
    partitioned = f"PARTITIONED BY (`{PARTITION_KEY}` string)\n" if spec.projection else ""
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {spec.name} (\n{_column_list(spec.columns)}\n)\n"
        f"{partitioned}{_storage(malformed='false')}"
        f"LOCATION {_string(spec.location)}{_properties(table_properties(spec))};"
    )


def create_outcomes_table(spec: TableSpec) -> str:
    # `_` and `.` paths are hidden below a location, not as the location itself; the folder's objects
    # that are not one JSON object a line (states, spools, bitmaps) read as null rows.
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {spec.outcomes_table} (\n{_column_list(OUTCOMES)}\n)\n"
        f"{_storage(malformed='true')}LOCATION {_string(spec.harvest_dir)};"
    )


def view_select(spec: TableSpec) -> str:
    """The latest-record query: one row per id, the newest, without the titles a later run of this table
    recorded as removed. Standard SQL that Athena (Trino) and DuckDB both run."""
    record_run = f"'/{spec.object_name}-({_TAG})-[^/]*$'"
    outcome_run = f"'/{HARVEST_DIR}/([^/]+)/outcomes-[^/]*$'"
    shown = [name for name, _ in spec.columns] + ([PARTITION_KEY] if spec.projection else [])
    # A series' seasons are committed together, in one object: the newest object holding a series has
    # its seasons as they are now (one TMDB dropped since is not among them), every row of it rank 1.
    key, rank = ("series_id", "dense_rank") if spec.series_table else ("id", "row_number")
    return (
        "WITH records AS (\n"
        f'  SELECT t.*, regexp_extract(t."$path", {record_run}, 1) AS run,\n'
        f'    {rank}() OVER (PARTITION BY t.{key} ORDER BY t."$path" DESC) AS version\n'
        f"  FROM {spec.name} t\n"
        "),\n"
        "removed AS (\n"
        f'  SELECT o.tmdb_id, max(regexp_extract(o."$path", {outcome_run}, 1)) AS run\n'
        f"  FROM {spec.outcomes_table} o\n"
        f"  WHERE o.outcome = 'removed'\n"
        f'    AND regexp_extract(o."$path", {outcome_run}, 1) IN (SELECT run FROM records)\n'
        "  GROUP BY o.tmdb_id\n"
        ")\n"
        f"SELECT {_wrapped(', '.join(f'r.{name}' for name in shown))}\n"
        "FROM records r\n"
        f"LEFT JOIN removed x ON x.tmdb_id = r.{key}\n"
        "WHERE r.version = 1 AND (x.run IS NULL OR x.run < r.run)"
    )


def create_view(spec: TableSpec) -> str:
    return f"CREATE OR REPLACE VIEW {spec.latest_view} AS\n{view_select(spec)};"


def ddl(spec: TableSpec) -> str:
    """The three statements, each with a line saying what it is (Athena runs one statement at a time)."""
    days = {"DAYS": "a day", "MONTHS": "a month", "YEARS": "a year"}
    each = f", partition projection {days[spec.projection.unit]} each" if spec.projection else ""
    if spec.series_table:  # a seasons table: the series' outcomes table serves it too
        return "\n\n".join(
            (
                f"-- the seasons (seasons-*{spec.extension}){each}\n{create_table(spec)}",
                "-- each series' seasons as last harvested, without the series a later refresh removed\n"
                + create_view(spec),
            )
        )
    return "\n\n".join(
        (
            f"-- the data objects ({spec.object_name}-*{spec.extension}){each}\n{create_table(spec)}",
            "-- the harvest's bookkeeping, for the titles a refresh recorded as removed\n"
            + create_outcomes_table(spec),
            "-- the latest record of each title, without those a later refresh removed\n" + create_view(spec),
        )
    )


def deployment_ddl(deployment: Deployment, since: date | None = None) -> tuple[str, list[str]]:
    """What `harvester table` prints: the DDL of every harvest Athena can read (under a header per
    harvest for a list), and the lines for stderr: a harvest it cannot read, a sink not on S3. Raises
    ConfigError when it can read none."""
    parts: list[str] = []
    lines: list[str] = []
    for settings in deployment.harvests:
        where = f'harvest "{settings.name}": ' if deployment.listed else ""
        problem = athena_problem(settings)
        try:
            text = ddl(table_spec(settings, since)) if problem is None else None
            seasons = seasons_spec(settings, since) if problem is None else None
            if text is not None and seasons is not None:
                text = f"{text}\n\n{ddl(seasons)}"
        except ConfigError as exc:
            text, problem = None, str(exc)
        if text is None:
            lines.append(f"{where}Athena cannot read this harvest: {problem}")
            continue
        note = location_note(settings)
        if note:
            lines.append(f"{where}{note}")
        parts.append(f"-- == harvest {settings.name}\n\n{text}" if deployment.listed else text)
    if not parts:
        raise ConfigError("; ".join(lines))
    from .reference_table import reference_ddl  # it builds on this module: imported when used

    reference, notes = reference_ddl(deployment, since)
    return "\n\n".join([*parts, *([reference] if reference else [])]), lines + notes


def data_glob(spec: TableSpec) -> str:
    """The table's data objects as a glob (DuckDB's read_json, Spark's load)."""
    depth = spec.projection.depth if spec.projection else 0
    suffix = spec.projection.suffix if spec.projection else ""
    return f"{spec.location}{'*/' * depth}{suffix}{spec.object_name}-*{spec.extension}"


def _wrapped(text: str) -> str:
    return textwrap.fill(text, 100, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def _column_list(cols: tuple[Column, ...]) -> str:
    return ",\n".join(f"  `{name}` {_quote_fields(kind)}" for name, kind in cols)


def _quote_fields(kind: str) -> str:
    """Struct field names in backticks: `cast`, `order` and others are reserved words in Hive DDL."""
    return re.sub(r"([A-Za-z_][A-Za-z0-9_]*):", r"`\1`:", kind)


def _storage(malformed: str) -> str:
    return (
        f"ROW FORMAT SERDE {_string(SERDE)}\n"
        f"WITH SERDEPROPERTIES ('ignore.malformed.json' = {_string(malformed)})\n"
        f"STORED AS INPUTFORMAT {_string(INPUT_FORMAT)}\n"
        f"OUTPUTFORMAT {_string(OUTPUT_FORMAT)}\n"
    )


def _properties(props: dict[str, str]) -> str:
    if not props:
        return ""
    lines = ",\n".join(f"  {_string(k)} = {_string(v)}" for k, v in props.items())
    return f"\nTBLPROPERTIES (\n{lines}\n)"


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
