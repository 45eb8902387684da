"""Two harvests from one IP: two processes, each at the server's whole limit, sharing one budget.

    python bench/shared_ip.py [--runs 3] [--seconds 60] [--rate-limit 40] [--limit 40]
                              [--latency-ms 100 200] [--stagger 0] [--ratio 1] [--timeline 5] [--logs DIR]

Two real CLIs (`python -m harvester run`, each through a launcher of its own: bench/launch.py) are
started together against one TMDB stand-in process that allows `--limit` requests in any 1 s window
and counts the ones it refuses too (as TMDB appears to); each is configured at `--rate-limit`, as if it
had the whole budget to itself; `--stagger` starts the second that many seconds after the first. Each
harvests its own movies.csv (other titles; the same size, sized for `--seconds` of the two together at
the full rate, unless `--ratio` makes the second's that many times the first's) into a bucket of its
own on moto's S3 server (a thread of this script). Every figure comes from the stand-in's counters and
the two summaries:

* together: first request to the first harvest's exit (both were running), and first to last request
  (the second running alone at the end): requests / s over the limit, 429s per 1,000 requests;
* each harvest's share of the requests while both ran (the first one to finish made all of its
  requests then; the other made the rest), its 429s and exit code.

A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cage import Timeline
from common import PREFIX, fake_aws, toml
from lake import Lake
from launch import Child, Launcher
from report import progress
from standin_proc import Standin, arrival_rate, standin

from tmdb_standin import DEFAULT_TOKEN, Written, write_movies_csv

REQUESTS_PER_MOVIE = 1.10  # the stand-in's catalogue with lookup = "direct" (see rate.py)
NAMES = ("a", "b")


@dataclass(frozen=True)
class Ended:
    """One harvest process at its end, and the stand-in's counters at that moment."""

    name: str
    child: Child
    standin: dict[str, Any]  # its counters since the pair started
    summary: dict[str, Any]


@dataclass(frozen=True)
class PairRun:
    first: Ended  # the one that ended first
    second: Ended

    @property
    def both(self) -> dict[str, Any]:
        return self.first.standin  # the counters when the first ended: both were running till then

    @property
    def whole(self) -> dict[str, Any]:
        return self.second.standin

    def share(self, e: Ended) -> float:
        """`e`'s share of the requests the stand-in saw while both were running."""
        mine = int(self.first.summary.get("requests", 0))
        return (mine if e is self.first else self.both["requests"] - mine) / self.both["requests"]

    def row(self, limit: float) -> str:
        b, w = self.both, self.whole
        by_name = sorted((self.first, self.second), key=lambda e: e.name)
        cells = (
            f"{arrival_rate(b) / limit:.3f}",
            f"{per_k(b):.2f} ({b['rate_limited']}/{b['requests']})",
            f"{arrival_rate(w) / limit:.3f}",
            f"{per_k(w):.2f} ({w['rate_limited']}/{w['requests']})",
            " / ".join(f"{self.share(e):.3f}" for e in by_name),
            " / ".join(f"{e.summary.get('throttled', '?')}" for e in by_name),
            " / ".join(f"{e.child.wall_s:.0f} s" for e in by_name),
            " / ".join(f"{e.child.code}" for e in by_name),
        )
        return " | ".join(c.rjust(len(h)) for c, h in zip(cells, HEADER, strict=True))


HEADER = (
    "both: rate / limit",
    "429s per 1,000 (both)",
    "all: rate / limit",
    "429s per 1,000 (all)",
    "share a / b",
    "429s a / b",
    "wall a / b",
    "exit a / b",
)


def per_k(s: dict[str, Any]) -> float:
    return s["rate_limited"] / s["requests"] * 1000 if s["requests"] else math.nan


class Pair:
    """Two launchers (one command each at a time) and moto, made in that order: the launchers fork."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.launchers = [Launcher() for _ in NAMES]
        self.lake = Lake()

    def close(self) -> None:
        self.lake.close()
        for launcher in self.launchers:
            launcher.close()

    def run(self, label: str, tmdb: Standin, csvs: list[Written], args: argparse.Namespace) -> PairRun:
        cmds, buckets = [], []
        for name, csv in zip(NAMES, csvs, strict=True):
            bucket = self.lake.new_bucket(f"{label}-{name}")
            cfg = self.tmp / f"{label}-{name}.toml"
            tmdb_cfg = {
                "base_url": tmdb.base_url,
                "rate_limit": args.rate_limit,
                "concurrency": args.concurrency,
            }
            sink_cfg = {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": self.lake.endpoint}
            cfg.write_text(toml({"tmdb": tmdb_cfg, "source": {"path": str(csv.path)}, "sink": sink_cfg}))
            cmds.append([sys.executable, "-m", "harvester", "run", str(cfg), "--no-progress"])
            buckets.append(bucket)
        env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
        ended: list[tuple[str, Child, dict[str, Any]]] = []  # in the order they ended
        lock = threading.Lock()

        def harvest(i: int) -> None:
            time.sleep(args.stagger * i)
            child = self.launchers[i].run(cmds[i], self.tmp / f"{label}-{NAMES[i]}", env)
            stats = tmdb.stats()
            with lock:
                ended.append((NAMES[i], child, stats))

        tmdb.reset()
        sizes = " and ".join(str(c.ids) for c in csvs)
        progress(f"{label}: two harvests of {sizes} movies, rate_limit {args.rate_limit:g} each")
        timeline = Timeline(tmdb, min(0.5, args.timeline / 2)) if args.timeline else None
        threads = [threading.Thread(target=harvest, args=(i,)) for i in range(len(NAMES))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if timeline is not None:
            timeline.stop()
        results = []
        for name, child, stats in ended:
            bucket = buckets[NAMES.index(name)]
            summary = self.lake.summary(bucket)
            self.lake.empty(bucket)
            if child.code != 0:
                progress(f"{label}-{name}: harvester exited {child.code}: {child.stderr[-1500:]}")
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                (args.logs / f"{label}-{name}.err").write_text(child.stderr)
            results.append(Ended(name, child, stats, summary))
        run = PairRun(*results)
        progress(f"{label}: {run.row(args.limit)}")
        if timeline is not None:
            s = run.whole
            steps = timeline.render(s["first_arrival"], s["last_arrival"], args.limit, args.timeline)
            progress(f"{label}: rate / limit every {args.timeline:g} s from the first request: {steps}")
        return run


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1, help="pairs to run, one after the other")
    ap.add_argument("--seconds", type=float, default=60, help="the pair's length at the full rate")
    ap.add_argument("--limit", type=float, default=40, help="the stand-in's requests per 1 s window")
    ap.add_argument("--latency-ms", type=float, nargs=2, default=(100, 200), metavar=("MIN", "MAX"))
    ap.add_argument("--rate-limit", type=float, default=40, help="each harvester's tmdb.rate_limit")
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--stagger", type=float, default=0, help="seconds between the two starts")
    ap.add_argument("--ratio", type=float, default=1, help="the second harvest's movies over the first's")
    ap.add_argument("--timeline", type=float, default=0, metavar="S", help="print the rate every S s")
    ap.add_argument("--logs", type=Path, help="keep each harvest's stderr (its log) here")
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    movies = math.ceil(args.seconds * args.limit * 0.98 / REQUESTS_PER_MOVIE / (1 + args.ratio))
    sizes = (movies, math.ceil(movies * args.ratio))
    load = os.getloadavg()
    runs: list[PairRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-shared-ip-") as d:
        tmp = Path(d)
        fake_aws(tmp)
        pair = Pair(tmp)
        try:
            with standin(args.limit, tuple(args.latency_ms)) as tmdb:
                csvs = [write_movies_csv(tmp / f"{n}.csv", sizes[i], seed=i + 1) for i, n in enumerate(NAMES)]
                for i in range(args.runs):
                    runs.append(pair.run(f"pair{i + 1}", tmdb, csvs, args))
        finally:
            pair.close()
    lo, hi = args.latency_ms
    print(
        f"\nstand-in: {args.limit:g} requests in any 1 s window (refused ones counted), latency "
        f"{lo:g}-{hi:g} ms; two harvesters started {args.stagger:g} s apart, each rate_limit "
        f"{args.rate_limit:g}, concurrency {args.concurrency}, {sizes[0]} and {sizes[1]} movies (other "
        "titles), S3 sinks on moto"
    )
    print(" | ".join(HEADER))
    for r in runs:
        print(r.row(args.limit))
    print(
        "\nboth = first request to the first harvest's exit, all = first request to the last; rate = "
        "(requests - 1) / (last - first arrival) at the stand-in; share = a harvest's requests / all "
        "requests while both ran"
    )
    print(f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
