"""Nothing lost, nothing doubled, as production tries it: two runs on one prefix, a holder frozen past its
lease, a TMDB dip longer than the retry budget, a fresh start after a crash, TMDB down at preflight.

Each test runs the real CLI as separate processes against the stand-in and a sink on moto's S3 server or
a local directory, and checks the table from outside: every title in exactly one data object.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import Done, cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_s3 import open_uploads
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX, Lake, distinct_ids, expected_movies, read_local_lake, read_s3_lake

from tmdb_standin import RunningStandin, kind_of, write_movies_csv

LEASE_S = 1.0  # short, so a takeover happens within the test; the skew margin is a quarter of it


class Target:
    """The sink under test: a local directory or a prefix on moto's S3 server."""

    def __init__(self, tmp_path: Path, s3: tuple[str, str] | None) -> None:
        self.s3 = s3
        self.root = tmp_path / "lake"

    def sink(self) -> dict[str, Any]:
        if self.s3 is None:
            return {"url": str(self.root)}
        endpoint, bucket = self.s3
        return {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint}

    async def lake(self) -> Lake:
        if self.s3 is None:
            return read_local_lake(self.root)
        return await read_s3_lake(*self.s3)

    async def uploads(self) -> list[str]:
        return [] if self.s3 is None else await open_uploads(*self.s3)


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    s3 = request.getfixturevalue("s3_bucket") if request.param == "s3" else None
    return Target(tmp_path, s3)


def config(tmp_path: Path, standin: RunningStandin, target: Target, movies: int = 200, **over: Any) -> Path:
    csv = tmp_path / "movies.csv"
    if not csv.exists():
        write_movies_csv(csv, movies, seed=33)
    sections: dict[str, dict[str, Any]] = {
        "tmdb": {"base_url": standin.base_url, "rate_limit": 400, "concurrency": 8, "timeout_s": 5},
        "source": {"path": str(csv)},
        "sink": {**target.sink(), "chunk_size": 20, "lease_s": LEASE_S},
    }
    for name, values in over.items():
        sections[name] = {**sections[name], **values}
    return write_config(tmp_path / "config.toml", **sections)


async def assert_exactly_once(tmp_path: Path, target: Target) -> Lake:
    expected = expected_movies(distinct_ids(tmp_path / "movies.csv"))
    lake = await target.lake()
    counts = lake.record_ids()
    assert set(counts) == expected.found
    assert max(counts.values()) == 1, sorted(i for i, n in counts.items() if n > 1)
    assert lake.miss_reasons() == expected.misses
    assert len(lake.outcomes) == len(expected.misses)
    state = orjson.loads(lake.other["_harvest/state-csv-movie.json"])
    assert state["status"] == "complete" and state["pending"] == {}
    assert await target.uploads() == []
    return lake


async def start_until(cfg: Path, line: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    """A run started with -v, once it has logged `line` (e.g. "committed 000001"), and what it logged."""
    proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
    assert proc.stderr is not None
    seen: list[str] = []
    await wait_for_line(proc.stderr, line, seen)
    return proc, seen


async def run_until_done(cfg: Path, *args: str, tries: int = 60) -> tuple[Done, int]:
    """Run again while another run holds the lease (exit 6); the final result and how many were refused."""
    for refused in range(tries):
        done = await run_cli("run", str(cfg), *args, env=cli_env(token=TOKEN))
        if done.code != 6:
            return done, refused
    raise AssertionError(f"still refused after {tries} runs: {done.output}")


async def test_two_runs_on_one_prefix_one_writes_the_other_exits_6(
    standin: RunningStandin, target: Target, tmp_path: Path
) -> None:
    standin.config.latency = (0.01, 0.03)
    cfg = config(tmp_path, standin, target, tmdb={"rate_limit": 100}, sink={"lease_s": 60})
    first, seen = await start_until(cfg, "committed 000000")
    first.send_signal(signal.SIGSTOP)  # so it cannot finish (and release) before the second has tried
    try:
        second = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.code == 6, second.output
    assert "another run" in second.stderr and "lease expires at" in second.stderr
    assert "Traceback" not in second.stderr
    _, err = await first.communicate()
    assert first.returncode == 0, "".join(seen) + err.decode()
    done, _ = await run_until_done(cfg)
    assert done.code == 0 and "already complete" in done.stderr
    await assert_exactly_once(tmp_path, target)


async def test_a_holder_frozen_past_its_lease_is_fenced_out_and_exits_6(
    standin: RunningStandin, target: Target, tmp_path: Path
) -> None:
    standin.config.latency = (0.01, 0.03)
    cfg = config(tmp_path, standin, target, tmdb={"rate_limit": 100})
    frozen, seen = await start_until(cfg, "committed 000001")
    frozen.send_signal(signal.SIGSTOP)
    try:
        # The second run is refused while the lease lasts, then takes over and completes.
        done, refused = await run_until_done(cfg)
        assert done.code == 0, done.output
        assert refused >= 1  # refused while the frozen holder's lease lasted
        assert "taking over the lease" in done.stderr
    finally:
        frozen.send_signal(signal.SIGCONT)
    _, err = await frozen.communicate()
    output = "".join(seen) + err.decode()
    assert frozen.returncode == 6, output
    assert "lease" in err.decode().splitlines()[-1]
    # The woken writer changed nothing: the table and the state are the completed run's.
    await assert_exactly_once(tmp_path, target)


async def test_a_tmdb_dip_longer_than_the_retry_budget_is_never_final(
    standin: RunningStandin, target: Target, tmp_path: Path
) -> None:
    cfg = config(tmp_path, standin, target, tmdb={"max_retries": 1})
    movies = [i for i in distinct_ids(tmp_path / "movies.csv") if kind_of(i) == "movie"]
    dipped = movies[10:14]
    for imdb_id in dipped:
        standin.config.faults[f"/3/movie/{imdb_id}"] = ["503", "503"]  # both tries of this run
    first = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert first.code == 5, first.output
    assert "4 titles still fail after their retries" in first.stderr
    assert "pending" in first.stdout
    lake = await target.lake()
    assert not set(dipped) & set(lake.record_ids())
    # After the dip: the next run takes them first and completes, each title once.
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    await assert_exactly_once(tmp_path, target)


async def test_fresh_after_a_kill_replaces_the_old_run_and_leaves_no_upload(
    standin: RunningStandin, target: Target, tmp_path: Path
) -> None:
    standin.config.latency = (0.01, 0.03)
    cfg = config(tmp_path, standin, target, tmdb={"rate_limit": 100})
    killed, _ = await start_until(cfg, "committed 000002")
    killed.send_signal(signal.SIGKILL)
    await killed.communicate()
    before = await target.lake()
    assert before.record_ids()
    done, _ = await run_until_done(cfg, "--fresh")
    assert done.code == 0, done.output
    lake = await assert_exactly_once(tmp_path, target)
    assert not set(before.data) & set(lake.data)  # the old run's objects are gone, not mixed in
    old_tags = {k.split("/")[1] for k in before.other if k.startswith("_harvest/") and k.count("/") > 1}
    assert old_tags
    assert not any(k.split("/")[1] in old_tags for k in lake.other if k.startswith("_harvest/"))


async def test_tmdb_down_at_preflight_exits_5_and_writes_nothing(
    standin: RunningStandin, target: Target, tmp_path: Path
) -> None:
    standin.config.error_rate = 1.0
    cfg = config(tmp_path, standin, target, tmdb={"max_retries": 1})
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 5, done.output
    assert "TMDB is unavailable" in done.stderr and "nothing was written" in done.stderr
    lake = await target.lake()
    assert not lake.data and not lake.outcomes and not lake.other


async def test_a_fresh_request_retried_resumes_the_run_it_started(
    standin: RunningStandin, tmp_path: Path
) -> None:
    """The Lambda contract: invocations with one fresh_id continue one run, never start it over."""
    from harvester import config as config_mod
    from harvester.config import Credentials
    from harvester.runner import harvest

    target = Target(tmp_path, None)
    cfg = config(tmp_path, standin, target, sink={"chunk_size": 10})
    settings = config_mod.load(cfg)
    creds = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
    first = await harvest(settings, creds, progress=False)
    assert first.status == "complete"
    stop = asyncio.Event()
    stop.set()  # the fresh invocation is cut short at once, after its state exists
    cut = await harvest(settings, creds, fresh=True, fresh_id="exec-1", stop=stop, progress=False)
    assert cut.status == "incomplete" and cut.summary.run != first.summary.run
    again = await harvest(settings, creds, fresh=True, fresh_id="exec-1", progress=False)
    assert again.status == "complete" and again.summary.run == cut.summary.run
    await assert_exactly_once(tmp_path, target)
    other = await harvest(settings, creds, fresh=True, fresh_id="exec-2", progress=False)
    assert other.summary.run != again.summary.run
