"""The Glue Data Catalog's view of a harvest: `harvester table`'s tables as CloudFormation resources.

Pure: built from the settings alone, as table.py's DDL is, and from the same TableSpec, columns and
table_properties, so the tables the SAM template registers (deploy/glue_tables.py writes them into
deploy/template.yaml) cannot drift from the DDL `harvester table` prints. For each harvest Athena can
read: the data table (the OpenX JSON SerDe, the `dt` partition key with partition projection: nothing
to run after deploy, no crawler, no MSCK REPAIR) and its outcomes table over `_harvest/`, which the
latest-record view reads. The view itself is not a resource: a Glue view holds Presto's encoded plan
(`/* Presto View: ... */`), an undocumented format; its `CREATE VIEW` is run once in Athena.

Locations are written under the template's parameters, `s3://${BucketName}/${DataPrefix}/...`, not
the config's literal sink.url: the template's table folders then follow the stack it is deployed as,
and a config's sink.url must be that URL anyway (the function's role may write nowhere else).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..config import Deployment, is_s3_url, parse_s3_url
from ..errors import ConfigError
from .columns import OUTCOMES, Column
from .table import (
    INPUT_FORMAT,
    OUTPUT_FORMAT,
    PARTITION_KEY,
    SERDE,
    TableSpec,
    athena_problem,
    seasons_spec,
    table_properties,
    table_spec,
)

# Names in deploy/template.yaml that the generated resources refer to (tests/test_deploy.py checks them).
CONDITION = "HasGlueDatabase"
DATABASE = "LakeDatabase"  # the AWS::Glue::Database resource; its Ref is the database's name
STACK_ROOT = "s3://${BucketName}/${DataPrefix}"

Resource = dict[str, Any]


def glue_tables(deployment: Deployment, since: date | None = None) -> tuple[dict[str, Resource], list[str]]:
    """The Glue tables of every harvest Athena can read, by logical id (the data table, then its outcomes
    table, harvest by harvest), and a line for each harvest it cannot read. Raises ConfigError for a sink
    not on S3, a table name two harvests would share, or when Athena can read none of them."""
    resources: dict[str, Resource] = {}
    names: set[str] = set()
    lines: list[str] = []
    for settings in deployment.harvests:
        where = f'harvest "{settings.name}": ' if deployment.listed else ""
        url = settings.sink.url
        if not is_s3_url(url) or not parse_s3_url(url)[1]:
            raise ConfigError(
                f"{where}sink.url {url!r} is not s3://BUCKET/PREFIX: the template's Glue tables are over "
                "s3://BucketName/DataPrefix, where the function writes"
            )
        problem = athena_problem(settings)
        if problem is None:
            try:
                spec = table_spec(settings, since)
            except ConfigError as exc:
                problem = str(exc)
        if problem is not None:
            lines.append(f"{where}Athena cannot read this harvest: {problem}")
            continue
        root = url.rstrip("/")
        tables = [(spec.name, data_table(spec, root)), (spec.outcomes_table, outcomes_table(spec, root))]
        seasons = seasons_spec(settings, since)
        if seasons is not None:
            tables.append((seasons.name, data_table(seasons, root)))
        for name, table in tables:
            logical = logical_id(name)
            if name in names or logical in resources:
                raise ConfigError(
                    f"{where}its table {name} has the name of another harvest's table: rename one"
                )
            names.add(name)
            resources[logical] = table
    if not resources:
        raise ConfigError("; ".join(lines))
    from .reference_table import reference_glue  # it builds on this module: imported when used

    reference, notes = reference_glue(deployment, since, set(resources))
    return resources | reference, lines + notes


def logical_id(table: str) -> str:
    """tmdb_tv_shows -> TableTmdbTvShows (logical ids are letters and digits only)."""
    return "Table" + "".join(part[:1].upper() + part[1:] for part in table.split("_"))


def data_table(spec: TableSpec, root: str) -> Resource:
    # The DDL's TBLPROPERTIES, the location template under the stack's bucket and prefix.
    properties: dict[str, Any] = {
        k: _in_stack(v, root) if k == "storage.location.template" else v
        for k, v in table_properties(spec).items()
    }
    return _table(
        spec.name,
        f"{spec.object_name}-*{spec.extension} of the table folder, as `harvester table` prints its DDL",
        spec.columns,
        _in_stack(spec.location, root),
        malformed="false",
        properties=properties,
        partitioned=spec.projection is not None,
    )


def outcomes_table(spec: TableSpec, root: str) -> Resource:
    # Its other objects (states, spools, bitmaps) read as null rows: the view takes the outcome lines.
    return _table(
        spec.outcomes_table,
        f"the outcome lines under _harvest/: the titles a refresh recorded as removed ({spec.latest_view})",
        OUTCOMES,
        _in_stack(spec.harvest_dir, root),
        malformed="true",
        properties={},
        partitioned=False,
    )


def _table(
    name: str,
    description: str,
    columns: tuple[Column, ...],
    location: dict[str, str],
    *,
    malformed: str,
    properties: dict[str, Any],
    partitioned: bool,
) -> Resource:
    keys = {"PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}]} if partitioned else {}
    return {
        "Type": "AWS::Glue::Table",
        "Condition": CONDITION,
        "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseName": {"Ref": DATABASE},
            "TableInput": {
                "Name": name,
                "Description": description,
                "TableType": "EXTERNAL_TABLE",
                # EXTERNAL as Athena's own CREATE EXTERNAL TABLE records it; then the DDL's TBLPROPERTIES.
                "Parameters": {"EXTERNAL": "TRUE", **properties},
                **keys,
                "StorageDescriptor": {
                    "Columns": [{"Name": column, "Type": kind} for column, kind in columns],
                    "Location": location,
                    "InputFormat": INPUT_FORMAT,
                    "OutputFormat": OUTPUT_FORMAT,
                    "SerdeInfo": {
                        "SerializationLibrary": SERDE,
                        "Parameters": {"ignore.malformed.json": malformed},
                    },
                },
            },
        },
    }


def _in_stack(url: str, root: str) -> dict[str, str]:
    """A URL under the sink as an Fn::Sub under the stack's bucket and prefix; `${` of the URL itself
    (the location template's `${dt}`) is written `${!`, Fn::Sub's literal."""
    if not url.startswith(f"{root}/"):
        raise AssertionError(f"{url!r} is not under the sink {root!r}")
    return {"Fn::Sub": f"{STACK_ROOT}/" + url[len(root) + 1 :].replace("${", "${!")}
