"""`python -m harvester check config.toml`: what a run would do, without harvesting.

Validates the config (already done by loading it), the credential and the sink (the sink's probe
object is written and deleted, so nothing stays behind), counts what the source would yield after its
filters (for discover, TMDB's `total_results`: one request), and estimates the requests and the time
the harvest would take at the configured rate.
"""

from __future__ import annotations

import math
from contextlib import aclosing
from dataclasses import dataclass

from .config import Credentials, Settings, media_of
from .lake.sink import open_sink
from .ops.progress import format_duration
from .source import DiscoverSource, open_source
from .source.discover import PAGE_SIZE, Enumerator
from .tmdb.client import TmdbClient
from .tmdb.ratelimit import RateLimiter

# Requests per title by lookup path. "direct" is 1 for a movie TMDB finds by IMDb id, 2 for a miss
# (404, then /find to say why), 3 when the direct lookup misbehaves: 1.1 is what the stand-in's mix
# (8% of ids not plain movies) measures with bench/sources.py; TMDB's real mix is unknown.
REQUESTS_PER_TITLE = {"direct": 1.1, "find": 2.0, "tv": 2.0, "tmdb_id": 1.0}


@dataclass(frozen=True)
class Estimate:
    titles: int
    exact: bool  # False: an upper bound (discover with genres_mode "only" filters after listing)
    requests: int
    seconds: float
    detail: str


def estimate_requests(settings: Settings, titles: int) -> tuple[int, str]:
    """Pure: requests a harvest of `titles` titles costs, and how that was reckoned."""
    src, tmdb = settings.source, settings.tmdb
    if src.type == "discover":
        pages = math.ceil(titles / PAGE_SIZE)
        per = 1.0 if src.details else 0.0
        return pages + math.ceil(titles * per), f"{pages} discover pages + {per:g} per title for details"
    if src.type == "export":
        return titles, "1 per title (details by TMDB id; the export file itself is not an API request)"
    media = media_of(src)
    if src.type == "ids":
        per = REQUESTS_PER_TITLE["tmdb_id"]  # numeric ids; IMDb ids cost like the CSV below
        return math.ceil(titles * per), "about 1 per TMDB id, as for a CSV per IMDb id"
    key = "tv" if media == "tv" else tmdb.lookup
    per = REQUESTS_PER_TITLE[key]
    return round(titles * per), f"about {per:g} per title ({key} lookup)"


async def check(settings: Settings, credentials: Credentials) -> str:
    sink = open_sink(settings.sink)
    try:
        limiter = RateLimiter(settings.tmdb.rate_limit)
        async with TmdbClient(settings.tmdb, credentials, limiter) as client:
            await client.check_credential()
            await sink.preflight()
            source = open_source(settings, sink)
            exact = True
            if isinstance(source, DiscoverSource):
                titles = await Enumerator(client, await source.query(client)).total()
                exact = settings.source.genres_mode != "only"
                counts = f"TMDB reports {titles} matching titles"
            else:
                async with aclosing(source.titles()) as stream:
                    async for _ in stream:
                        pass
                st = source.stats
                titles = st.selected
                counts = (
                    f"{st.rows} rows: {st.malformed} malformed, {st.duplicates} duplicates, "
                    f"{st.filtered_out} filtered out, {st.selected} selected"
                )
    finally:
        await sink.aclose()
    requests, how = estimate_requests(settings, titles)
    seconds = requests / settings.tmdb.rate_limit
    return "\n".join(
        [
            "config      ok",
            "credential  ok (TMDB accepted it)",
            f"sink        ok ({settings.sink.url} is writable)",
            f"source      {source.describe()}",
            f"            {counts}",
            f"titles      {'' if exact else 'at most '}{titles}",
            f"requests    about {requests} ({how})",
            f"time        about {format_duration(seconds)} at {settings.tmdb.rate_limit:g} requests/s",
        ]
    )
