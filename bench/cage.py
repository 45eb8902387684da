"""The harvester held to TMDB's rate on a small Lambda: the real CLI in a cgroup the size of one.

    python bench/cage.py [--seconds 60] [--sizes 128,256,512,0] [--timeline 5] [--profile DIR]
                         [--py-spy DIR] [--memory-mib 96]

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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import PREFIX, toml
from cpu import IDLE, profile_entries, short_path
from harness import bench_env
from lake import Lake
from launch import Child, Launcher
from report import progress
from standin_proc import Standin, arrival_rate, standin

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
    """A cgroup v1 pair (cpu, memory) sized like a Lambda of `mb` MB; 0: no limits, readings only.
    `memory_mib` squeezes the memory below the size (to find the headroom); the CPU stays the size's."""

    def __init__(self, name: str, mb: int, memory_mib: int | None = None) -> None:
        self.mb = mb
        self.memory_mib = memory_mib or mb
        self.cpu = CGROUP_ROOT / "cpu" / name
        self.memory = CGROUP_ROOT / "memory" / name

    def create(self) -> None:
        for d in (self.cpu, self.memory):
            d.mkdir()
        if self.mb:
            _write(self.cpu / "cpu.cfs_period_us", PERIOD_US)
            _write(self.cpu / "cpu.cfs_quota_us", self.quota_us)
            _write(self.memory / "memory.limit_in_bytes", self.memory_mib * MIB)

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
            try:
                if d.exists():
                    d.rmdir()  # empty once the child has exited
            except OSError as exc:  # still in use (interrupted): say so rather than hide the first error
                print(f"bench/cage.py: could not remove {d}: {exc}", file=sys.stderr)


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")


@contextmanager
def cage(name: str, mb: int, memory_mib: int | None = None) -> Iterator[Cage]:
    c = Cage(name, mb, memory_mib)
    try:
        c.create()
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
        cells = (
            f"{self.mb} MB" if self.mb else "uncaged",
            f"{self.rate / limit:.3f} ({self.rate:.2f}/s)",
            f"{self.throttled}",
            f"{self.max_window}",
            f"{self.startup_s:.1f} s",
            f"{self.child.wall_s:.1f} s",
            f"{self.child.cpu_s:.2f} s",
            f"{c.peak_memory_mib:.1f} MiB",
            f"{self.child.peak_rss_mb:.1f} MB",
            f"{c.throttled}/{c.periods} ({c.throttled_s:.1f} s)",
            f"{self.child.code}",
        )
        return " | ".join(cell.rjust(len(h)) for cell, h in zip(cells, HEADER, strict=True))


HEADER = (
    "   size",
    "rate / limit     ",
    "429s",
    "max window",
    "start-up",
    "  wall  ",
    "  CPU  ",
    "peak memory",
    "peak RSS",
    "throttled periods (time)",
    "exit",
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
    spy_to: Path | None = None,
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
    cmd += ["-m", "harvester", *(["-v"] if args.verbose else []), "run", str(cfg), "--no-progress"]
    env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
    tmdb.reset()
    how = " under cProfile" if profile_to else " under py-spy" if spy_to else ""
    progress(f"{label}: harvesting {csv.ids} movies{how}")
    with cage(f"harvester-bench-{os.getpid()}-{label}", mb, args.memory_mib) as c:
        caged = c.wrap(cmd)
        if spy_to is not None:  # py-spy samples from outside the cage (it is the shell's parent)
            caged = [args.py_spy_bin, "record", "-r", "200", "-s", "-f", "speedscope", "-o", str(spy_to),
                     "--", *caged]  # fmt: skip
        timeline = Timeline(tmdb, min(0.5, args.timeline / 2)) if args.timeline else None
        spawned = time.monotonic()  # CLOCK_MONOTONIC, the stand-in's clock too
        try:
            child = launcher.run(caged, tmp / f"cage-{label}", env)
        finally:
            if timeline is not None:
                timeline.stop()
        readings = c.readings()
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
        (args.logs / f"cage-{label}{'-profiled' if profile_to else ''}.err").write_text(child.stderr)
    if child.code != 0:
        progress(f"{label}: harvester exited {child.code}: {child.stderr[-1500:]}")
    summary = lake.summary(bucket)
    lake.empty(bucket)
    s = tmdb.stats()
    run = CagedRun(
        mb=mb,
        child=child,
        cage=readings,
        requests=s["requests"],
        rate=arrival_rate(s),
        throttled=s["rate_limited"],
        max_window=s["max_window"],
        startup_s=s["first_arrival"] - spawned if s["first_arrival"] else math.nan,
        harvested=int(summary.get("harvested", 0)),
    )
    progress(f"{label}: {run.row(tmdb.rate_limit)}")
    if timeline is not None and s["first_arrival"]:
        steps = timeline.render(s["first_arrival"], s["last_arrival"], tmdb.rate_limit, args.timeline)
        progress(f"{label}: rate / limit every {args.timeline:g} s from the first request: {steps}")
    return run


class Timeline:
    """The stand-in's request count, sampled every `every` seconds while a run goes (a diagnostic)."""

    def __init__(self, tmdb: Standin, every: float = 0.5) -> None:
        self.samples: list[tuple[float, int, int]] = []  # (monotonic time, requests, 429s)
        self._tmdb, self._every = tmdb, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(self._every):
            s = self._tmdb.stats()
            self.samples.append((time.monotonic(), s["requests"], s["rate_limited"]))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def render(self, first: float, last: float, limit: float, bucket: float) -> str:
        """Requests per second in `bucket`-second steps from the first request to the last; '!' marks
        429s."""
        out, edge, last_n, last_t, last_429 = [], first + bucket, 1, first, 0
        for t, n, r in self.samples:
            if t < edge or t > last + self._every:
                continue
            rate = (n - last_n) / (t - last_t)
            out.append(f"{last_t - first:4.0f}s {rate / limit:4.2f}{'!' * (r - last_429)}")
            edge, last_n, last_t, last_429 = t + bucket, n, t, r
        return "  ".join(out)


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
    ap.add_argument(
        "--memory-mib",
        type=int,
        help="memory limit for every caged size instead of its own (headroom: exit -9 is the OOM killer)",
    )
    ap.add_argument("--profile", type=Path, help="also run each size under cProfile, .prof files here")
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument(
        "--py-spy",
        type=Path,
        help="also run each size under py-spy (pip install py-spy), speedscope files here",
    )
    ap.add_argument("--py-spy-bin", default="py-spy", help="the py-spy executable")
    ap.add_argument("--logs", type=Path, help="keep each run's stderr (the harvester's log) here")
    ap.add_argument(
        "--timeline",
        type=float,
        default=0,
        metavar="S",
        help="print each run's rate every S s (polls the stand-in)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="run the harvester with -v (debug logs)")
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
    with (
        bench_env("bench-cage-") as (tmp, lake, launcher),
        standin(args.limit, tuple(args.latency_ms)) as tmdb,
    ):
        csv = write_movies_csv(tmp / "cage.csv", movies, seed=1)
        progress(f"wrote {csv.path.name}: {csv.rows} rows, {csv.ids} distinct movies")
        for mb in args.sizes:
            runs.append(run_caged(tmp, lake, launcher, tmdb, csv, mb, args))
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for mb in args.sizes:
                prof = args.profile / f"cage-{mb or 'uncaged'}.prof"
                run_caged(tmp, lake, launcher, tmdb, csv, mb, args, profile_to=prof)
        if args.py_spy is not None:
            args.py_spy.mkdir(parents=True, exist_ok=True)
            for mb in args.sizes:
                spy = args.py_spy / f"cage-{mb or 'uncaged'}.speedscope.json"
                run_caged(tmp, lake, launcher, tmdb, csv, mb, args, spy_to=spy)
    lo, hi = args.latency_ms
    print(
        f"\nstand-in: {args.limit:g} req/s in any 1 s window, latency {lo:g}-{hi:g} ms; harvester: "
        f"rate_limit {args.rate_limit:g}, concurrency {args.concurrency}, {movies} movies, S3 sink on moto"
    )
    if args.memory_mib:
        print(f"memory limit {args.memory_mib} MiB for every caged size (CPU as the size's); exit -9: killed")
    print(" | ".join(HEADER))
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
            print_profile(
                args.profile / f"cage-{mb or 'uncaged'}.prof", f"{mb or 'uncaged'}", args.profile_top
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
