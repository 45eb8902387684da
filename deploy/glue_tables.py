"""Write the Glue tables of a config's harvests into the SAM template: `python deploy/glue_tables.py CONFIG`.

The template registers each harvest's tables (data, outcomes, and seasons for a series harvest with
seasons) and the four reference tables when `GlueDatabase` is set; CloudFormation cannot loop over
a config's harvests (Fn::ForEach breaks `sam deploy` before SAM CLI 1.160 and `aws cloudformation
package`), so the tables are written into deploy/template.yaml, between its `# >>> Glue tables` and
`# <<< Glue tables` lines, from the same specs `harvester table` prints as DDL (harvester/lake/glue.py).
The template as shipped holds those of the shipped config.toml with `format = "jsonl"`: one movie
harvest appending credits, at the root of DataPrefix, and the reference tables under `_reference/`.

    python deploy/glue_tables.py CONFIG [--since YYYY-MM-DD] [--template PATH] [--check]

Rewrites the block in place (nothing else of the file changes); `--check` writes nothing and exits 1
when the block is not what CONFIG gives. Exit 2 (one line) for a config that is invalid, not on S3, or
of no harvest Athena can read; a line on stderr for each harvest it cannot read, as `harvester table`.
Needs the harvester importable (the venv it is installed in: `pip install -e .`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from harvester.config import load_deployment
from harvester.errors import ConfigError
from harvester.lake.glue import glue_tables
from harvester.lake.table import parse_day

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
BEGIN = "  # >>> Glue tables"
END = "  # <<< Glue tables"
HEADER = (
    f"{BEGIN}: written by `python deploy/glue_tables.py CONFIG`, one data table and one outcomes table\n"
    "  # per harvest Athena can read, the same as `harvester table CONFIG` prints (do not edit by hand).\n"
)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/<>,-]*")  # strings YAML reads back as these strings
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}  # YAML 1.1 booleans, null


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glue_tables.py", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the harvester's TOML config (the one the function reads)")
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="first day of the partition projection")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="default: deploy/template.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 if the template is not up to date")
    args = parser.parse_args(argv)
    try:
        since = parse_day(args.since, "--since") if args.since else None
        resources, problems = glue_tables(load_deployment(args.config), since)
        text = _read(args.template)
        new = splice(text, block(resources))
    except ConfigError as exc:
        print(f"glue_tables: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"glue_tables: {problem}", file=sys.stderr)
    names = ", ".join(r["Properties"]["TableInput"]["Name"] for r in resources.values())
    if args.check:
        if new != text:
            print(
                f"glue_tables: {args.template}'s Glue tables are not those of {args.config}: "
                f"run python deploy/glue_tables.py {args.config}",
                file=sys.stderr,
            )
            return 1
        print(f"glue_tables: {args.template} is up to date ({names})", file=sys.stderr)
        return 0
    if new != text:
        args.template.write_text(new, encoding="utf-8")
    print(f"glue_tables: {args.template}: {names}", file=sys.stderr)
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read template {path}: {exc.__class__.__name__}") from None


def splice(template: str, generated: str) -> str:
    """The template with the lines from BEGIN to END (both included) replaced by `generated`."""
    lines = template.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ConfigError(f"the template has no single {BEGIN.strip()!r} ... {END.strip()!r} block")
    return "".join(lines[: starts[0]]) + generated + "".join(lines[ends[0] + 1 :])


def block(resources: dict[str, dict[str, Any]]) -> str:
    """The resources as the template's lines, in its style (block YAML, two spaces an indent), between
    the markers."""
    body = "\n".join("\n".join(_mapping({name: resource}, 2)) + "\n" for name, resource in resources.items())
    return f"{HEADER}{body}{END}\n"


def _mapping(value: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, item in value.items():
        short = _short_form(item)
        if short:
            out.append(f"{pad}{_scalar(key)}: {short}")
        elif isinstance(item, dict) and item:
            out += [f"{pad}{_scalar(key)}:", *_mapping(item, indent + 2)]
        elif isinstance(item, list) and item:
            out += [f"{pad}{_scalar(key)}:", *_sequence(item, indent + 2)]
        else:
            out.append(f"{pad}{_scalar(key)}: {_scalar(item)}")
    return out


def _sequence(items: list[Any], indent: int) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            first, *rest = _mapping(item, indent + 2)
            out += [f"{' ' * indent}- {first.lstrip()}", *rest]
        else:
            out.append(f"{' ' * indent}- {_scalar(item)}")
    return out


def _short_form(value: Any) -> str | None:
    """`!Ref X` and `!Sub "..."`, as the rest of the template writes them."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        tag = {"Ref": "!Ref", "Fn::Sub": "!Sub"}.get(function)
        if tag and isinstance(argument, str):
            return f"{tag} {_scalar(argument)}"
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and value.lower() not in _RESERVED and not value.endswith(":")
        return value if plain else json.dumps(value)  # a JSON string is a YAML double-quoted one
    if value == {} or value == []:
        return json.dumps(value)
    raise TypeError(f"not a template scalar: {value!r}")


if __name__ == "__main__":
    sys.exit(main())
