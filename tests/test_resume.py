"""Never lose or repeat a movie: SIGKILL at random moments, and Lambda invocations on a short budget."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import orjson
from cli_helpers import cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_s3 import open_uploads
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_s3_lake

from harvester import lambda_handler
from harvester.lake.layout import seq_of
from tmdb_standin import RunningStandin, kind_of, write_movies_csv


def s3_config(tmp_path: Path, standin: RunningStandin, endpoint: str, bucket: str, **sink: Any) -> Path:
    return write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 200, "concurrency": 16, "timeout_s": 5},
        source={"path": str(tmp_path / "movies.csv")},
        sink={"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, **sink},
    )


async def assert_exactly_once(
    csv: Path, endpoint: str, bucket: str, chunk_size: int, *, flushed_early: bool = False
) -> None:
    expected = expected_movies(distinct_ids(csv))
    lake = await read_s3_lake(endpoint, bucket)
    counts = lake.record_ids()
    assert set(counts) == expected.found
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1]
    assert lake.miss_reasons() == expected.misses
    assert len(lake.outcomes) == len(expected.misses)  # misses exactly once too
    # no extra objects: every data object is a committed one; a kill never flushes a partial chunk,
    # so after kills all are full but the last (a clean stop does flush one)
    state = orjson.loads(lake.other["_harvest/state-csv-movie.json"])
    assert state["status"] == "complete"
    assert {seq_of(k) for k in lake.data} <= set(range(state["next_seq"]))
    sizes = sorted((len(r) for r in lake.data.values()), reverse=True)
    assert all(s <= chunk_size for s in sizes)
    if not flushed_early:
        assert all(s == chunk_size for s in sizes[:-1])
    assert await open_uploads(endpoint, bucket) == []


async def test_sigkill_at_random_moments_then_exactly_once(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 700, seed=31)
    # 300 records of ~30 KB: chunks above the 8 MiB part size, so kills also land mid-multipart.
    # A killed run cannot release its lease: the next one may take over once it has expired (1 s here).
    cfg = s3_config(tmp_path, standin, endpoint, bucket, chunk_size=300, lease_s=1)
    standin.config.latency = (0.005, 0.02)
    rng = random.Random(20261123)
    kills = refused = 0
    while kills < 5 and refused < 50:
        proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
        assert proc.stderr is not None
        seen: list[str] = []
        await wait_for_line(proc.stderr, " harvest ", seen)  # new / resuming / already complete / held
        if "already complete" in seen[-1]:
            await proc.communicate()
            break
        if "is writing this harvest" in seen[-1]:  # the killed run's lease has not expired yet
            await proc.communicate()
            assert proc.returncode == 6
            refused += 1
            continue
        try:
            async with asyncio.timeout(rng.uniform(0.3, 1.5)):
                await proc.wait()
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await proc.communicate()
    assert kills >= 2  # the point of the test: the harvest was really cut short
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    for _ in range(50):  # until the last killed run's lease has expired
        if done.code != 6:
            break
        done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    await assert_exactly_once(csv, endpoint, bucket, chunk_size=300)


class FakeContext:
    def __init__(self, budget_s: float) -> None:
        self._deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_event(
    standin: RunningStandin,
    csv: Path,
    s3_bucket: tuple[str, str],
    margin_s: float,
    tmdb: dict[str, Any] | None = None,
    sink: dict[str, Any] | None = None,
) -> dict[str, Any]:
    endpoint, bucket = s3_bucket
    return {
        "settings": {
            "tmdb": {"base_url": standin.base_url, **(tmdb or {})},
            "source": {"path": str(csv)},
            "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, **(sink or {})},
        },
        "margin_s": margin_s,
    }


async def test_lambda_invocations_resume_until_complete(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 220, seed=41)
    standin.config.rate_limit = 80
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    event = lambda_event(
        standin, csv, s3_bucket, 0.8, tmdb={"rate_limit": 80, "concurrency": 10}, sink={"chunk_size": 50}
    )
    budget = 2.0
    results: list[dict[str, Any]] = []
    for _ in range(15):
        ctx = FakeContext(budget)
        t0 = time.monotonic()
        # The handler runs asyncio.run itself, as on Lambda: give it a thread of its own.
        result = await asyncio.to_thread(lambda_handler.handler, event, ctx)
        assert time.monotonic() - t0 < budget, "returned after its deadline"
        results.append(result)
        if result["status"] == "complete":
            assert result["stopped"] is False
            break
        assert result["status"] == "incomplete" and result["stopped"] is True, result  # the deadline
    assert results[-1]["status"] == "complete"
    assert len(results) >= 2  # it really needed more than one invocation
    assert all(r["harvested"] + r["misses"] > 0 for r in results), results  # each made progress
    assert standin.stats.rate_limited == 0
    await assert_exactly_once(csv, endpoint, bucket, chunk_size=50, flushed_early=True)


async def test_lambda_says_when_titles_are_pending_rather_than_cut_short(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 40, seed=44)
    dipped = [i for i in distinct_ids(csv) if kind_of(i) == "movie"][3:5]
    for imdb_id in dipped:
        standin.config.faults[f"/3/movie/{imdb_id}"] = ["503", "503"]  # both tries of one invocation
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    event = lambda_event(standin, csv, s3_bucket, 1, tmdb={"rate_limit": 200, "max_retries": 1})
    first = await asyncio.to_thread(lambda_handler.handler, event, FakeContext(30))
    assert (first["status"], first["stopped"], first["pending"]) == ("incomplete", False, 2), first
    second = await asyncio.to_thread(lambda_handler.handler, event, FakeContext(30))
    assert (second["status"], second["pending"]) == ("complete", 0), second
    await assert_exactly_once(csv, endpoint, bucket, chunk_size=100, flushed_early=True)


async def test_lambda_with_tmdb_down_is_incomplete_for_the_state_machine_to_wait_out(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 20, seed=45)
    standin.config.error_rate = 1.0
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    event = lambda_event(standin, csv, s3_bucket, 1, tmdb={"max_retries": 0})
    down = await asyncio.to_thread(lambda_handler.handler, event, FakeContext(30))
    assert (down["status"], down["stopped"], down["exit_code"]) == ("incomplete", False, 5), down
    assert "TMDB is unavailable" in down["error"]
    standin.config.error_rate = 0.0  # TMDB is back: the next invocation harvests it all
    back = await asyncio.to_thread(lambda_handler.handler, event, FakeContext(30))
    assert back["status"] == "complete", back
    endpoint, bucket = s3_bucket
    await assert_exactly_once(csv, endpoint, bucket, chunk_size=100)


async def test_lambda_reports_config_problems_without_retrying(monkeypatch: Any) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    bad = {"settings": {"tmdb": {"rate_limit": 0}}}
    result = await asyncio.to_thread(lambda_handler.handler, bad, FakeContext(5))
    assert result["status"] == "failed" and result["exit_code"] == 2
    assert "tmdb.rate_limit" in result["error"]
    result = await asyncio.to_thread(lambda_handler.handler, {}, FakeContext(5))
    assert result["status"] == "failed" and "config" in result["error"]


async def test_lambda_reads_its_config_from_s3(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 30, seed=43)
    cfg = s3_config(tmp_path, standin, endpoint, bucket, chunk_size=100)
    from fixtures_s3 import s3_client

    async with s3_client(endpoint) as s3:
        await s3.put_object(Bucket=bucket, Key="conf/harvester.toml", Body=cfg.read_bytes())
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    event = {"config": f"s3://{bucket}/conf/harvester.toml", "endpoint_url": endpoint, "margin_s": 1}
    result = await asyncio.to_thread(lambda_handler.handler, event, FakeContext(30))
    assert result["status"] == "complete", result
    await assert_exactly_once(csv, endpoint, bucket, chunk_size=100)
