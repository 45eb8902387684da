"""The harvester held to TMDB's rate on a small Lambda: the real CLI in a cgroup the size of one.

    python bench/cage.py [--seconds 60] [--sizes 128,256,512,0] [--profile DIR]

Lambda gives CPU in proportion to memory (1,769 MB is one vCPU), so a 128 MB function gets about 7.2%
of a core. Each size runs `python -m harvester run` in a cgroup v1 pair made for it: cpu.cfs_quota_us =
MB x 100000 / 1769 per 100000 us period, memory.limit_in_bytes = MB MiB (this machine has no swap);
size 0 is the same cgroup with no limits ("uncaged"), for the same readings. The child's shell writes
its own pid into both cgroup.procs and then execs the harvester, so nothing runs uncaged in between and
this script (which holds moto's thread) never forks with a preexec_fn. The cgroups are removed after.

The TMDB stand-in runs uncaged in its own process (40 req/s, 100-200 ms latency by default); the sink
is S3 on moto's server, a thread of this script, as a Lambda writes to S3: botocore's imports, client
set-up and request signing are part of what the cage has to afford. Every size harvests the same
movies.csv (sized for `--seconds` at the full rate) into a fresh bucket.

Needs root and cgroup v1 at /sys/fs/cgroup/{cpu,memory}. A script, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import PREFIX, fake_aws, toml
from cpu import IDLE, profile_entries, short_path
from lake import Lake
from launch import Child, Launcher
from report import progress
from standin_proc import Standin, standin

from tmdb_standin import DEFAULT_TOKEN, Written, write_movies_csv

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
ONE_VCPU_MB = 1769  # Lambda: 1,769 MB of memory buys one vCPU
MIB = 1 << 20
REQUESTS_PER_MOVIE = 1.10  # the stand-in's catalogue with lookup = "direct" (see rate.py)


@dataclass(frozen=True)
class CageReadings:
    peak_memory_mib: float  # memory.max_usage_in_bytes (RSS and page cache the process charged)
    periods: int  # cpu.stat: nr_periods, nr_throttled, throttled_time
    throttled: int
    throttled_s: float


class Cage:
    """A cgroup v1 pair (cpu, memory) sized like a Lambda of `mb` MB; 0: no limits, readings only."""

    def __init__(self, name: str, mb: int) -> None:
        self.mb = mb
        self.cpu = CGROUP_ROOT / "cpu" / name
        self.memory = CGROUP_ROOT / "memory" / name
        for d in (self.cpu, self.memory):
            d.mkdir()
        if mb:
            _write(self.cpu / "cpu.cfs_period_us", PERIOD_US)
            _write(self.cpu / "cpu.cfs_quota_us", self.quota_us)
            _write(self.memory / "memory.limit_in_bytes", mb * MIB)

    @property
    def quota_us(self) -> int:
        return self.mb * PERIOD_US // ONE_VCPU_MB

    def wrap(self, cmd: list[str]) -> list[str]:
        """`cmd`, run by a shell that first moves itself (hence what it execs) into both cgroups."""
        enter = f'echo $$ > {self.cpu}/cgroup.procs && echo $$ > {self.memory}/cgroup.procs && exec "$@"'
        return ["/bin/sh", "-c", enter, "sh", *cmd]

    def readings(self) -> CageReadings:
        stat = dict(line.split() for line in (self.cpu / "cpu.stat").read_text().splitlines())
        peak = int((self.memory / "memory.max_usage_in_bytes").read_text())
        return CageReadings(
            peak / MIB, int(stat["nr_periods"]), int(stat["nr_throttled"]), int(stat["throttled_time"]) / 1e9
        )

    def remove(self) -> None:
        for d in (self.cpu, self.memory):
            if d.exists():
                d.rmdir()  # the child has exited, so the cgroup is empty


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")


@contextmanager
def cage(name: str, mb: int) -> Iterator[Cage]:
    c = Cage(name, mb)
    try:
        yield c
    finally:
        c.remove()


@dataclass(frozen=True)
class CagedRun:
    mb: int
    child: Child
    cage: CageReadings
    requests: int
    rate: float  # requests per second the stand-in saw, first to last arrival
    throttled: int
    max_window: int
    startup_s: float  # from spawning the process to its first request (the TMDB preflight)
    harvested: int

    def row(self, limit: float) -> str:
        c = self.cage
        size = f"{self.mb} MB" if self.mb else "uncaged"
        return (
            f"{size:>8} | {self.rate / limit:5.3f} ({self.rate:5.2f}/s) | {self.throttled:4d} | "
            f"{self.max_window:3d} | {self.startup_s:6.1f} s | {self.child.wall_s:6.1f} s | "
            f"{self.child.cpu_s:5.2f} s | {c.peak_memory_mib:6.1f} MiB | {self.child.peak_rss_mb:5.1f} MB | "
            f"{c.throttled}/{c.periods} ({c.throttled_s:.1f} s) | {self.child.code}"
        )


HEADER = (
    "    size | rate / limit        |  429 | max |  start-up |   wall   |  CPU    |  peak memory | "
    "peak RSS | throttled periods (time) | exit"
)


def run_caged(
    tmp: Path,
    lake: Lake,
    launcher: Launcher,
    tmdb: Standin,
    csv: Written,
    mb: int,
    args: argparse.Namespace,
    profile_to: Path | None = None,
) -> CagedRun:
    label = f"{mb}mb" if mb else "uncaged"
    bucket = lake.new_bucket(f"cage-{label}")
    cfg = tmp / f"cage-{label}.toml"
    tmdb_cfg = {"base_url": tmdb.base_url, "rate_limit": args.rate_limit, "concurrency": args.concurrency}
    sink_cfg = {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": lake.endpoint}
    cfg.write_text(toml({"tmdb": tmdb_cfg, "source": {"path": str(csv.path)}, "sink": sink_cfg}))
    cmd = [sys.executable]
    if profile_to is not None:
        cmd += ["-m", "cProfile", "-o", str(profile_to)]
    cmd += ["-m", "harvester", "run", str(cfg), "--no-progress"]
    env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
    tmdb.reset()
    progress(f"{label}: harvesting {csv.ids} movies{' under cProfile' if profile_to else ''}")
    with cage(f"harvester-bench-{os.getpid()}-{label}", mb) as c:
        spawned = time.monotonic()  # CLOCK_MONOTONIC, the stand-in's clock too
        child = launcher.run(c.wrap(cmd), tmp / f"cage-{label}", env)
        readings = c.readings()
    if child.code != 0:
        progress(f"{label}: harvester exited {child.code}: {child.stderr[-1500:]}")
    summary = lake.summary(bucket)
    lake.empty(bucket)
    s = tmdb.stats()
    seconds = s["last_arrival"] - s["first_arrival"]
    run = CagedRun(
        mb=mb,
        child=child,
        cage=readings,
        requests=s["requests"],
        rate=(s["requests"] - 1) / seconds if seconds > 0 else 0.0,
        throttled=s["rate_limited"],
        max_window=s["max_window"],
        startup_s=s["first_arrival"] - spawned if s["first_arrival"] else math.nan,
        harvested=int(summary.get("harvested", 0)),
    )
    progress(f"{label}: {run.row(tmdb.rate_limit)}")
    return run


def print_profile(path: Path, label: str, n: int) -> None:
    entries = [e for e in profile_entries(path) if IDLE not in e.func]
    print(f"\n{label}: top {n} by own time (cProfile, wall clock; epoll's wait left out)")
    for e in sorted(entries, key=lambda e: e.tottime, reverse=True)[:n]:
        print(f"  {e.tottime:7.3f} s own {e.cumtime:7.3f} s cum  {short_path(e.file)}:{e.func}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="harvest length at the full rate (default 60)")
    ap.add_argument("--sizes", default="128,256,512,0", help="Lambda sizes in MB; 0 = uncaged")
    ap.add_argument("--limit", type=float, default=40, help="the stand-in's requests per 1 s window")
    ap.add_argument("--latency-ms", type=float, nargs=2, default=(100, 200), metavar=("MIN", "MAX"))
    ap.add_argument("--rate-limit", type=float, default=40, help="the harvester's tmdb.rate_limit")
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--profile", type=Path, help="also run each size under cProfile, .prof files here")
    ap.add_argument("--profile-top", type=int, default=25)
    args = ap.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0 or not (CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us").exists():
        print("bench/cage.py needs root and cgroup v1 at /sys/fs/cgroup/{cpu,memory}", file=sys.stderr)
        return 2
    movies = math.ceil(args.seconds * args.limit * 0.98 / REQUESTS_PER_MOVIE)
    runs: list[CagedRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-cage-") as d:
        tmp = Path(d)
        fake_aws(tmp)
        launcher = Launcher()  # before moto's thread exists: the launcher forks its children
        lake = Lake()
        try:
            with standin(args.limit, tuple(args.latency_ms)) as tmdb:
                csv = write_movies_csv(tmp / "cage.csv", movies, seed=1)
                progress(f"wrote {csv.path.name}: {csv.rows} rows, {csv.ids} distinct movies")
                for mb in args.sizes:
                    runs.append(run_caged(tmp, lake, launcher, tmdb, csv, mb, args))
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    for mb in args.sizes:
                        prof = args.profile / f"cage-{mb or 'uncaged'}.prof"
                        run_caged(tmp, lake, launcher, tmdb, csv, mb, args, profile_to=prof)
        finally:
            lake.close()
            launcher.close()
    lo, hi = args.latency_ms
    print(
        f"\nstand-in: {args.limit:g} req/s in any 1 s window, latency {lo:g}-{hi:g} ms; harvester: "
        f"rate_limit {args.rate_limit:g}, concurrency {args.concurrency}, {movies} movies, S3 sink on moto"
    )
    print(HEADER)
    for r in runs:
        print(r.row(args.limit))
    print(
        "\nrate = (requests - 1) / (last - first arrival) at the stand-in; start-up = spawn to the first "
        "request;\npeak memory = the cgroup's memory.max_usage_in_bytes, peak RSS = ru_maxrss; throttled = "
        f"cpu.stat nr_throttled/nr_periods (throttled_time); CPU quota = MB x {PERIOD_US} / {ONE_VCPU_MB} us "
        f"per {PERIOD_US} us"
    )
    if args.profile is not None:
        for mb in args.sizes:
            print_profile(args.profile / f"cage-{mb or 'uncaged'}.prof", f"{mb or 'uncaged'}", args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
