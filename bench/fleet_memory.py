"""Peak memory of one harvest against ten in one process: flat in the number of harvests?

    python bench/fleet_memory.py [--harvests 10] [--titles 300] [--repeat 1] [--latency-ms 20 30]
                                 [--limit 400]

Runs the real CLI (`python -m harvester run`, through bench/launch.py's launcher, so the peak RSS is the
harvester process's own: ru_maxrss from os.wait4) three ways, each into a fresh bucket on moto's S3
server (a thread of this script), against the TMDB stand-in in its own process at a generous rate:

* empty: a config of one harvest whose movies.csv has no rows (interpreter, imports, preflight, state);
* one: a config of one harvest of `--titles` movies;
* N: one config listing `--harvests` such harvests (`[[harvest]]`, other titles each), run at once
  under one rate limiter and one connection pool.

Prints each peak RSS, the ratio N / one (target < 2) and the cost of each harvest above the empty run.
What a harvest holds when it completes weighs most here: the bitmap of its TMDB ids (lake/selection.py,
the largest id / 8 bytes), 12.5 MB for the stand-in's ids, which reach 10^8 (TMDB's stop near 1.5
million: 190 KB); harvests that complete together hold theirs at once.
A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from common import PREFIX
from harness import bench_env
from lake import Lake
from launch import Child, Launcher
from report import progress
from standin_proc import Standin, standin

from tmdb_standin import DEFAULT_TOKEN, write_movies_csv

ID_STEP = 40  # csvgen's largest step between two ids: harvest i starts past harvest i-1's last id


@dataclass(frozen=True)
class MemoryRun:
    label: str
    harvests: int
    titles: int  # in all the inputs
    child: Child
    requests: int  # the stand-in's

    @property
    def total(self) -> str:
        lines = self.child.stdout.splitlines()
        done = next((x for x in lines if x.startswith("== all")), "")
        if done:
            return done.removeprefix("== ")
        return next((x.strip() for x in lines if x.startswith("status")), "?")


def run(
    label: str, tmp: Path, lake: Lake, launcher: Launcher, tmdb: Standin, doc: dict[str, Any], titles: int
) -> MemoryRun:
    bucket = lake.new_bucket(label)
    doc = {**doc, "sink": {**doc["sink"], "url": f"s3://{bucket}/{PREFIX}", "endpoint_url": lake.endpoint}}
    cfg = tmp / f"{label}.toml"
    cfg.write_text(tomli_w.dumps(doc))
    tmdb.reset()
    cmd = [sys.executable, "-m", "harvester", "run", str(cfg), "--no-progress"]
    child = launcher.run(cmd, tmp / label, {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN})
    lake.empty(bucket)
    if child.code != 0:
        progress(f"{label}: harvester exited {child.code}: {child.stderr[-1500:]}")
    harvests = len(doc.get("harvest", [])) or 1
    result = MemoryRun(label, harvests, titles, child, tmdb.stats()["requests"])
    progress(f"{label}: peak RSS {child.peak_rss_mb:.1f} MB, {child.wall_s:.1f} s, {result.total}")
    return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harvests", type=int, default=10, help="harvests in the listed config (default 10)")
    ap.add_argument("--titles", type=int, default=300, help="movies in each harvest's movies.csv")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each kind")
    ap.add_argument("--limit", type=float, default=400, help="the stand-in's and the harvester's rate")
    ap.add_argument("--latency-ms", type=float, nargs=2, default=(20, 30), metavar=("MIN", "MAX"))
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--chunk-size", type=int, default=100, help="sink.chunk_size: records per data object")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    runs: list[MemoryRun] = []
    with (
        bench_env("bench-fleet-memory-") as (tmp, lake, launcher),
        standin(args.limit, args.latency_ms) as tmdb,
    ):
        tmdb_cfg = {"base_url": tmdb.base_url, "rate_limit": args.limit, "concurrency": args.concurrency}
        shared = {"tmdb": tmdb_cfg, "sink": {"chunk_size": args.chunk_size}}
        csvs = [
            write_movies_csv(tmp / f"h{i}.csv", args.titles, seed=i, start_id=9 + i * args.titles * ID_STEP)
            for i in range(args.harvests)
        ]
        empty = write_movies_csv(tmp / "empty.csv", 0)
        progress(f"wrote {len(csvs)} movies.csv of {args.titles} movies ({csvs[0].rows} rows in the first)")
        listed = [{"name": f"h{i}", "source": {"path": str(c.path)}} for i, c in enumerate(csvs)]
        for k in range(args.repeat):
            nothing = {**shared, "source": {"path": str(empty.path)}}
            runs.append(run(f"empty-{k}", tmp, lake, launcher, tmdb, nothing, 0))
            one = {**shared, "source": {"path": str(csvs[0].path)}}
            runs.append(run(f"one-{k}", tmp, lake, launcher, tmdb, one, args.titles))
            many = {**shared, "harvest": listed}
            runs.append(run(f"many-{k}", tmp, lake, launcher, tmdb, many, args.titles * args.harvests))
    lo, hi = args.latency_ms
    print(
        f"\nstand-in {args.limit:g} requests/s, latency {lo:g}-{hi:g} ms; harvester rate_limit "
        f"{args.limit:g}, concurrency {args.concurrency}, chunk_size {args.chunk_size}, S3 on moto; "
        "peak RSS = ru_maxrss of the harvester process (os.wait4)"
    )
    print(" run     | harvests | titles | peak RSS  | wall   | requests | exit | summary")
    for r in runs:
        print(
            f" {r.label:7} | {r.harvests:8} | {r.titles:6} | {r.child.peak_rss_mb:6.1f} MB | "
            f"{r.child.wall_s:5.1f} s | {r.requests:8} | {r.child.code:4} | {r.total}"
        )
    empty_peak = min(r.child.peak_rss_mb for r in runs if r.label.startswith("empty"))
    many_peak = max(r.child.peak_rss_mb for r in runs if r.label.startswith("many"))
    one_peak = max(r.child.peak_rss_mb for r in runs if r.label.startswith("one"))
    ratio = many_peak / one_peak
    above_one, above_many = one_peak - empty_peak, many_peak - empty_peak
    print(
        f"\n{args.harvests} harvests / one: {ratio:.2f}x ({many_peak:.1f} MB / {one_peak:.1f} MB; "
        f"target < 2x: {'met' if ratio < 2 else 'NOT met'})\nabove the empty run ({empty_peak:.1f} MB): "
        f"one harvest {above_one:.1f} MB, {args.harvests} harvests {above_many:.1f} MB, "
        f"{above_many / args.harvests:.1f} MB a harvest"
    )
    print(f"load average (1 min) {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
