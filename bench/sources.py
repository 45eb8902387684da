"""Requests per title for every source, and the cost of enumerating a large discover query.

    python bench/sources.py [--titles 2000] [--discover-titles 50000]

Runs real harvests (in-process, over loopback sockets) against the bundled TMDB stand-in into a
temporary local directory, and counts what the stand-in served. A script, not a test: it prints
figures and asserts nothing. About a minute with the defaults.

Requests per title = every request the stand-in saw (preflight, /genre, /discover pages, /find,
details) divided by the titles the source yielded. The stand-in's catalogue makes ~8% of movies.csv
ids something other than a plain movie (TV, unknown, direct-lookup misses), as real IMDb data does;
those cost a /find each, which is why a csv source costs a little more than one request per title.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from pathlib import Path
from typing import Any

from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.runner import harvest
from tmdb_standin import (
    DEFAULT_TOKEN,
    RunningStandin,
    StandinConfig,
    movie_ids,
    running_standin,
    tmdb_id_of,
    write_movies_csv,
    write_series_csv,
)
from tmdb_standin.discover import discover_count

CREDS = Credentials(access_token=Secret(DEFAULT_TOKEN))


async def run(
    standin: RunningStandin, tmp: Path, label: str, source: SourceSettings, **tmdb: Any
) -> dict[str, Any]:
    standin.server.reset_stats()
    settings = Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=10_000.0, concurrency=32, **tmdb),
        source=source,
        sink=SinkSettings(url=str(tmp / label)),
    )
    result = await harvest(settings, CREDS, progress=False)
    selected = int(result.summary.source.selected)
    stats = standin.stats
    return {
        "label": label,
        "titles": selected,
        "records": int(result.summary.harvested),
        "requests": stats.requests,
        "routes": {k: v for k, v in stats.by_route.items() if v},
        "per_title": stats.requests / max(1, selected),
    }


def show(row: dict[str, Any]) -> None:
    routes = ", ".join(f"{k} {v}" for k, v in row["routes"].items())
    print(
        f"{row['label']:<34} {row['titles']:>7} {row['records']:>7} {row['requests']:>8} "
        f"{row['per_title']:>8.3f}   {routes}"
    )


async def per_source(n: int, tmp: Path) -> None:
    config = StandinConfig(rate_limit=0, discover_movies=max(3 * n, 3000), discover_tv=max(n, 1000))
    async with running_standin(config) as standin:
        movies_csv, series_csv, ids_file = tmp / "movies.csv", tmp / "series.csv", tmp / "ids.txt"
        write_movies_csv(movies_csv, n, seed=1)
        write_series_csv(series_csv, n, seed=1)
        sample = list(movie_ids(n, seed=2))
        ids_file.write_text(
            "\n".join(str(tmdb_id_of(i)) if k % 2 else i for k, i in enumerate(sample) if _known(i)) + "\n"
        )
        # a discover window with about n titles: the most recent days of the universe
        low = _window_for(standin, n)
        cases: list[tuple[str, SourceSettings, dict[str, Any]]] = [
            ("csv (lookup = direct)", SourceSettings(path=str(movies_csv)), {"lookup": "direct"}),
            ("csv (lookup = find)", SourceSettings(path=str(movies_csv)), {"lookup": "find"}),
            ("series_csv (find + /tv)", SourceSettings(type="series_csv", path=str(series_csv)), {}),
            ("ids (half IMDb, half TMDB ids)", SourceSettings(type="ids", path=str(ids_file)), {}),
            ("discover, details = true", SourceSettings(type="discover", date_from=low), {}),
            ("discover, details = false", SourceSettings(type="discover", date_from=low, details=False), {}),
        ]
        print(f"{'source':<34} {'titles':>7} {'records':>7} {'requests':>8} {'per title':>8}   by route")
        for label, source, tmdb in cases:
            show(await run(standin, tmp, label, source, **tmdb))


def _known(imdb_id: str) -> bool:
    try:
        tmdb_id_of(imdb_id)
    except LookupError:
        return False
    return True


def _window_for(standin: RunningStandin, n: int) -> str:
    """The date_from that leaves about n titles up to the universe's end (2025)."""
    from tmdb_standin.discover import discover_universe

    titles = [t for t in discover_universe("movie", standin.config) if not t.adult]
    return titles[max(0, len(titles) - n)].date


async def enumeration(n: int, tmp: Path) -> None:
    """Pages a discover query of about n titles costs, against the minimum ceil(n / 20)."""
    config = StandinConfig(rate_limit=0, discover_movies=int(n * 1.03) + 100)
    async with running_standin(config) as standin:
        total = discover_count("movie", standin.config)
        row = await run(standin, tmp, "discover-enumeration", SourceSettings(type="discover", details=False))
        pages = row["routes"].get("discover", 0)
        minimum = math.ceil(total / 20)
        print(
            f"\nenumerating a {total:,}-title discover query (details = false, no date bounds): "
            f"{pages:,} discover pages against the minimum {minimum:,} "
            f"(+{pages - minimum} = {100 * (pages - minimum) / minimum:.1f}%: first pages of windows "
            f"too large to page through, split again); {row['records']:,} records, each once"
        )


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--titles", type=int, default=2000, help="titles per source (default 2000)")
    p.add_argument("--discover-titles", type=int, default=50_000, help="size of the enumeration test")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await per_source(args.titles, Path(tmp))
        await enumeration(args.discover_titles, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
