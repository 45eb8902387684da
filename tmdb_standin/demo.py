"""`python -m harvester demo`: the whole product on one machine, with nothing to configure.

Starts the TMDB stand-in on loopback (with TMDB's strict rate limit), writes a movies.csv in the real
format, and harvests it with the harvester's runner into a local directory laid out like the S3 raw
zone. Lives with the stand-in, which the harvester never imports: `harvester demo` hands over here.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import ConfigError, Interrupted
from harvester.fleet import harvest_one
from harvester.lake.reference_table import REFERENCE_DIR
from harvester.lake.sink.base import HARVEST_DIR
from harvester.ops.stats import format_summary

from .csvgen import Written, write_movies_csv
from .server import DEFAULT_TOKEN, StandinConfig, running_standin

DEMO_LATENCY_S = (0.02, 0.08)  # loopback is far faster than the real API; keep the demo honest


async def run_demo(movies: int, out: str, rate_limit: float, stop: asyncio.Event) -> int:
    if movies < 1:
        raise ConfigError("--movies must be >= 1")
    if not rate_limit > 0:
        raise ConfigError("--rate-limit must be > 0")
    root, csv_path, lake, written = await asyncio.to_thread(_prepare, Path(out), movies)
    print(f"input: {csv_path} ({written.rows} rows, {written.ids} distinct movies)")

    standin_config = StandinConfig(
        valid_tokens=frozenset({DEFAULT_TOKEN}), rate_limit=rate_limit, latency=DEMO_LATENCY_S
    )
    async with running_standin(standin_config) as standin:
        print(f"TMDB stand-in: {standin.base_url} (limit {rate_limit:g} requests/s)")
        settings = Settings(
            tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=rate_limit),
            source=SourceSettings(path=str(csv_path)),
            sink=SinkSettings(url=str(lake)),
        )
        # As `harvester run` does a config of one harvest: with the day's reference tables beside it.
        result = await harvest_one(
            settings, Credentials(access_token=Secret(DEFAULT_TOKEN)), fresh=True, stop=stop
        )
        print(format_summary(result.summary))
        seen = standin.stats
        others = seen.requests - result.summary.requests
        print(
            f"stand-in saw: {seen.requests} requests ({others} of them for the reference tables), "
            f"{seen.rate_limited} answered 429, at most {seen.max_window} in any 1 s window"
        )
    files = await asyncio.to_thread(
        lambda: sorted(p for p in lake.rglob("*.json") if not p.relative_to(lake).parts[0].startswith("_"))
    )
    print(f"\n{len(files)} data files under {lake}")
    for p in files[:3]:
        print(f"  {p.relative_to(root)}")
    print(f"misses, failures, state and summary: {lake / HARVEST_DIR}")
    print(f"TMDB's genres, countries, languages and certifications: {lake / REFERENCE_DIR}")
    if result.status != "complete":
        raise Interrupted("demo stopped before the end")
    return 0


def _prepare(out: Path, movies: int) -> tuple[Path, Path, Path, Written]:
    root = out.resolve()
    lake = root / "lake"
    if lake.exists():
        shutil.rmtree(lake)  # the demo always starts over
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / "movies.csv"
    return root, csv_path, lake, write_movies_csv(csv_path, movies)
