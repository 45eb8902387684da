"""One harvest as the benchmark runs it: the real CLI in a child process, one fresh bucket, its figures."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import PREFIX, fake_aws, toml
from lake import Lake
from launch import Child, Launcher
from report import Report, progress
from standin_proc import Standin

from tmdb_standin import DEFAULT_TOKEN, Written, write_movies_csv

TMDB_RATE = 40.0  # TMDB's limit, and the stand-in's in the paced figures
UNLIMITED = 100_000  # harvester rate_limit for "no rate limit"


@dataclass
class Harvest:
    child: Child
    summary: dict[str, Any]
    standin: dict[str, Any]  # the stand-in's counters for this run alone
    bucket: str


@dataclass
class Bench:
    tmp: Path
    lake: Lake
    launcher: Launcher
    report: Report

    def csv(self, name: str, movies: int, seed: int) -> Written:
        written = write_movies_csv(self.tmp / f"{name}.csv", movies, seed=seed)
        progress(f"wrote {written.path.name}: {written.rows} rows, {written.ids} distinct movies")
        return written

    def harvest(
        self,
        name: str,
        tmdb: Standin,
        csv: Written,
        *,
        rate_limit: float,
        concurrency: int,
        lookup: str = "direct",
        extra: tuple[str, ...] = (),
        profile_to: Path | None = None,
        expect: tuple[int, ...] = (0,),
    ) -> Harvest:
        bucket = self.lake.new_bucket(name)
        cfg = self.tmp / f"{name}.toml"
        cfg.write_text(
            toml(
                {
                    "tmdb": {
                        "base_url": tmdb.base_url,
                        "rate_limit": rate_limit,
                        "concurrency": concurrency,
                        "lookup": lookup,
                    },
                    "source": {"path": str(csv.path)},
                    "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": self.lake.endpoint},
                }
            )
        )
        cmd = [sys.executable]
        if profile_to is not None:
            cmd += ["-m", "cProfile", "-o", str(profile_to)]
        cmd += ["-m", "harvester", "run", str(cfg), "--no-progress", *extra]
        tmdb.reset()
        progress(
            f"{name}: harvesting {csv.ids} movies ({lookup}, rate_limit {rate_limit:g}, "
            f"concurrency {concurrency}{', ' + ' '.join(extra) if extra else ''})"
        )
        child = self.launcher.run(cmd, self.tmp / name, {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN})
        if child.code not in expect:
            raise RuntimeError(f"{name}: harvester exited {child.code}:\n{child.stderr[-2000:]}")
        result = Harvest(child, self.lake.summary(bucket), tmdb.stats(), bucket)
        self.lake.empty(bucket)
        progress(
            f"{name}: exit {child.code} after {child.wall_s:.1f} s, harvested "
            f"{result.summary.get('harvested')}, {result.standin['requests']} requests, "
            f"cpu {child.cpu_s:.2f} s, peak RSS {child.peak_rss_mb:.0f} MB"
        )
        return result


@contextmanager
def bench_env(prefix: str) -> Iterator[tuple[Path, Lake, Launcher]]:
    """A temporary directory with fake AWS credentials, the child launcher, and moto's S3 server; the
    launcher comes first, before moto's thread exists, because it forks the children."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        tmp = Path(d)
        fake_aws(tmp)
        launcher = Launcher()
        lake = Lake()
        try:
            yield tmp, lake, launcher
        finally:
            lake.close()
            launcher.close()
