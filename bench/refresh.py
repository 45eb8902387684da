"""Keeping the lake current: what a daily refresh costs against a full re-harvest (issue 10).

    python bench/refresh.py [--movies 100000] [--changed-share 0.01] [--new-share 0.001]
                            [--gone-share 0.0005] [--clock auto|real|patched]

1. A stand-in process at its day 0 (yesterday, UTC, at 12:00) serves an export of `--movies` movies;
   `python -m harvester run` harvests all of it unpaced (no rate limit, no latency, `append = []`)
   into a local directory.
2. That stand-in stops, and another starts on the same port with `--day 1` (today): the same seed and
   base date, hence the same catalogue, moved one day (`--changed-share` of it changed, a few titles
   new and gone), now at TMDB's pace (40 req/s, 100-200 ms latency).
3. `python -m harvester refresh` at `rate_limit` 40.

The refresh's requests come from the day-1 stand-in's counters (change-list answers are counted in
the movie route too); what it should take is computed from the stand-in's day model
(tmdb_standin.days, tmdb_standin.exports), not from the harvester. The harvester reads "today's"
export only from 08:00 UTC of its own clock: before that (or with `--clock patched`) both harvester
commands run as `python -c SHIM ...`, the same CLI with `harvester.source.export.utc_now` answering
today 12:00 UTC. A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from common import fake_aws, toml
from report import Report, progress
from standin_proc import standin_process

from harvester.source.export_stream import DownloadCounts, blocks
from tmdb_standin import DEFAULT_TOKEN, StandinConfig
from tmdb_standin import days as standin_days
from tmdb_standin import exports as standin_exports

REFRESH_RATE = 40.0  # TMDB's limit: the refresh runs at it, and the full re-harvest is projected at it
REFRESH_LATENCY_MS = (100.0, 200.0)
ACHIEVABLE = 0.97  # share of the limit a long harvest achieves (README, Performance)
SLACK = 1.02  # the bound's allowance for retries
# The harvester's CLI with the export source's clock at today 12:00 UTC (today's file is out from 08:00).
SHIM = (
    "import sys; from datetime import UTC, datetime, time; import harvester.source.export as e; "
    "noon = datetime.combine(datetime.now(UTC).date(), time(12), UTC); e.utc_now = lambda: noon; "
    "from harvester.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Catalogue:
    """The stand-in's options that fix its catalogue (the same for both processes)."""

    movies: int
    base_date: date
    changed_share: float
    new_share: float
    gone_share: float

    def args(self) -> list[str]:
        return [
            *("--base-date", self.base_date.isoformat(), "--hour", "12"),
            *("--export-movies", str(self.movies), "--seed", "0"),
            *("--changed-share", f"{self.changed_share:g}", "--new-share", f"{self.new_share:g}"),
            *("--gone-share", f"{self.gone_share:g}"),
        ]

    def config(self) -> StandinConfig:
        """The same catalogue in this process, for the day model's helpers."""
        return StandinConfig(
            base_date=self.base_date,
            export_movies=self.movies,
            changed_share=self.changed_share,
            new_share=self.new_share,
            gone_share=self.gone_share,
        )


@dataclass(frozen=True)
class Expected:
    """What day 1 did to the harvest, from the day model: changed titles it holds, entered, left."""

    changed: int
    entered: int
    left: int
    listed: int  # the day's change list (changed, appeared, gone)


@dataclass(frozen=True)
class Ran:
    started: float  # epoch seconds, as the log's timestamps
    wall_s: float
    stderr: str

    def phases(self) -> tuple[float, float, float, float]:
        """A refresh's seconds: start-up to its new run, planning, details, then finishing (from its
        JSON log: the new run, the plan, the last commit, the exit)."""
        marks: dict[str, float] = {}
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            event = orjson.loads(line)
            message, at = str(event.get("message", "")), datetime.fromisoformat(event["timestamp"])
            for mark, found in (
                ("run", ": new run " in message),
                ("plan", message.startswith("refresh since ")),
                ("commit", message.startswith("committed ")),
            ):
                if found:
                    marks[mark] = at.timestamp()
        end = self.started + self.wall_s
        run, plan = marks["run"], marks["plan"]
        commit = marks.get("commit", plan)
        return run - self.started, plan - run, commit - plan, end - commit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def standin(port: int, args: list[str]) -> Iterator[str]:
    """A stand-in process on `port`; yields its base URL."""
    with standin_process(["--port", str(port), *args]) as base_url:
        progress(f"stand-in up: {' '.join(args)}")
        yield base_url


def stats(base_url: str) -> dict[str, Any]:
    url = base_url.removesuffix("/3") + "/__standin__/stats"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return dict(orjson.loads(answer.read()))


def harvester_cmd(command: str, cfg: Path, patched: bool) -> list[str]:
    entry = ["-c", SHIM] if patched else ["-m", "harvester"]
    return [sys.executable, *entry, "--log-format", "json", command, str(cfg), "--no-progress"]


def run(cmd: list[str], env: dict[str, str]) -> Ran:
    started, start = time.time(), time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd[-3:])} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return Ran(started, time.monotonic() - start, done.stderr)


def write_config(path: Path, base_url: str, lake: Path, rate_limit: float, concurrency: int) -> Path:
    """Only pacing differs between the harvest's and the refresh's configs (pacing may change)."""
    path.write_text(
        toml(
            {
                "tmdb": {
                    "base_url": base_url,
                    "rate_limit": rate_limit,
                    "concurrency": concurrency,
                    "append": [],
                },
                "source": {"type": "export", "export_url": base_url.removesuffix("/3") + "/p/exports"},
                "sink": {"url": str(lake), "chunk_size": 100, "format": "jsonl"},
            }
        )
    )
    return path


def expected(catalogue: Catalogue) -> Expected:
    """The test's reading of the day model (tests/test_refresh.py), for the whole export."""
    cfg = catalogue.config()
    held = set(standin_exports.export_ids(cfg, "movie", 0))
    now = set(standin_exports.export_ids(cfg, "movie", 1))
    changed = set(standin_days.changed_ids(cfg, "movie", 1)) & held & now
    listed = len(standin_days.listed_ids(cfg, "movie", 1))
    return Expected(len(changed), len(now - held), len(held - now), listed)


def runs(lake: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The refresh's plan (from the state), its summary.json and that of the full run it refreshed."""
    harvest_dir = lake / "_harvest"
    state = orjson.loads((harvest_dir / "state-export-movie.json").read_bytes())
    summary = orjson.loads((harvest_dir / state["tag"] / "summary.json").read_bytes())
    full = orjson.loads((harvest_dir / state["base"]["tag"] / "summary.json").read_bytes())
    return dict(state["source"]["plan"]), dict(summary), dict(full)


async def download(url: str) -> tuple[DownloadCounts, float, float]:
    """One pass of the harvester's streaming reader over an export file: counts, wall s, CPU s."""
    counts = DownloadCounts()
    wall, cpu = time.monotonic(), time.process_time()
    async with aclosing(blocks(url, None, counts)) as lines:
        async for _ in lines:
            pass
    return counts, time.monotonic() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--movies", type=int, default=100_000, help="movies in the stand-in's export")
    p.add_argument(
        "--changed-share", type=float, default=0.01, help="share of the catalogue changed on day 1"
    )
    p.add_argument("--new-share", type=float, default=0.001, help="share new on day 1")
    p.add_argument("--gone-share", type=float, default=0.0005, help="share gone on day 1")
    p.add_argument("--concurrency", type=int, default=24, help="the full harvest's concurrency")
    p.add_argument(
        "--clock",
        choices=["auto", "real", "patched"],
        default="auto",
        help="the harvester's clock for choosing the export: real from 08:00 UTC (auto), else patched",
    )
    args = p.parse_args()
    started = datetime.now(UTC)
    patched = args.clock == "patched" or (args.clock == "auto" and started.hour < 8)
    today = started.date()
    catalogue = Catalogue(
        args.movies, today - timedelta(days=1), args.changed_share, args.new_share, args.gone_share
    )
    load_before = os.getloadavg()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp_name:
        tmp = Path(tmp_name)
        fake_aws(tmp)  # the sink is a local directory: nothing should ask AWS, and nothing could
        env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
        lake = tmp / "lake"

        day0_args = [*catalogue.args(), "--day", "0", "--rate-limit", "0"]
        with standin(port, day0_args) as base_url:
            cfg = write_config(tmp / "full.toml", base_url, lake, 5000.0, args.concurrency)
            progress(f"full harvest of the day-0 export ({args.movies:,} movies, unpaced)")
            full = run(harvester_cmd("run", cfg, patched), env)
            full_stats = stats(base_url)
        progress(f"full harvest: {full_stats['requests']:,} requests in {full.wall_s:.1f} s")

        lo, hi = REFRESH_LATENCY_MS
        paced = ["--rate-limit", f"{REFRESH_RATE:g}", "--latency-ms", f"{lo:g}", f"{hi:g}"]
        day1_args = [*catalogue.args(), "--day", "1", *paced]
        with standin(port, day1_args) as base_url:
            cfg = write_config(tmp / "refresh.toml", base_url, lake, REFRESH_RATE, 20)
            progress("refresh at 40 req/s, 100-200 ms latency")
            refreshed = run(harvester_cmd("refresh", cfg, patched), env)
            refresh_stats = stats(base_url)
            progress(f"refresh: {refresh_stats['requests']:,} requests in {refreshed.wall_s:.1f} s")
            export_url = (
                base_url.removesuffix("/3") + "/p/exports/" + standin_exports.file_name("movie", today)
            )
            counts, dl_wall, dl_cpu = asyncio.run(download(export_url))
        plan, summary, full_summary = runs(lake)
    progress("computing day 1 from the stand-in's day model")
    want = expected(catalogue)
    load_after = os.getloadavg()
    crossed = datetime.now(UTC).date() != today

    pages = int(refresh_stats["changes"])
    details = int(refresh_stats["by_route"]["movie"]) - pages
    other = int(refresh_stats["requests"]) - details - pages
    revisited = int(plan.get("revisited", 0))  # the revisit slices due (none the day the harvest ran)
    bound = SLACK * (want.changed + want.entered + revisited) + pages
    full_requests = int(full_stats["requests"])
    projected_s = full_requests / REFRESH_RATE / ACHIEVABLE
    got = (plan["changed"], plan["entered"], plan["left"])

    f, r = "refresh", Report()
    r.add(f, "full harvest: titles / requests", f"{full_summary['harvested']:,} / {full_requests:,}")
    r.add(f, "full harvest: wall, unpaced", f"{full.wall_s:.1f} s ({full_requests / full.wall_s:.0f} req/s)")
    r.add(
        f,
        "day 1: changed held / entered / left",
        f"{want.changed:,} / {want.entered:,} / {want.left:,}",
        "= the refresh's plan",
        (want.changed, want.entered, want.left) == got,
    )
    r.add(
        f,
        "refresh: details + change pages",
        f"{details:,} + {pages} = {details + pages:,}",
        f"<= {bound:,.1f}",
        details + pages <= bound,
    )
    r.add(
        f,
        "refresh: other requests / 429s / most in 1 s",
        f"{other} / {refresh_stats['rate_limited']} / {refresh_stats['max_window']}",
    )
    r.add(f, "refresh: wall (process / summary)", f"{refreshed.wall_s:.1f} s / {summary['elapsed_s']:.1f} s")
    r.add(
        f, "  start-up / plan / details / finish", " / ".join(f"{s:.1f}" for s in refreshed.phases()) + " s"
    )
    r.add(f, "full re-harvest at 40 req/s, projected", f"{projected_s:,.0f} s ({projected_s / 60:.1f} min)")
    r.add(f, "projected full / refresh wall", f"{projected_s / refreshed.wall_s:.0f}x")
    r.add(
        f,
        "export download, one pass",
        f"{counts.bytes / 1e6:.2f} MB gzip, {counts.records:,} lines, {dl_wall:.2f} s, CPU {dl_cpu:.2f} s",
    )
    r.note(f, f"command: {shlex.join(['python', *sys.argv])}")
    r.note(f, f"stand-in day 0: python -m tmdb_standin standin {shlex.join(day0_args)}")
    r.note(
        f, f"stand-in day 1 (restarted, same port): python -m tmdb_standin standin {shlex.join(day1_args)}"
    )
    entry = "python -c SHIM" if patched else "python -m harvester"
    r.note(f, f"harvester: {entry} --log-format json run|refresh CONFIG --no-progress")
    r.note(
        f,
        "its clock: patched, SHIM sets harvester.source.export.utc_now to today 12:00 UTC"
        if patched
        else "its clock: the real one (after 08:00 UTC, today's export is the latest)",
    )
    r.note(
        f,
        f"full harvest: rate_limit 5000, concurrency {args.concurrency}; refresh: rate_limit 40, "
        "concurrency 20; both append = [], local-directory sink, jsonl chunks of 100",
    )
    r.note(
        f,
        f"day 1 from tmdb_standin.days / exports: changed = changed_ids & export(0) & export(1), "
        f"entered = export(1) - export(0), left = export(0) - export(1); change list {want.listed:,} ids",
    )
    r.note(
        f,
        f"the refresh's own plan: changed {got[0]:,}, entered {got[1]:,}, left {got[2]:,}, "
        f"pages {plan['pages']}; its summary: harvested {summary['harvested']:,}, "
        f"requests {summary['requests']:,}",
    )
    r.note(
        f,
        f"bound = {SLACK} x (changed + entered + revisited) + change pages; "
        "details = by_route movie - changes; "
        "other = the rest (preflight /authentication)",
    )
    r.note(
        f,
        "refresh phases, from its JSON log: process start to its new run (imports, preflight, lease), "
        "planning (change lists, the export listing, set differences), first to last commit, last "
        "commit to exit (completing: the selection folded and stored)",
    )
    r.note(f, f"projection = full harvest's stand-in requests / {REFRESH_RATE:g} / {ACHIEVABLE}")
    r.note(
        f,
        f"export download: the harvester's streaming reader (export_stream.blocks) in this process, "
        f"day-1 file; a full harvest reads it twice (count, then titles), a refresh once; the stand-in "
        f"served {refresh_stats['exports']} export answers (HEAD and GET) to the refresh",
    )
    r.note(
        f,
        "load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
            *load_before, *load_after
        ),
    )
    if crossed:
        r.note(f, "WARNING: the UTC date changed during the run: the figures may not mean what they say")
    print(r.render())


if __name__ == "__main__":
    main()
