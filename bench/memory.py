"""Figure 3, memory: peak RSS of a small and of a large movies.csv, and their ratio."""

from __future__ import annotations

import argparse

from harness import UNLIMITED, Bench
from standin_proc import standin

ROWS_PER_MOVIE = 3.5  # mean of csvgen's rows_per_movie=(1, 6)


def figure_memory(bench: Bench, args: argparse.Namespace) -> None:
    r, f = bench.report, "3 memory"
    small_csv = bench.csv("mem-small", round(args.memory_small_rows / ROWS_PER_MOVIE), seed=3)
    large_csv = bench.csv("mem-large", round(args.memory_large_rows / ROWS_PER_MOVIE), seed=4)
    with standin(0) as tmdb:
        small = bench.harvest("mem-small", tmdb, small_csv, rate_limit=UNLIMITED, concurrency=20)
        large = bench.harvest(
            "mem-large",
            tmdb,
            large_csv,
            extra=("--max-runtime", f"{args.memory_runtime:g}s"),
            expect=(0, 75),
            rate_limit=UNLIMITED,
            concurrency=20,
        )
    lo, hi = small.child.peak_rss_mb, large.child.peak_rss_mb
    ratio = hi / lo
    r.add(f, f"peak RSS, {small_csv.rows:,}-row CSV", f"{lo:.1f} MB", "<= 150 MB", lo <= 150)
    r.add(
        f,
        f"  harvested of {small_csv.ids:,} movies",
        f"{small.summary['harvested']:,} (exit {small.child.code})",
    )
    r.add(f, f"peak RSS, {large_csv.rows:,}-row CSV", f"{hi:.1f} MB", "<= 150 MB", hi <= 150)
    r.add(
        f,
        f"  harvested of {large_csv.ids:,} movies",
        f"{large.summary['harvested']:,} in {large.child.wall_s:.0f} s (exit {large.child.code})",
    )
    r.add(f, "peak RSS ratio large / small", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
    r.note(f, "peak RSS = ru_maxrss of the harvester process alone, from os.wait4; MB = 10^6 bytes")
    r.note(f, f"stand-in with no rate limit and no latency; harvester rate_limit {UNLIMITED}, concurrency 20")
    r.note(
        f,
        f"the large run is stopped by --max-runtime {args.memory_runtime:g}s (exit 75 expected): "
        "it counts the whole file first, then harvests as many as it can",
    )
