"""`python -m tmdb_standin demo | standin`: the stand-in's own program.

`python -m harvester demo ...` and `python -m harvester standin ...` hand their whole command line
over to this program (the harvester never imports the stand-in), so both spellings behave alike.
`serve` is another name for `standin`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

# The demo is a run of the harvester: its logging, signal handling and error lines are the harvester's.
from harvester.command import run_command
from harvester.config import Credentials
from harvester.ops.logs import setup_logging

from .demo import run_demo
from .server import main_standin

SERVE_COMMANDS = ("standin", "serve")

log = logging.getLogger("harvester")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmdb_standin", description="A local stand-in for the TMDB API, and the harvester's demo on it."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (demo)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="harvest a generated movies.csv from the TMDB stand-in")
    demo.add_argument("--movies", type=int, default=500, help="distinct movies to generate (default 500)")
    demo.add_argument("--out", default="demo-output", help="local directory for the input and the lake")
    demo.add_argument("--rate-limit", type=float, default=40.0, help="requests per second (default 40)")

    # Listed for --help only: main() hands `standin ...` to the server's own parser.
    sub.add_parser("standin", aliases=["serve"], help="serve the stand-in (for benchmarks)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse's REMAINDER does not pass options (`standin --port 0`) through a subcommand: hand the
    # server's parser everything after the command's name, wherever the global options put it.
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command_at is not None and argv[command_at] in SERVE_COMMANDS:
        return main_standin(argv[command_at + 1 :])
    args = build_parser().parse_args(argv)
    return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    secrets = Credentials.from_env().secrets()
    setup_logging(args.verbose, secrets)
    return run_command(
        lambda stop: run_demo(args.movies, args.out, args.rate_limit, stop),
        verbose=args.verbose,
        secrets=secrets,
    )


if __name__ == "__main__":
    raise SystemExit(main())
