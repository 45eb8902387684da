"""The export source's memory and CPU: enumerating a 10,000-line and a 1,100,000-line daily export.

    python bench/export.py [--small 10000] [--large 1100000]

Each size gets a stand-in of its own process (`--export-movies N`), serving TMDB's movie export of
one day; `python -m harvester check` then enumerates it through the export source, as a run would
(download, incremental gunzip, JSON lines, filters, de-duplication), with no details request. The
check runs as a child of the launcher (launch.py), so its peak RSS (ru_maxrss) and CPU (user + sys)
are its own, not this script's nor the stand-in's. A script, not a test: it prints figures and
asserts nothing. About a minute; most of it is the stand-in making the 1.1 million lines.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import toml
from launch import Child, Launcher
from report import Report, progress
from standin_proc import standin_process

from tmdb_standin import DEFAULT_TOKEN

DAY = "2026-03-02"  # the stand-in's day 0, pinned: the files do not depend on the real date


@contextmanager
def standin(export_movies: int) -> Iterator[str]:
    """A stand-in process serving an export of `export_movies` movies; yields its base URL."""
    args = ["--port", "0", "--rate-limit", "0", "--base-date", DAY, "--hour", "12"]
    with standin_process([*args, "--export-movies", str(export_movies)]) as base_url:
        yield base_url


def enumerate_export(launcher: Launcher, tmp: Path, movies: int) -> tuple[Child, int]:
    """`harvester check` over an export of `movies` movies: the child's figures and the titles it counted."""
    with standin(movies) as base_url:
        cfg = tmp / f"export-{movies}.toml"
        cfg.write_text(
            toml(
                {
                    "tmdb": {"base_url": base_url},
                    "source": {
                        "type": "export",
                        "export_url": base_url.removesuffix("/3") + "/p/exports",
                        "export_date": DAY,
                    },
                    "sink": {"url": str(tmp / f"lake-{movies}")},
                }
            )
        )
        env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
        progress(f"enumerating an export of {movies:,} movies")
        cmd = [sys.executable, "-m", "harvester", "check", str(cfg)]
        child = launcher.run(cmd, tmp / f"check-{movies}", env)
    if child.code != 0:
        raise RuntimeError(f"check exited {child.code}: {child.stderr.strip()[-500:]}")
    found = re.search(r"^titles\s+(\d+)$", child.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no title count in: {child.stdout}")
    return child, int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", type=int, default=10_000, help="movies in the small export")
    p.add_argument("--large", type=int, default=1_100_000, help="movies in the large export (TMDB's size)")
    args = p.parse_args()
    report, f = Report(), "export"
    load_before = os.getloadavg()
    launcher = Launcher()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            small, small_titles = enumerate_export(launcher, Path(tmp), args.small)
            large, large_titles = enumerate_export(launcher, Path(tmp), args.large)
    finally:
        launcher.close()
    load_after = os.getloadavg()
    ratio = large.peak_rss_mb / small.peak_rss_mb
    per_million = (large.cpu_s - small.cpu_s) / max(1, large_titles - small_titles) * 1e6
    for label, child, titles in (("small", small, small_titles), ("large", large, large_titles)):
        report.add(f, f"peak RSS, {titles:,} titles ({label})", f"{child.peak_rss_mb:.1f} MB")
        report.add(f, f"  CPU / wall, {label}", f"{child.cpu_s:.2f} s / {child.wall_s:.1f} s")
    report.add(f, "peak RSS ratio large / small", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
    report.add(f, "enumeration CPU per million lines", f"{per_million:.2f} s")
    report.note(f, "each size: `python -m harvester check` on a movie export served by a stand-in process")
    report.note(f, "peak RSS = ru_maxrss of the check process alone (os.wait4); MB = 10^6 bytes")
    report.note(f, "CPU per million lines = (CPU large - CPU small) / (titles large - titles small)")
    report.note(f, "the titles are the lines of the non-adult file with video false (the default filters)")
    report.note(
        f,
        "load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
            *load_before, *load_after
        ),
    )
    print(report.render())


if __name__ == "__main__":
    main()
