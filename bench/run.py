"""Throughput, CPU, memory and baselines of the harvester, measured in one run and printed as one table.

    python bench/run.py [--only rate,cpu,memory,baselines] [--rate-seconds 65] [--cpu-movies 5000] ...

Runs the real CLI (`python -m harvester run cfg.toml`, one subprocess per run) against the bundled TMDB
stand-in (its own subprocess, so its CPU is not counted) and a moto S3 server (a thread of this
process), all on loopback. A script, not a test: it prints figures and their targets and asserts
nothing about speed. Progress goes to stderr, the table and how each figure was measured to stdout.
About nine minutes with the defaults on a 2-core machine (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from baselines import figure_baselines
from cpu import figure_cpu
from harness import Bench, bench_env
from memory import figure_memory
from rate import figure_projection, figure_rate
from report import T0, Report

FIGURES = ("rate", "cpu", "memory", "baselines")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only", default=",".join(FIGURES), help=f"figures to measure (default {','.join(FIGURES)})"
    )
    ap.add_argument("--rate-seconds", type=float, default=65, help="length of the paced direct run (>= 60)")
    ap.add_argument("--find-movies", type=int, default=600, help="movies of the paced lookup=find run")
    ap.add_argument("--cpu-movies", type=int, default=5000)
    ap.add_argument("--cpu-concurrency", type=int, default=64)
    ap.add_argument("--memory-small-rows", type=int, default=10_000)
    ap.add_argument("--memory-large-rows", type=int, default=1_000_000)
    ap.add_argument("--memory-runtime", type=float, default=90, help="--max-runtime (s) of the large run")
    ap.add_argument("--baseline-movies", type=int, default=2000)
    ap.add_argument("--baseline-latency-ms", type=float, nargs=2, default=(20, 30), metavar=("MIN", "MAX"))
    args = ap.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        ap.error(f"unknown figure {sorted(unknown)[0]!r} (known: {', '.join(FIGURES)})")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    steps: dict[str, Callable[[Bench, argparse.Namespace], Any]] = {
        "rate": figure_rate, "cpu": figure_cpu, "memory": figure_memory, "baselines": figure_baselines,
    }  # fmt: skip
    report = Report()
    with bench_env("bench-") as (tmp, lake, launcher):
        bench = Bench(tmp, lake, launcher, report)
        results = {name: steps[name](bench, args) for name in FIGURES if name in args.only}
        if "rate" in results:
            figure_projection(bench, results["rate"])
    total = time.monotonic() - T0
    print(report.render())
    print(f"\nTotal wall time {total:.0f} s ({total / 60:.1f} min) on {os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
