"""Command line: `python -m harvester run|refresh|check|verify|table config.toml`, `genres`, `demo`,
`standin`.

Exit codes (the README has the whole table, with which to retry):
  0   done (or already complete)            3   TMDB rejected the credential, none was given, or its
  1   unexpected internal error                 secret (TMDB_SECRET_ARN) is missing or denied
  2   bad config, input or saved state;     4   S3, the output directory or Secrets Manager is
      verify found problems                     unusable or unavailable
  5   TMDB unavailable                      6   another run holds (or took over) the harvest's lease
  75  stopped on purpose (signal, --max-runtime): progress is saved, run again to resume
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import config as config_mod
from .command import EXIT_INTERNAL, report_summary, run_command
from .config import Credentials
from .errors import CredentialError, HarvesterError, Interrupted, TmdbUnavailable
from .ops.logs import harvest_name, redact, setup_logging
from .secret import load_credentials

if TYPE_CHECKING:
    from .fleet import Outcome
    from .runner import Options

log = logging.getLogger("harvester")
STANDIN_COMMANDS = ("demo", "standin")  # run by the stand-in's own program, see _hand_over_to_standin


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """'90', '90s', '13m', '1.5h' -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 13m, 1h)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvester", description="Harvest TMDB data into an S3 data lake.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log lines on stderr (default: $HARVESTER_LOG_FORMAT, else json in AWS Lambda, else text)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="print the run's metrics as one CloudWatch EMF line on stdout (or HARVESTER_METRICS=emf)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="harvest what a config file describes (resumes where it stopped)")
    run.add_argument("--fresh", action="store_true", help="start over instead of resuming the saved run")
    refresh = sub.add_parser(
        "refresh", help="take only what changed, entered or left since the last complete run, as a new run"
    )
    for harvesting in (run, refresh):
        harvesting.add_argument("config", help="path to the TOML config")
        harvesting.add_argument(
            "--max-runtime",
            type=parse_duration,
            metavar="DURATION",
            help="stop cleanly after this long (e.g. 13m); exit 75, run again to resume",
        )
        harvesting.add_argument(
            "--grace",
            type=parse_duration,
            default=5.0,
            metavar="DURATION",
            help="how long in-flight requests may finish after a stop (default 5s)",
        )
        harvesting.add_argument(
            "--no-progress", action="store_true", help="no progress bar or progress log lines"
        )

    check = sub.add_parser("check", help="validate config, credential and sink; count and estimate")
    check.add_argument("config", help="path to the TOML config")

    verify = sub.add_parser("verify", help="audit the harvest a config describes in its sink; writes nothing")
    verify.add_argument("config", help="path to the TOML config")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    for listed in (run, refresh, check, verify):
        listed.add_argument(
            "--only",
            type=_names,
            metavar="NAME[,NAME]",
            help="of a config that lists harvests ([[harvest]]), take only these",
        )

    genres = sub.add_parser("genres", help="list TMDB's genre ids and names")
    genres.add_argument("media", nargs="?", choices=["movie", "tv"], default="movie")
    genres.add_argument("--config", help="take tmdb.base_url from this config (default: TMDB itself)")

    table = sub.add_parser("table", help="print the Athena DDL that makes each harvest's folder a table")
    table.add_argument("config", help="path to the TOML config")
    table.add_argument("--only", type=_names, metavar="NAME[,NAME]", help="of a list, only these harvests")
    table.add_argument(
        "--since",
        metavar="YYYY-MM-DD",
        help="first day of the partition projection's range (default: the harvester's first release)",
    )

    # Listed for --help only: main() hands these over to the stand-in's own program.
    sub.add_parser("demo", help="harvest a generated movies.csv from the TMDB stand-in", add_help=False)
    sub.add_parser("standin", help="serve the TMDB stand-in (for benchmarks)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command_at is not None and argv[command_at] in STANDIN_COMMANDS:
        return _hand_over_to_standin(argv)
    args = build_parser().parse_args(argv)
    try:
        # The environment's, else the secret TMDB_SECRET_ARN names; verify reads only the lake, and
        # table only the config.
        offline = args.command in ("verify", "table")
        credentials = Credentials.from_env() if offline else load_credentials()
    except HarvesterError as exc:  # before logging is set up, so the one line is printed here
        print(f"harvester: error: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(args.verbose, credentials.secrets(), log_format=args.log_format)
    commands = {
        "run": _run,
        "refresh": _run,
        "check": _check,
        "verify": _verify,
        "genres": _genres,
        "table": _table,
    }
    command = commands[args.command]
    return run_command(
        lambda stop: command(args, credentials, stop), verbose=args.verbose, secrets=credentials.secrets()
    )


def _hand_over_to_standin(argv: list[str]) -> int:
    """Become `python -m tmdb_standin <argv>`: the stand-in and its demo are a test double, which the
    harvester never imports (the Lambda zip and the container image go without it). The process is
    replaced, so signals and exit codes are the stand-in program's own."""
    if importlib.util.find_spec("tmdb_standin") is None:
        print(
            "harvester: error: the TMDB stand-in (package tmdb_standin) is not installed here; "
            "`pip install -e .` in a clone of the repository installs it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "tmdb_standin", *argv])


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--only takes harvest names, comma-separated")
    return names


def _deployment(args: argparse.Namespace) -> config_mod.Deployment:
    deployment = config_mod.load_deployment(args.config)
    return deployment.only(args.only) if args.only else deployment


async def _run(args: argparse.Namespace, credentials: Credentials, stop: asyncio.Event) -> int:
    deployment = _deployment(args)
    _require(credentials)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.max_runtime if args.max_runtime else None
    from .fleet import harvest_one
    from .runner import Options

    options = Options(
        mode="refresh" if args.command == "refresh" else "run",
        fresh=getattr(args, "fresh", False),
        stop=stop,
        deadline=deadline,
        grace_s=args.grace,
        progress=not args.no_progress,
    )
    if deployment.listed:
        return await _run_list(args, deployment, credentials, options)
    settings = deployment.harvests[0]
    result = await harvest_one(settings, credentials, **options)
    report_summary(result.summary, harvest_name(settings), metrics_flag=args.metrics)
    if result.status == "complete":
        return 0
    if not result.stopped:
        raise TmdbUnavailable(
            f"{result.summary.pending} titles still fail after their retries (TMDB unavailable for "
            "them); they stay pending and the next run tries them first"
        )
    raise Interrupted("stopped before the end; progress is saved: run the same command to resume")


async def _run_list(
    args: argparse.Namespace, deployment: config_mod.Deployment, credentials: Credentials, options: Options
) -> int:
    """Every harvest of the list at once (fleet.py): each one's summary, then the total; the exit code
    is the most urgent of theirs, and each failure is one line naming its harvest."""
    from .fleet import format_fleet, harvest_all

    fleet = await harvest_all(deployment, credentials, **options)
    by_name = {h.name: h for h in deployment.harvests}
    for outcome in fleet.outcomes:
        print(f"== harvest {outcome.name}: exit {outcome.exit_code}", flush=True)
        if outcome.summary is not None:
            report_summary(outcome.summary, harvest_name(by_name[outcome.name]), metrics_flag=args.metrics)
    print(format_fleet(fleet), flush=True)
    for outcome in fleet.outcomes:
        if outcome.error is not None or outcome.internal is not None:
            why = redact(str(outcome.error or outcome.internal), credentials.secrets())
            print(f'harvester: error: harvest "{outcome.name}": {why}', file=sys.stderr)
        elif outcome.exit_code != 0:
            print(f'harvester: harvest "{outcome.name}": {_incomplete(outcome)}', file=sys.stderr)
    return fleet.exit_code


def _incomplete(outcome: Outcome) -> str:
    summary = outcome.summary
    assert summary is not None
    if outcome.exit_code == Interrupted.exit_code:
        return "stopped before the end; progress is saved: run the same command to resume"
    return f"{summary.pending} titles still fail after their retries; the next run tries them first"


def _require(credentials: Credentials) -> None:
    if not credentials.present:
        raise CredentialError(
            "no TMDB credential: set TMDB_ACCESS_TOKEN (preferred), TMDB_API_KEY or TMDB_SECRET_ARN"
        )


async def _check(args: argparse.Namespace, credentials: Credentials, stop: asyncio.Event) -> int:
    deployment = _deployment(args)
    _require(credentials)
    from .check import check

    for settings in deployment.harvests:
        if deployment.listed:
            print(f"== harvest {settings.name}", flush=True)
        print(await check(settings, credentials), flush=True)
    return 0


async def _verify(args: argparse.Namespace, credentials: Credentials, stop: asyncio.Event) -> int:
    deployment = _deployment(args)  # no credential: the audit reads the sink only
    from .verify import format_report, report_json, reports_json, require_clean, verify

    reports = [await verify(settings, stop) for settings in deployment.harvests]
    if args.json:
        print(report_json(reports[0]) if not deployment.listed else reports_json(reports))
    else:
        for settings, report in zip(deployment.harvests, reports, strict=True):
            if deployment.listed:
                print(f"== harvest {settings.name}")
            print(format_report(report))
    for report in reports:
        require_clean(report)
    return 0


async def _genres(args: argparse.Namespace, credentials: Credentials, stop: asyncio.Event) -> int:
    settings = config_mod.load(args.config) if args.config else config_mod.Settings()
    _require(credentials)
    from .source.discover import genre_list
    from .tmdb.client import TmdbClient
    from .tmdb.ratelimit import RateLimiter

    async with TmdbClient(settings.tmdb, credentials, RateLimiter(settings.tmdb.rate_limit)) as client:
        for gid, name in await genre_list(client, args.media):
            print(f"{gid:>6}  {name}")
    return 0


async def _table(args: argparse.Namespace, credentials: Credentials, stop: asyncio.Event) -> int:
    """Exit 0 when the DDL of at least one harvest is printed (a line on stderr for each that Athena
    cannot read, and for a sink not on S3); 2 (ConfigError) when Athena can read none of them."""
    from .lake.table import deployment_ddl, parse_day  # pure: reads the config only

    since = parse_day(args.since, "--since") if args.since else None
    ddl, problems = deployment_ddl(_deployment(args), since)
    for problem in problems:
        print(f"harvester: {problem}", file=sys.stderr)
    print(ddl)
    return 0
