"""What seasons cost: requests per series with `[source] seasons = true`, against the minimum.

    python bench/seasons.py [--series 2000] [--csv 1000]

Harvests series by TMDB id (`ids`, media "tv": no /find) and a series.csv (each id through /find),
from the bundled stand-in in this process into a temporary local sink, with the default append
(`credits`). The minimum a series costs is 1 + ceil(S / available appends), S the seasons its details
list and available = 20 - own appends: every season has to be asked for by name. Prints the
requests, the minimum, their ratio, the season records, those TMDB left out, and the bytes written.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from harvester.config import Credentials, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.runner import harvest
from harvester.tmdb.seasons import first_seasons
from tmdb_standin import DEFAULT_TOKEN, StandinConfig, running_standin, titles, write_series_csv

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": DEFAULT_TOKEN})


def records(root: Path, word: str) -> Iterator[dict[str, Any]]:
    for path in root.rglob(f"{word}-*.json"):
        yield from orjson.loads(path.read_bytes())


async def one(base_url: str, source: SourceSettings, root: Path, label: str) -> None:
    settings = Settings(
        tmdb=TmdbSettings(base_url=base_url, rate_limit=100_000, concurrency=16),
        source=source,
        sink=SinkSettings(url=str(root)),
    )
    started = time.perf_counter()
    result = await harvest(settings, CREDS, progress=False)
    elapsed = time.perf_counter() - started
    s = result.summary
    series = list(records(root, "series"))
    listed = [len(r.get("seasons") or ()) for r in series]
    available = len(first_seasons(settings.tmdb.append))
    minimum = sum(1 + math.ceil(n / available) for n in listed)
    requests = s.requests - 1  # the credential check
    seasons = s.seasons.records if s.seasons else 0
    left_out = s.seasons.left_out if s.seasons else 0
    print(f"{label}: {result.status}, {len(series)} series, {sum(listed)} seasons listed, {seasons} stored")
    print(
        f"  requests {requests} (429s {s.throttled}, retries {s.retries}), "
        f"{requests / len(series):.3f} a series"
    )
    print(
        f"  minimum 1 + ceil(S/{available}) a series: {minimum}; requests / minimum {requests / minimum:.4f}"
    )
    print(f"  seasons left out by TMDB {left_out}; longest series {max(listed)} seasons")
    print(f"  {s.bytes_written / 1e6:.1f} MB written, {elapsed:.1f} s")


async def main(args: argparse.Namespace) -> None:
    async with running_standin(StandinConfig()) as standin:
        with tempfile.TemporaryDirectory() as tmp:
            ids = tuple(
                str(titles.tmdb_id_for_number("tv", n))
                for n in islice(titles.media_numbers("tv"), args.series)
            )
            await one(
                standin.base_url,
                SourceSettings(type="ids", media="tv", ids=ids, seasons=True),
                Path(tmp) / "by-id",
                f"{args.series} series by TMDB id",
            )
            csv = Path(tmp) / "series.csv"
            write_series_csv(csv, args.csv, seed=1)
            await one(
                standin.base_url,
                SourceSettings(type="series_csv", path=str(csv), seasons=True),
                Path(tmp) / "csv",
                f"series.csv of {args.csv} ids (each through /find: +1 a series, not in the minimum)",
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--csv", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
