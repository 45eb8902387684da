"""A rate_limit configured above the server's real limit: how close the harvester holds to the real one.

    python bench/limit.py [--rates 50,60] [--limit 40] [--movies 2139] [--latency-ms 150 150]

Runs the real CLI (`python -m harvester run`, through bench/launch.py's launcher) against the bundled
TMDB stand-in in its own process, which allows `--limit` requests in any 1 s window and counts the
requests it refuses too (as TMDB appears to); the sink is S3 on moto's server, a thread of this
script. One fresh harvest of the same movies.csv per configured rate. The default 2,139 movies are
about 2,350 requests, a minute at 40/s. Every figure comes from the stand-in's own counters.
A script, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from harness import Bench, bench_env
from report import Report, progress
from standin_proc import arrival_rate, standin

SEED = 1


@dataclass(frozen=True)
class LimitRun:
    rate_limit: float
    requests: int
    rate: float  # requests per second the stand-in saw, first to last arrival
    throttled: int
    max_window: int  # most arrivals in any 1 s window, refused ones included
    harvested: int

    def row(self, limit: float) -> str:
        per_k = self.throttled / self.requests * 1000
        cells = (
            f"{self.rate_limit:g}",
            f"{self.rate / limit:.3f} ({self.rate:.2f}/s)",
            f"{self.throttled} ({per_k:.2f})",
            f"{self.max_window}",
            f"{self.requests}",
            f"{self.harvested}",
        )
        return " | ".join(c.rjust(len(h)) for c, h in zip(cells, HEADER, strict=True))


HEADER = ("rate_limit", "rate / limit     ", "429s (per 1,000)", "max window", "requests", "harvested")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,60", help="the harvester's rate_limit, one run each")
    ap.add_argument("--limit", type=float, default=40, help="the stand-in's requests per 1 s window")
    ap.add_argument("--movies", type=int, default=2139, help="movies in the CSV (2,139: ~2,350 requests)")
    ap.add_argument("--latency-ms", type=float, nargs=2, default=(150, 150), metavar=("MIN", "MAX"))
    ap.add_argument("--concurrency", type=int, default=20)
    args = ap.parse_args(argv)
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    runs: list[LimitRun] = []
    with bench_env("bench-limit-") as (tmp, lake, launcher):
        bench = Bench(tmp, lake, launcher, Report())
        with standin(args.limit, tuple(args.latency_ms)) as tmdb:
            csv = bench.csv("limit", args.movies, seed=SEED)
            for rate in args.rates:
                h = bench.harvest(f"limit-{rate:g}", tmdb, csv, rate_limit=rate, concurrency=args.concurrency)
                s = h.standin
                run = LimitRun(
                    rate_limit=rate,
                    requests=s["requests"],
                    rate=arrival_rate(s),
                    throttled=s["rate_limited"],
                    max_window=s["max_window"],
                    harvested=int(h.summary.get("harvested", 0)),
                )
                progress(f"limit-{rate:g}: {run.row(args.limit)}")
                runs.append(run)
    lo, hi = args.latency_ms
    print(
        f"\nstand-in: {args.limit:g} requests in any 1 s window (refused ones counted), latency "
        f"{lo:g}-{hi:g} ms; harvester: concurrency {args.concurrency}, {args.movies} movies, S3 sink on moto"
    )
    print(" | ".join(HEADER))
    for r in runs:
        print(r.row(args.limit))
    print(
        "\nrate = (requests - 1) / (last - first arrival) at the stand-in, over its limit; max window = the "
        "most arrivals it saw in any 1 s window"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
