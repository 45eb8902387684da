"""Figure 2, CPU: the harvester's CPU per 1,000 movies, and where it goes (cProfile)."""

from __future__ import annotations

import argparse
import os
import pstats
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO
from harness import UNLIMITED, Bench
from standin_proc import standin

IDLE = "'poll' of 'select.epoll'"  # the event loop's wait for I/O, left out of the profile's top list


def figure_cpu(bench: Bench, args: argparse.Namespace) -> None:
    r, f, n = bench.report, "2 cpu", args.cpu_movies
    c = args.cpu_concurrency
    with standin(0) as tmdb:
        empty_csv = bench.csv("cpu-empty", 0, seed=2)
        bench.harvest(
            "cpu-warmup", tmdb, empty_csv, rate_limit=UNLIMITED, concurrency=c
        )  # page cache, .pyc: not measured
        empty = bench.harvest("cpu-empty", tmdb, empty_csv, rate_limit=UNLIMITED, concurrency=c)
        csv = bench.csv("cpu", n, seed=2)
        full = bench.harvest("cpu", tmdb, csv, rate_limit=UNLIMITED, concurrency=c)
        profile = bench.tmp / "cpu.prof"
        profiled = bench.harvest(
            "cpu-profiled", tmdb, csv, profile_to=profile, rate_limit=UNLIMITED, concurrency=c
        )
    raw = full.child.cpu_s / n * 1000
    net = (full.child.cpu_s - empty.child.cpu_s) / n * 1000
    r.add(f, f"CPU per 1,000 movies, raw ({n} movies)", f"{raw:.3f} s ({full.child.cpu_s:.2f} s in all)")
    r.add(f, "CPU of a run with an empty selection", f"{empty.child.cpu_s:.2f} s")
    r.add(f, "CPU per 1,000 movies, net of startup", f"{net:.3f} s", "<= 0.15 s", net <= 0.15)
    r.add(
        f,
        "wall time, harvested, requests",
        f"{full.child.wall_s:.1f} s, {full.summary['harvested']}, {full.standin['requests']}",
    )
    entries = profile_entries(profile)
    for i, line in enumerate(top_functions(entries, "tottime", own_only=False), 1):
        r.add(f, f"profile: top {i} by tottime", line)
    for i, line in enumerate(top_functions(entries, "cumtime", own_only=True), 1):
        r.add(f, f"profile: harvester/ top {i} by cumulative", line)
    idle = sum(e.tottime for e in entries if IDLE in e.func)
    r.note(
        f,
        f"stand-in with no rate limit and no latency (own process); harvester rate_limit {UNLIMITED}, "
        f"concurrency {args.cpu_concurrency}, S3 sink on moto",
    )
    r.note(f, "CPU = ru_utime + ru_stime of the harvester process alone, from os.wait4 on its pid")
    r.note(
        f,
        "net = (CPU of the run - CPU of the same command over a header-only CSV) / movies x 1000: "
        "the empty run pays interpreter start, imports, preflight, state and summary writes",
    )
    r.note(
        f,
        f"profile: a third run under `python -m cProfile -o ... -m harvester run ...` "
        f"(CPU {profiled.child.cpu_s:.2f} s, wall {profiled.child.wall_s:.1f} s under the profiler); "
        f"cProfile's clock is wall time, so the event loop's wait in epoll.poll ({idle:.2f} s) is left out "
        "of the tottime list; the cumulative list leaves out cli.py and module bodies (they hold everything)",
    )


@dataclass(frozen=True)
class ProfileEntry:
    file: str
    func: str
    tottime: float
    cumtime: float


def profile_entries(path: Path) -> list[ProfileEntry]:
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return [ProfileEntry(file, func, v[2], v[3]) for (file, _line, func), v in raw.items()]


def top_functions(entries: list[ProfileEntry], key: str, own_only: bool, n: int = 3) -> list[str]:
    """'file:function time' of the n functions with the most `key` time (tottime or cumtime)."""
    own = str(REPO / "harvester")
    kept = [
        e
        for e in entries
        if IDLE not in e.func
        and (
            not own_only
            or (e.file.startswith(own) and not e.file.endswith("cli.py") and e.func != "<module>")
        )
    ]
    kept.sort(key=lambda e: e.tottime if key == "tottime" else e.cumtime, reverse=True)
    return [
        f"{short_path(e.file)}:{e.func} {e.tottime if key == 'tottime' else e.cumtime:.2f} s"
        for e in kept[:n]
    ]


def short_path(file: str) -> str:
    if file == "~":
        return "{built-in}"
    for marker in ("/site-packages/", f"/python{sys.version_info.major}.{sys.version_info.minor}/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return os.path.relpath(file, REPO) if file.startswith(str(REPO)) else file
