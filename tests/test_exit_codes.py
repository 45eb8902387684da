"""Exit codes mean what the README says in every phase: preflight, enumeration, harvest and commit.

Preflight (2 config, 3 credential, 4 sink, 5 TMDB, 6 lease) is in test_cli.py and test_writers.py, the
harvest's 5 (50 in a row, titles pending) in test_cli.py and test_writers.py, a replaced or unreadable S3
input (2, 4) in test_reader.py, a lost lease at commit (6) in test_writers.py. Here: the phases between.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cli_helpers import cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_tmdb import TOKEN

from tmdb_standin import RunningStandin, write_movies_csv


def assert_one_line(stderr: str, *needles: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("harvester: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def discover_config(tmp_path: Path, standin: RunningStandin, **tmdb: object) -> Path:
    return write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 500, "timeout_s": 5, **tmdb},
        source={"type": "discover", "date_from": "2000-01-01", "date_to": "2000-12-31"},
        sink={"url": str(tmp_path / "lake"), "chunk_size": 20, "lease_s": 5},
    )


async def test_tmdb_down_while_enumerating_a_listing_is_5(standin: RunningStandin, tmp_path: Path) -> None:
    standin.config.faults["/3/discover/movie"] = ["503"] * 10
    cfg = discover_config(tmp_path, standin, max_retries=1)
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 5, done.output
    assert_one_line(done.stderr, "discover/movie", "TMDB looks unavailable")


async def test_sink_failing_while_enumerating_is_4(standin: RunningStandin, tmp_path: Path) -> None:
    standin.config.latency = (0.2, 0.2)  # the listing takes a few pages' time: the spool comes after
    cfg = discover_config(tmp_path, standin)
    proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
    assert proc.stderr is not None
    seen: list[str] = []
    await wait_for_line(proc.stderr, "new harvest ", seen)
    tag = seen[-1].split("new harvest ")[1].strip()
    (tmp_path / "lake" / "_harvest" / tag).write_text("in the way")  # the run's folder cannot be made
    _, err = await proc.communicate()
    assert proc.returncode == 4, "".join(seen) + err.decode()
    assert_one_line(err.decode(), "cannot write")


async def test_sink_failing_at_a_commit_is_4(standin: RunningStandin, tmp_path: Path) -> None:
    write_movies_csv(tmp_path / "movies.csv", 200, seed=5)
    standin.config.latency = (0.01, 0.03)
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 100, "timeout_s": 5},
        source={"path": str(tmp_path / "movies.csv")},
        sink={"url": str(tmp_path / "lake"), "chunk_size": 10, "lease_s": 5},
    )
    proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
    assert proc.stderr is not None
    seen: list[str] = []
    await wait_for_line(proc.stderr, "committed 000000", seen)
    partition = tmp_path / "lake" / datetime.now(UTC).strftime("%Y/%m/%d")
    os.rename(partition, tmp_path / "moved-away")
    partition.write_text("in the way")  # the next data object cannot be written
    _, err = await proc.communicate()
    assert proc.returncode == 4, "".join(seen) + err.decode()
    assert_one_line(err.decode(), "cannot write")
    # Nothing was lost: the state still accounts for the commits before, and a later run resumes.
    partition.unlink()
    os.rename(tmp_path / "moved-away", partition)
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
