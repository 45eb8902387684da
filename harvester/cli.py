"""Command line: `python -m harvester run config.toml`, `check`, `genres`, `demo`, `standin`.

Exit codes (also in README):
  0   done (or already complete)            3   TMDB rejected the credential, or none was given
  1   unexpected internal error             4   the sink is unusable (bucket missing, no access, ...)
  2   bad config, input or saved state      5   TMDB unavailable (too many failures in a row)
  75  stopped on purpose (signal, --max-runtime): progress is saved, run again to resume
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from . import config as config_mod
from .config import Credentials
from .errors import CredentialError, HarvesterError, Interrupted, TmdbUnavailable
from .stats import format_summary

log = logging.getLogger("harvester")

EXIT_INTERNAL = 1
STANDIN_COMMANDS = ("demo", "standin")  # run by the stand-in's own program, see _hand_over_to_standin


class RedactSecrets(logging.Filter):
    """Last line of defence: no log record leaves with a credential in it."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            if any(s in message for s in self._secrets):
                record.msg, record.args = redact(message, self._secrets), None
        return True


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def setup_logging(verbose: bool, secrets: Sequence[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("harvester").setLevel(logging.DEBUG if verbose else logging.INFO)


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
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="harvest what a config file describes (resumes where it stopped)")
    run.add_argument("config", help="path to the TOML config")
    run.add_argument("--fresh", action="store_true", help="start over instead of resuming the saved run")
    run.add_argument(
        "--max-runtime",
        type=parse_duration,
        metavar="DURATION",
        help="stop cleanly after this long (e.g. 13m); exit 75, run again to resume",
    )
    run.add_argument(
        "--grace",
        type=parse_duration,
        default=5.0,
        metavar="DURATION",
        help="how long in-flight requests may finish after a stop (default 5s)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress log lines")

    check = sub.add_parser("check", help="validate config, credential and sink; count and estimate")
    check.add_argument("config", help="path to the TOML config")

    genres = sub.add_parser("genres", help="list TMDB's genre ids and names")
    genres.add_argument("media", nargs="?", choices=["movie", "tv"], default="movie")
    genres.add_argument("--config", help="take tmdb.base_url from this config (default: TMDB itself)")

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
    credentials = Credentials.from_env()
    setup_logging(args.verbose, credentials.secrets())
    try:
        if args.command == "run":
            return _run_command(args, credentials)
        if args.command == "check":
            return _check_command(args, credentials)
        if args.command == "genres":
            return _genres_command(args, credentials)
        raise AssertionError(args.command)
    except HarvesterError as exc:
        print(f"harvester: error: {redact(str(exc), credentials.secrets())}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the one place an unexpected error becomes a line and an exit code
        if args.verbose:
            log.exception("internal error")
        message = redact(f"{exc.__class__.__name__}: {exc}", credentials.secrets())
        print(f"harvester: internal error: {message} (run with -v for details)", file=sys.stderr)
        return EXIT_INTERNAL


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


def _run_command(args: argparse.Namespace, credentials: Credentials) -> int:
    settings = config_mod.load(args.config)
    _require(credentials)

    async def go(stop: asyncio.Event) -> int:
        from .runner import harvest

        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.max_runtime if args.max_runtime else None
        result = await harvest(
            settings,
            credentials,
            fresh=args.fresh,
            stop=stop,
            deadline=deadline,
            grace_s=args.grace,
            progress=not args.no_progress,
        )
        print(format_summary(result.summary))
        if result.status == "complete":
            return 0
        if not result.stopped:
            raise TmdbUnavailable(
                f"{result.summary['pending']} titles still fail after their retries (TMDB unavailable for "
                "them); they stay pending and the next run tries them first"
            )
        raise Interrupted("stopped before the end; progress is saved: run the same command to resume")

    return _run_async(go)


def _require(credentials: Credentials) -> None:
    if not credentials.present:
        raise CredentialError("no TMDB credential: set TMDB_ACCESS_TOKEN (preferred) or TMDB_API_KEY")


def _check_command(args: argparse.Namespace, credentials: Credentials) -> int:
    settings = config_mod.load(args.config)
    _require(credentials)

    async def go(stop: asyncio.Event) -> int:
        from .check import check

        print(await check(settings, credentials))
        return 0

    return _run_async(go)


def _genres_command(args: argparse.Namespace, credentials: Credentials) -> int:
    settings = config_mod.load(args.config) if args.config else config_mod.Settings()
    _require(credentials)

    async def go(stop: asyncio.Event) -> int:
        from .ratelimit import RateLimiter
        from .source.discover import genre_list
        from .tmdb_client import TmdbClient

        async with TmdbClient(settings.tmdb, credentials, RateLimiter(settings.tmdb.rate_limit)) as client:
            for gid, name in await genre_list(client, args.media):
                print(f"{gid:>6}  {name}")
        return 0

    return _run_async(go)


def _run_async(main_coro: Callable[[asyncio.Event], Coroutine[Any, Any, int]]) -> int:
    """Run with SIGTERM/SIGINT handling: the first signal asks for a clean stop, the second cancels."""

    async def wrapper() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signame: str) -> None:
            if stop.is_set():
                log.warning("%s again: stopping now", signame)
                task.cancel()
            else:
                log.warning("%s: finishing in-flight work, then saving progress (again to stop now)", signame)
                stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            return await main_coro(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(wrapper())
    except asyncio.CancelledError:
        # Only the second signal cancels the main task; every commit is atomic, so the state is
        # consistent and the next run resumes.
        print("harvester: stopped at once; progress up to the last commit is saved", file=sys.stderr)
        return Interrupted.exit_code
