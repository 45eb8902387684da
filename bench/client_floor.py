"""The CPU floor of the HTTP client: what aiohttp alone costs per request, with nothing of ours around it.

    python bench/client_floor.py [--requests 5500] [--concurrency 64]

Starts the bundled stand-in in its own process (no rate limit, no latency), then GETs movie details
with credits (10-60 KB bodies, as a harvest does) through one keep-alive aiohttp session, reading every
body and doing nothing else. Prints this process's user+sys CPU per request. bench/run.py's CPU figure
(per 1,000 movies, about 1.1 requests each) cannot go below about 1.1 times this.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys

import aiohttp
from yarl import URL

from tmdb_standin import DEFAULT_TOKEN, movie_ids, tmdb_id_of


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(base_url: str, n: int, concurrency: int) -> float:
    ids = [tmdb_id_of(i) for i in movie_ids(n * 2, seed=5) if _is_movie(i)][:n]
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(tmdb_id: int) -> None:
            url = URL(f"{base_url}/movie/{tmdb_id}?language=en-US&append_to_response=credits", encoded=True)
            async with gate, session.get(url) as r:
                await r.read()

        await one(ids[0])  # the first connection and imports, outside the measurement
        before = cpu_seconds()
        async with asyncio.TaskGroup() as tg:
            for tmdb_id in ids:
                tg.create_task(one(tmdb_id))
        return (cpu_seconds() - before) / len(ids)


def _is_movie(imdb_id: str) -> bool:
    from tmdb_standin import kind_of

    return kind_of(imdb_id) == "movie"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=5500)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    cmd = [sys.executable, "-m", "harvester", "standin", "--port", "0", "--rate-limit", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as standin:
        try:
            assert standin.stdout is not None
            base_url = standin.stdout.readline().strip()
            per_request = asyncio.run(measure(base_url, args.requests, args.concurrency))
        finally:
            standin.terminate()
    print(
        f"aiohttp alone: {per_request * 1e6:.0f} us of CPU per request ({args.requests} GETs of details "
        f"with credits, concurrency {args.concurrency}, bodies read and dropped); at 1.1 requests a "
        f"movie that is {per_request * 1.1 * 1000:.2f} s per 1,000 movies before any work of ours"
    )


if __name__ == "__main__":
    main()
