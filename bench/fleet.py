"""Several harvests under one budget, and one harvest in a 128 MB Lambda's cage: issue 17's checks.

    python bench/fleet.py [--only fleet,cage] [--seconds 75] [--cage-rows 12000] [--cage-mb 128]
                          [--limit 40] [--latency-ms 100 200] [--logs DIR] [-v]

`fleet`: one config listing three harvests on one S3 prefix (moto's server, a thread of this script):
a movies.csv, a second movies.csv of other titles (ids from 5,000,000 on) and a discover query (a date
window of the stand-in's universe), run once through the real CLI (`python -m harvester run`, through
bench/launch.py's launcher) against the TMDB stand-in in its own process, strict at `--limit`
requests in any 1 s window (refused ones counted, as TMDB appears to) and 100-200 ms latency. Sized
for about `--seconds` at the full rate. For each harvest: its records in its table folder against
what the stand-in's model says it must hold (csv: the ids csvgen wrote whose kind is a movie; discover:
`tmdb_standin.discover.discover_ids` of the same query), complete and exactly once.

`cage`: one harvest (a config of one, as before issue 17) of a `--cage-rows` movies.csv, run in the
cgroup v1 pair of bench/cage.py sized like a `--cage-mb` Lambda (7.2% of a core for 128 MB). Needs root.

Both print the achieved rate from TMDB's first request to its last (the stand-in's first and last
arrival) over the limit, 429s per 1,000 requests, and the start-up at the limit: the gap from TMDB's
first request (the credential check) to its second (the first lookup), and the stand-in's arrivals in
each of the first seconds from its first. The stand-in's stats have no arrivals by second, so they
are read by polling its counters (requests, last_arrival) every few ms for the first seconds: a poll
that saw n requests, the last at t_n, sent at p, says that exactly n arrived before any B in (t_n, p];
each count is printed exact when a poll pins it, else as the range the polls leave.
A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cage import CageReadings, cage
from common import PREFIX, toml
from harness import bench_env
from lake import Lake
from launch import Child, Launcher
from report import progress
from standin_proc import Standin, arrival_rate, standin

from tmdb_standin import DEFAULT_TOKEN, StandinConfig, kind_of, movie_ids, write_movies_csv
from tmdb_standin.discover import discover_ids, discover_universe

REQUESTS_PER_MOVIE = 1.10  # the stand-in's catalogue with lookup = "direct" (see rate.py)
REQUESTS_PER_LISTED = 1.05  # discover: a details request per title and a page per 20
ROWS_PER_MOVIE = 3.5  # mean of csvgen's rows_per_movie=(1, 6)
FOUND = ("movie", "direct_404", "direct_wrong")  # kinds a movie lookup finds (tests/harvest_helpers.py)
SHARES = {"movies-a": 0.40, "movies-b": 0.35, "listing": 0.25}  # of the fleet's requests
DISCOVER_FROM = "2012-01-01"
FIRST_SECONDS = 3  # arrivals by second printed for these
STEADY_FROM_S = 5.0  # the steady state's rate: from this long after the first request to the last


# ---------------------------------------------------------------------------------------------
# The stand-in's arrivals in the first seconds


# Polls from a process of its own: in this one it would take the GIL from moto's S3 server.
_POLLER = """
import json, sys, time, urllib.request
url, span, every = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
while True:
    time.sleep(every)
    sent = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        s = json.loads(answer.read())
    print(json.dumps([sent, s["requests"], s["last_arrival"]]), flush=True)
    if s["first_arrival"] and sent > s["first_arrival"] + span:
        break
"""


class Arrivals:
    """Polls the stand-in's counters every `every` s until `span` s after its first request: each
    sample is (poll sent at, requests, last_arrival), the stand-in's clock being this one
    (CLOCK_MONOTONIC, system-wide)."""

    def __init__(self, tmdb: Standin, span: float, every: float = 0.01) -> None:
        self.samples: list[tuple[float, int, float]] = []
        url = f"{tmdb.base_url.removesuffix('/3')}/__standin__/stats"
        cmd = [sys.executable, "-c", _POLLER, url, str(span), str(every)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        for line in out.splitlines():
            try:
                sent, n, last = json.loads(line)
            except ValueError:  # the line cut by the terminate
                continue
            self.samples.append((float(sent), int(n), float(last)))

    def before(self, at: float) -> tuple[int, int]:
        """(least, most) arrivals before `at` that the samples allow."""
        lo, hi = 0, math.inf
        for sent, n, last in self.samples:
            if last < at:
                lo = max(lo, n)  # n arrivals up to `last`, none between `last` and `sent`
                if at <= sent:
                    hi = min(hi, n)
            else:
                hi = min(hi, n - 1)  # the n-th came at or after `at`
        return lo, int(hi) if hi != math.inf else lo

    def second_request(self, first: float) -> str:
        """Seconds from the first arrival to the second, exact if a poll saw exactly two."""
        for _, n, last in self.samples:
            if n == 2:
                return f"{last - first:.3f} s"
            if n > 2:
                return f"<= {last - first:.3f} s (no poll saw exactly 2)"
        return "?"

    def by_second(self, first: float, seconds: int) -> list[str]:
        out = []
        for k in range(seconds):
            lo0, hi0 = self.before(first + k) if k else (0, 0)
            lo1, hi1 = self.before(first + k + 1)
            lo, hi = max(0, lo1 - hi0), hi1 - lo0
            out.append(f"{lo}" if lo == hi else f"{lo}-{hi}")
        return out


@dataclass(frozen=True)
class Pace:
    """What the stand-in saw of one run."""

    stats: dict[str, Any]
    second_request: str
    first_seconds: list[str]
    steady: float  # requests / s from STEADY_FROM_S after the first request to the last

    @classmethod
    def of(cls, stats: dict[str, Any], arrivals: Arrivals, seconds: int) -> Pace:
        first, last = stats["first_arrival"], stats["last_arrival"]
        lo, hi = arrivals.before(first + STEADY_FROM_S)
        steady_s = last - first - STEADY_FROM_S
        steady = (stats["requests"] - (lo + hi) / 2 - 1) / steady_s if steady_s > 0 else math.nan
        return cls(
            stats,
            arrivals.second_request(first),
            arrivals.by_second(first, max(seconds, FIRST_SECONDS)),
            steady,
        )

    def lines(self, limit: float) -> list[str]:
        s = self.stats
        rate = arrival_rate(s)
        per_k = s["rate_limited"] / s["requests"] * 1000 if s["requests"] else math.nan
        return [
            f"requests {s['requests']} in {s['last_arrival'] - s['first_arrival']:.1f} s (first to last "
            f"arrival), by route {routes(s)}",
            f"achieved rate / limit  {rate / limit:.3f} ({rate:.2f}/s), first request to last",
            f"steady state / limit   {self.steady / limit:.3f}, from {STEADY_FROM_S:g} s after the first "
            "request to the last",
            f"429s                   {s['rate_limited']} ({per_k:.2f} per 1,000 requests); most arrivals "
            f"in any 1 s window {s['max_window']}",
            f"start-up at the limit  first request to the second: {self.second_request}; arrivals in "
            f"seconds 1..{len(self.first_seconds)} from the first: {', '.join(self.first_seconds)}",
        ]


def routes(s: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(s["by_route"].items(), key=lambda kv: -kv[1]) if v)


# ---------------------------------------------------------------------------------------------
# What each harvest must hold, and what it holds


@dataclass(frozen=True)
class Table:
    name: str
    folder: str  # under PREFIX: "<name>/" in a list, "" for a config of one harvest
    field: str  # the record's id field the expectation is in
    expected: frozenset[str]
    source: dict[str, Any]  # its [source] table


def csv_table(name: str, folder: str, path: Path, movies: int, seed: int, start_id: int) -> Table:
    written = write_movies_csv(path, movies, seed=seed, start_id=start_id)
    expected = frozenset(i for i in movie_ids(movies, seed, start_id) if kind_of(i) in FOUND)
    progress(f"{name}: {written.rows} rows, {written.ids} movies, {len(expected)} of them found by TMDB")
    return Table(name, folder, "imdb_id", expected, {"type": "csv", "path": str(path)})


def discover_table(name: str, folder: str, titles: int) -> Table:
    """A discover query of about `titles` movies: a date window of the stand-in's default universe."""
    model = StandinConfig()  # the stand-in process's defaults: the same universe
    dates = sorted(
        t.date for t in discover_universe("movie", model) if not t.adult and t.date >= DISCOVER_FROM
    )
    date_to = dates[min(titles, len(dates)) - 1]
    ids = discover_ids("movie", model, date_gte=DISCOVER_FROM, date_lte=date_to)
    progress(f"{name}: discover movies {DISCOVER_FROM} to {date_to}, {len(ids)} titles")
    source = {"type": "discover", "media": "movie", "date_from": DISCOVER_FROM, "date_to": date_to}
    return Table(name, folder, "id", frozenset(str(i) for i in ids), source)


def warm_discover(tmdb: Standin) -> None:
    """Builds the stand-in's discover universe before the run: it does so at its first discover query,
    in its event loop (about a second for the default 60,000 movies), and the requests that arrive
    meanwhile are then counted at once, more than its limit in one window. Another query than the
    harvest's: that one's own first page (tens of ms) stays in the run."""
    url = f"{tmdb.base_url}/discover/movie"
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    t0 = time.monotonic()
    urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60).read()
    progress(f"stand-in's discover universe built in {time.monotonic() - t0:.2f} s (before the run)")


@dataclass(frozen=True)
class Held:
    table: Table
    counts: Counter[str]  # id -> records
    summary: dict[str, Any]

    @property
    def complete(self) -> bool:
        return set(self.counts) == self.table.expected

    @property
    def once(self) -> bool:
        return not self.counts or max(self.counts.values()) == 1

    def line(self) -> str:
        t, c, s = self.table, self.counts, self.summary
        missing, extra = len(t.expected - set(c)), len(set(c) - t.expected)
        twice = sum(1 for v in c.values() if v > 1)
        return (
            f"{t.name:9} {s.get('status', '?'):10} records {sum(c.values())} of {len(t.expected)} expected: "
            f"{'complete' if self.complete else f'NOT complete ({missing} missing, {extra} unexpected)'}, "
            f"{'exactly once' if self.once else f'NOT exactly once ({twice} ids twice or more)'}; "
            f"requests {s.get('requests', '?')}, 429s {s.get('throttled', '?')}, "
            f"elapsed {s.get('elapsed_s', math.nan):.1f} s"
        )


def held(lake: Lake, bucket: str, table: Table, state: str) -> Held:
    """The records of `table`'s folder by id, and the summary of the run its state names."""
    counts: Counter[str] = Counter()
    root = f"{PREFIX}/{table.folder}"
    for key in lake.keys(bucket):
        rel = key[len(PREFIX) + 1 :]
        if not key.startswith(root) or rel.startswith(("_harvest/", "_reference/")):  # not the table's
            continue
        body = lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        records = (
            [json.loads(x) for x in body.splitlines() if x] if key.endswith(".jsonl") else json.loads(body)
        )
        counts.update(str(r[table.field]) for r in records)
    summary: dict[str, Any] = {}
    try:
        raw = lake.s3.get_object(Bucket=bucket, Key=f"{PREFIX}/_harvest/state-{state}.json")["Body"].read()
        tag = json.loads(raw)["tag"]
        key = f"{PREFIX}/_harvest/{tag}/summary.json"
        summary = json.loads(lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (lake.s3.exceptions.NoSuchKey, KeyError) as exc:
        progress(f"{table.name}: no summary ({exc!r})")
    return Held(table, counts, summary)


# ---------------------------------------------------------------------------------------------
# The runs


def harvester_cmd(cfg: Path, args: argparse.Namespace) -> list[str]:
    logs = ["-v", "--log-format", "json"] if args.verbose else []
    return [sys.executable, "-m", "harvester", *logs, "run", str(cfg), "--no-progress"]


def launch(
    launcher: Launcher, tmdb: Standin, cmd: list[str], log: Path, args: argparse.Namespace
) -> tuple[Child, Pace, float]:
    """Runs `cmd` to its end; its child, what the stand-in saw, and the spawn's time."""
    tmdb.reset()
    arrivals = Arrivals(tmdb, span=max(STEADY_FROM_S, args.by_second) + 1)
    spawned = time.monotonic()
    try:
        child = launcher.run(cmd, log, {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN})
    finally:
        arrivals.stop()
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
        (args.logs / f"{log.name}.err").write_text(child.stderr)
        (args.logs / f"{log.name}.out").write_text(child.stdout)
    if child.code != 0:
        progress(f"{log.name}: harvester exited {child.code}: {child.stderr[-1500:]}")
    return child, Pace.of(tmdb.stats(), arrivals, args.by_second), spawned


def run_fleet(tmp: Path, lake: Lake, launcher: Launcher, tmdb: Standin, args: argparse.Namespace) -> None:
    total = args.seconds * args.limit * 0.98
    n_a = round(total * SHARES["movies-a"] / REQUESTS_PER_MOVIE)
    n_b = round(total * SHARES["movies-b"] / REQUESTS_PER_MOVIE)
    tables = [
        csv_table("movies-a", "movies-a/", tmp / "a.csv", n_a, seed=1, start_id=9),
        csv_table("movies-b", "movies-b/", tmp / "b.csv", n_b, seed=2, start_id=5_000_000),
        discover_table("listing", "listing/", round(total * SHARES["listing"] / REQUESTS_PER_LISTED)),
    ]
    warm_discover(tmdb)
    bucket = lake.new_bucket("fleet")
    cfg = tmp / "fleet.toml"
    tmdb_cfg = {"base_url": tmdb.base_url, "rate_limit": args.rate_limit, "concurrency": args.concurrency}
    sink_cfg = {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": lake.endpoint}
    harvests = [{"name": t.name, "source": t.source} for t in tables]
    cfg.write_text(tomli_w.dumps({"tmdb": tmdb_cfg, "sink": sink_cfg, "harvest": harvests}))
    load = os.getloadavg()
    progress(f"fleet: {len(tables)} harvests in one process, rate_limit {args.rate_limit:g}")
    child, pace, spawned = launch(launcher, tmdb, harvester_cmd(cfg, args), tmp / "fleet", args)
    load_after = os.getloadavg()
    results = [held(lake, bucket, t, t.name) for t in tables]
    lake.empty(bucket)
    lo, hi = args.latency_ms
    print(
        f"\n== fleet: one config of {len(tables)} harvests on one prefix, one process; stand-in "
        f"{args.limit:g} requests in any 1 s window (refused ones counted), latency {lo:g}-{hi:g} ms; "
        f"harvester rate_limit {args.rate_limit:g}, concurrency {args.concurrency}, S3 on moto"
    )
    for r in results:
        print(f"  {r.line()}")
    total_line = next((x for x in child.stdout.splitlines() if x.startswith("== all")), "(no total line)")
    print(
        f"  CLI: {total_line}; exit {child.code}, wall {child.wall_s:.1f} s, CPU {child.cpu_s:.1f} s, "
        f"peak RSS {child.peak_rss_mb:.0f} MB, start-up (spawn to the first request) "
        f"{pace.stats['first_arrival'] - spawned:.2f} s"
    )
    for line in pace.lines(args.limit):
        print(f"  {line}")
    ok = all(r.complete and r.once for r in results)
    s = pace.stats
    print(
        f"  targets: complete and exactly once {'met' if ok else 'NOT met'}; rate / limit >= 0.96 "
        f"{'met' if arrival_rate(s) / args.limit >= 0.96 else 'NOT met'}; <= 1 429 per 1,000 "
        f"{'met' if s['rate_limited'] * 1000 <= s['requests'] else 'NOT met'}"
    )
    print(f"  load average (1 min) {load[0]:.2f} before, {load_after[0]:.2f} after")


def run_cage(tmp: Path, lake: Lake, launcher: Launcher, tmdb: Standin, args: argparse.Namespace) -> None:
    movies = round(args.cage_rows / ROWS_PER_MOVIE)
    table = csv_table("single", "", tmp / "cage.csv", movies, seed=1, start_id=9)
    bucket = lake.new_bucket(f"cage-{args.cage_mb}")
    cfg = tmp / "cage.toml"
    tmdb_cfg = {"base_url": tmdb.base_url, "rate_limit": args.rate_limit, "concurrency": args.concurrency}
    sink_cfg = {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": lake.endpoint}
    cfg.write_text(toml({"tmdb": tmdb_cfg, "source": table.source, "sink": sink_cfg}))
    load = os.getloadavg()
    progress(f"cage: one harvest in a {args.cage_mb} MB Lambda's cgroup, rate_limit {args.rate_limit:g}")
    with cage(f"harvester-bench-fleet-{os.getpid()}", args.cage_mb) as c:
        child, pace, spawned = launch(launcher, tmdb, c.wrap(harvester_cmd(cfg, args)), tmp / "cage", args)
        readings: CageReadings = c.readings()
    load_after = os.getloadavg()
    result = held(lake, bucket, table, "csv-movie")
    lake.empty(bucket)
    lo, hi = args.latency_ms
    quota = c.quota_us / 1000
    print(
        f"\n== cage: one harvest (a config of one) of a {args.cage_rows}-row movies.csv in a "
        f"{args.cage_mb} MB Lambda's cgroup (CPU {quota:g} ms per 100 ms, memory {args.cage_mb} MiB); "
        f"stand-in {args.limit:g} requests in any 1 s window, latency {lo:g}-{hi:g} ms; "
        f"rate_limit {args.rate_limit:g}, "
        f"concurrency {args.concurrency}, S3 on moto"
    )
    print(f"  {result.line()}")
    print(
        f"  exit {child.code}, wall {child.wall_s:.1f} s, CPU {child.cpu_s:.1f} s, start-up (spawn to the "
        f"first request) {pace.stats['first_arrival'] - spawned:.2f} s; cgroup peak memory "
        f"{readings.peak_memory_mib:.1f} MiB (page cache included), peak RSS {child.peak_rss_mb:.0f} MB; "
        f"throttled periods {readings.throttled}/{readings.periods} ({readings.throttled_s:.1f} s)"
    )
    for line in pace.lines(args.limit):
        print(f"  {line}")
    s = pace.stats
    print(
        f"  targets: rate / limit >= 0.95 {'met' if arrival_rate(s) / args.limit >= 0.95 else 'NOT met'}; "
        f"no 429 {'met' if s['rate_limited'] == 0 else 'NOT met'}"
    )
    print(f"  load average (1 min) {load[0]:.2f} before, {load_after[0]:.2f} after")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="fleet,cage", help="which runs: fleet, cage (default both)")
    ap.add_argument("--seconds", type=float, default=75, help="the fleet's length at the full rate")
    ap.add_argument("--cage-rows", type=int, default=12_000, help="rows of the caged harvest's movies.csv")
    ap.add_argument("--cage-mb", type=int, default=128, help="the Lambda size the cage is made like")
    ap.add_argument("--limit", type=float, default=40, help="the stand-in's requests per 1 s window")
    ap.add_argument("--latency-ms", type=float, nargs=2, default=(100, 200), metavar=("MIN", "MAX"))
    ap.add_argument("--rate-limit", type=float, default=40, help="the harvester's tmdb.rate_limit")
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument(
        "--by-second",
        type=int,
        default=FIRST_SECONDS,
        metavar="N",
        help=f"print the arrivals in each of the first N seconds (default {FIRST_SECONDS}; polls that long)",
    )
    ap.add_argument("--logs", type=Path, help="keep each run's stderr and stdout here")
    ap.add_argument(
        "-v", "--verbose", action="store_true", help="run the harvester with -v --log-format json"
    )
    args = ap.parse_args(argv)
    args.only = {x.strip() for x in args.only.split(",") if x.strip()}
    if args.only - {"fleet", "cage"}:
        ap.error(f"--only takes fleet and cage, not {', '.join(sorted(args.only - {'fleet', 'cage'}))}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if "cage" in args.only and (
        os.geteuid() != 0 or not Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists()
    ):
        print(
            "bench/fleet.py: the cage run needs root and cgroup v1 (--only fleet runs without)",
            file=sys.stderr,
        )
        return 2
    with (
        bench_env("bench-fleet-") as (tmp, lake, launcher),
        standin(args.limit, tuple(args.latency_ms)) as tmdb,
    ):
        if "fleet" in args.only:
            run_fleet(tmp, lake, launcher, tmdb, args)
        if "cage" in args.only:
            run_cage(tmp, lake, launcher, tmdb, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
