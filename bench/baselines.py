"""Figure 4, baselines: the course scripts' way of harvesting, against the harvester on the same movies.

    python bench/baselines.py sequential|gather PARAMS_JSON    (what bench/run.py starts, one per baseline)

Each baseline runs in a child process of its own, timed from start to exit like the harvester's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from common import PREFIX
from harness import TMDB_RATE, Bench
from report import progress
from standin_proc import Standin, standin

from tmdb_standin import DEFAULT_TOKEN, Written


def read_ids(csv: Path) -> list[str]:
    """The distinct IMDb ids of a movies.csv, in file order (what the course scripts loop over)."""
    with csv.open(encoding="utf-8") as f:
        next(f)
        return list(dict.fromkeys(line.split("|", 1)[0] for line in f))


class Chunks:
    """Every 100 records, one boto3 put_object of the JSON array, as the course scripts do."""

    def __init__(self, bucket: str, endpoint: str) -> None:
        self._s3 = boto3.client("s3", endpoint_url=endpoint)
        self._bucket = bucket
        self._day = datetime.date.today().strftime("%Y/%m/%d")
        self._records: list[dict[str, Any]] = []
        self.objects = 0

    def add(self, record: dict[str, Any]) -> None:
        self._records.append(record)
        if len(self._records) == 100:
            self.flush()

    def flush(self) -> None:
        if self._records:
            key = f"{PREFIX}/{self._day}/movies-{self.objects:06d}.json"
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(self._records).encode())
            self.objects += 1
            self._records = []


def sequential_loop(p: dict[str, Any]) -> dict[str, Any]:
    """requests + boto3, one id after the other: /find, /movie/{id}, /movie/{id}/credits (no sleep(1))."""
    session = requests.Session()  # keep-alive: kinder to the baseline than one connection per request
    session.headers.update({"Authorization": f"Bearer {p['token']}", "Accept": "application/json"})
    base, counts = p["base_url"], {"requests": 0, "throttled": 0, "harvested": 0, "misses": 0, "failed": 0}

    def get_json(path: str, params: dict[str, str]) -> Any:
        while True:
            counts["requests"] += 1
            resp = session.get(base + path, params=params, timeout=10)
            if resp.status_code != 429:
                break
            counts["throttled"] += 1
            time.sleep(1)  # the only pacing: wait out TMDB's window and try again
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    chunks = Chunks(p["bucket"], p["endpoint"])
    lang = {"language": "en-US"}
    for imdb_id in p["ids"]:
        found = get_json(f"/find/{imdb_id}", {"external_source": "imdb_id", **lang})
        results = (found or {}).get("movie_results") or []
        if not results:
            counts["misses"] += 1
            continue
        tmdb_id = results[0]["id"]
        details = get_json(f"/movie/{tmdb_id}", lang)
        credits = get_json(f"/movie/{tmdb_id}/credits", lang)
        if details is None or credits is None:
            counts["misses"] += 1
            continue
        details["credits"] = credits
        chunks.add(details)
        counts["harvested"] += 1
    chunks.flush()
    return {**counts, "objects": chunks.objects}


async def naive_gather(p: dict[str, Any]) -> dict[str, Any]:
    """One aiohttp task per movie, all at once through asyncio.gather, the same requests, no limiter."""
    import aiohttp

    base, counts = p["base_url"], {"requests": 0, "throttled": 0}
    headers = {"Authorization": f"Bearer {p['token']}", "Accept": "application/json"}
    lang = {"language": "en-US"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def get_json(path: str, params: dict[str, str]) -> Any:
            counts["requests"] += 1
            async with session.get(base + path, params=params) as resp:
                if resp.status == 429:
                    counts["throttled"] += 1
                if resp.status == 404:
                    return None
                resp.raise_for_status()  # a 429 loses the movie: there is no retry in this loop
                return await resp.json()

        async def one(imdb_id: str) -> dict[str, Any] | None:
            found = await get_json(f"/find/{imdb_id}", {"external_source": "imdb_id", **lang})
            results = (found or {}).get("movie_results") or []
            if not results:
                return None
            tmdb_id = results[0]["id"]
            details = await get_json(f"/movie/{tmdb_id}", lang)
            credits = await get_json(f"/movie/{tmdb_id}/credits", lang)
            if details is None or credits is None:
                return None
            details["credits"] = credits
            return dict(details)

        outcomes = await asyncio.gather(*(one(i) for i in p["ids"]), return_exceptions=True)
    chunks = Chunks(p["bucket"], p["endpoint"])
    for outcome in outcomes:
        if isinstance(outcome, dict):
            chunks.add(outcome)
    chunks.flush()
    return {
        **counts,
        "harvested": sum(isinstance(o, dict) for o in outcomes),
        "misses": sum(o is None for o in outcomes),
        "failed": sum(isinstance(o, BaseException) for o in outcomes),
        "objects": chunks.objects,
    }


def baseline_main(kind: str, params_json: str) -> int:
    params = json.loads(params_json)
    result = sequential_loop(params) if kind == "sequential" else asyncio.run(naive_gather(params))
    print(json.dumps(result))
    return 0


@dataclass
class Timed:
    label: str
    wall_s: float
    counts: dict[str, Any]  # harvested, misses, failed, requests (client side), throttled
    standin: dict[str, Any]


def run_baseline(bench: Bench, kind: str, tmdb: Standin, csv: Written) -> Timed:
    bucket = bench.lake.new_bucket(kind)
    params = {"base_url": tmdb.base_url, "token": DEFAULT_TOKEN, "ids": read_ids(csv.path),
              "bucket": bucket, "endpoint": bench.lake.endpoint}  # fmt: skip
    tmdb.reset()
    progress(f"baseline {kind}: {csv.ids} movies")
    child = bench.launcher.run([sys.executable, __file__, kind, json.dumps(params)], bench.tmp / kind)
    if child.code != 0:
        raise RuntimeError(f"baseline {kind} exited {child.code}:\n{child.stderr[-2000:]}")
    counts = json.loads(child.stdout.strip().splitlines()[-1])
    bench.lake.empty(bucket)
    progress(f"baseline {kind}: {child.wall_s:.1f} s, {counts}")
    return Timed(kind, child.wall_s, counts, tmdb.stats())


def figure_baselines(bench: Bench, args: argparse.Namespace) -> None:
    r, f = bench.report, "4 baselines"
    lo, hi = args.baseline_latency_ms
    csv = bench.csv("baselines", args.baseline_movies, seed=5)
    with standin(TMDB_RATE, (lo, hi)) as tmdb:
        seq = run_baseline(bench, "sequential", tmdb, csv)
        h = bench.harvest("baseline-harvester", tmdb, csv, rate_limit=40, concurrency=20)
        ours = Timed("harvester", h.child.wall_s, h.summary, h.standin)
        time.sleep(1.1)  # nothing of the harvester left in the stand-in's window
        gather = run_baseline(bench, "gather", tmdb, csv)
    n = csv.ids
    for t, name in (
        (seq, "(a) sequential requests+boto3"),
        (gather, "(b) naive asyncio.gather"),
        (ours, "(c) harvester"),
    ):
        c = t.counts
        r.add(
            f,
            f"{name}: wall time",
            f"{t.wall_s:.1f} s" + ("" if t is ours else f" = {t.wall_s / ours.wall_s:.2f}x harvester"),
        )
        r.add(
            f,
            f"{name}: harvested / 429s / failed",
            f"{c['harvested']} of {n} / {t.standin['rate_limited']} / {c['failed']}; "
            f"{t.standin['requests']} requests",
        )
    sleep_s = seq.standin["requests"]
    r.add(f, "(a) with the course's sleep(1) it would add", f"{sleep_s} s ({sleep_s / 60:.0f} min)")
    r.note(
        f,
        f"the same {n} movies, the same stand-in: rate limit 40/s, latency {lo:g}-{hi:g} ms (shorter than "
        "TMDB's ~100-200 ms so the sequential loop fits the budget; it favours the sequential loop)",
    )
    r.note(
        f,
        "(a) and (b) live in bench/baselines.py (sequential_loop, naive_gather), each run as "
        "`baselines.py <kind>` in its own process; wall time = that process's start to exit, for all three",
    )
    r.note(
        f,
        "(a) one requests.Session (keep-alive); per id GET /find, then /movie/{id} and /movie/{id}/credits, "
        "merged; boto3 put_object every 100 records; a 429 waits 1 s and retries; no sleep(1): "
        "what it would add is 1 s x its requests",
    )
    r.note(
        f,
        "(b) aiohttp, one task per movie under asyncio.gather, no limiter and no retry: a 429 loses "
        "the movie ('failed'); its records are put 100 a time afterwards",
    )
    r.note(
        f,
        "(c) the harvester, rate_limit 40, concurrency 20, append_to_response=credits (1 request per movie)",
    )


if __name__ == "__main__":
    sys.exit(baseline_main(sys.argv[1], sys.argv[2]))
