"""Resume costs, measured: re-fetch overhead per kill, stop time after SIGTERM, Lambda harvesting share.

    python bench/resume.py [--kills 5] [--sigterms 3] [--lambda-budget 90]

Runs the real CLI (and the real Lambda handler, in-process) against the bundled TMDB stand-in and a
moto S3 server, both on loopback. A script, not a test: it prints figures and asserts nothing about
speed. Takes about four minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import fake_aws, toml
from moto.server import ThreadedMotoServer

from harvester import lambda_handler
from tmdb_standin import DEFAULT_TOKEN, StandinConfig, running_standin, write_movies_csv

PREFIX = "Raw/TMDB/JSON"


async def make_bucket(endpoint: str, bucket: str) -> None:
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket=bucket)


async def cli(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harvester", *args, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_line(proc: asyncio.subprocess.Process, needle: str) -> str:
    assert proc.stderr is not None
    while line := (await proc.stderr.readline()).decode():
        if needle in line:
            return line
    raise RuntimeError(f"the harvester ended before logging {needle!r}")


async def kills(tmp: Path, base_url: str, endpoint: str, n_kills: int, stats: Any) -> None:
    """Requests of a harvest cut by SIGKILL n times, against the same harvest run straight through."""
    csv = tmp / "kill.csv"
    written = write_movies_csv(csv, 3000, seed=17)
    rng = random.Random(7)
    results = {}
    for label, cuts in (("straight", 0), ("killed", n_kills)):
        bucket = f"kill-{label}"
        await make_bucket(endpoint, bucket)
        cfg = tmp / f"{bucket}.toml"
        cfg.write_text(toml({
            "tmdb": {"base_url": base_url, "rate_limit": 300, "concurrency": 20},
            "source": {"path": str(csv)},
            "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, "chunk_size": 100},
        }))  # fmt: skip
        stats.reset()
        for _ in range(cuts):
            proc = await cli("-v", "run", str(cfg), "--no-progress")
            await wait_line(proc, "committed")
            await asyncio.sleep(rng.uniform(0.0, 2.0))  # a random moment after the first commit
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        proc = await cli("run", str(cfg), "--no-progress")
        assert proc.stderr is not None
        await proc.stderr.read()
        assert await proc.wait() == 0
        results[label] = stats.requests
    extra = results["killed"] - results["straight"]
    per_title = results["straight"] / written.ids
    titles = extra / n_kills / per_title
    print(f"re-fetch overhead per kill   {extra / n_kills:.0f} requests ~ {titles:.0f} titles "
          f"(chunk_size 100, concurrency 20; {n_kills} kills; straight run {results['straight']} requests, "
          f"killed runs {results['killed']} in all; each restart also costs 1 request of preflight)"
          )  # fmt: skip


async def sigterms(tmp: Path, base_url: str, n: int) -> None:
    """Seconds from SIGTERM to exit, at TMDB's pace (40/s, 100-200 ms latency)."""
    csv = tmp / "term.csv"
    write_movies_csv(csv, 4000, seed=19)
    cfg = tmp / "term.toml"
    cfg.write_text(toml({
        "tmdb": {"base_url": base_url, "rate_limit": 40, "concurrency": 20},
        "source": {"path": str(csv)},
        "sink": {"url": str(tmp / "term-lake"), "chunk_size": 100},
    }))  # fmt: skip
    rng = random.Random(3)
    times, codes = [], []
    for _ in range(n):
        proc = await cli("-v", "run", str(cfg), "--no-progress")
        await wait_line(proc, "committed")
        await asyncio.sleep(rng.uniform(0.0, 2.5))
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        await proc.stderr.read()
        codes.append(await proc.wait())
        times.append(time.monotonic() - t0)
    print(f"stop time after SIGTERM       median {statistics.median(times):.2f} s, max {max(times):.2f} s "
          f"over {n} stops (exit codes {sorted(set(codes))}; the limit is 10 s)")  # fmt: skip


class Context:
    def __init__(self, budget_s: float) -> None:
        self._deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


async def lambda_share(tmp: Path, base_url: str, endpoint: str, budget: float, rate: float) -> None:
    """How much of an invocation is spent harvesting, measured on a shorter budget and projected."""
    bucket = "lambda-share"
    await make_bucket(endpoint, bucket)
    csv = tmp / "lambda.csv"
    written = write_movies_csv(csv, 250_000, seed=23)  # the full movies.csv's size: ~1M rows
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=endpoint) as s3:
        await s3.put_object(Bucket=bucket, Key="input/movies.csv", Body=csv.read_bytes())
    os.environ["TMDB_ACCESS_TOKEN"] = DEFAULT_TOKEN
    event = {
        "settings": {
            "tmdb": {"base_url": base_url, "rate_limit": rate, "concurrency": 20},
            "source": {"path": f"s3://{bucket}/input/movies.csv"},
            "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint},
        }
    }
    margin = lambda_handler.DEFAULT_MARGIN_S
    for i in range(2):  # the second is a resume: it re-reads the CSV and skips what is done
        t0 = time.monotonic()
        result = await asyncio.to_thread(lambda_handler.handler, event, Context(budget))
        wall = time.monotonic() - t0
        at_full_rate = result["requests"] / rate
        fixed = budget - at_full_rate
        print(f"lambda invocation {i + 1} ({written.rows} rows on S3, budget {budget:.0f} s, "
              f"margin {margin:.0f} s): "
              f"returned after {wall:.1f} s with {result['requests']} requests = {at_full_rate:.1f} s at the "
              f"full rate; fixed cost {fixed:.1f} s -> share spent harvesting in a 900 s invocation: "
              f"{(900 - fixed) / 900:.1%}")  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--sigterms", type=int, default=3)
    ap.add_argument("--lambda-budget", type=float, default=90.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fake_aws(tmp)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            cfg = StandinConfig(valid_tokens=frozenset({DEFAULT_TOKEN}), rate_limit=0)
            async with running_standin(cfg) as fast:
                await kills(tmp, fast.base_url, endpoint, args.kills, fast.stats)
            paced = StandinConfig(valid_tokens=frozenset({DEFAULT_TOKEN}), rate_limit=40, latency=(0.1, 0.2))
            async with running_standin(paced) as tmdb:
                await sigterms(tmp, tmdb.base_url, args.sigterms)
                await lambda_share(tmp, tmdb.base_url, endpoint, args.lambda_budget, 40.0)
        finally:
            moto.stop()


if __name__ == "__main__":
    asyncio.run(main())
