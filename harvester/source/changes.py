"""TMDB's change lists: `/movie/changes` and `/tv/changes`, the ids changed between two dates.

TMDB answers at most 14 days per query (a wider one is HTTP 422, status_code 20), 100 ids a page, and
dates are days: a title changed today is listed for today however often one asks. A longer gap is asked
window by window, every page of each.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import date, timedelta

from ..items import Media
from ..tmdb.client import RequestFailed, TmdbClient

MAX_SPAN_DAYS = 13  # end - start of one query: 14 calendar days, inside TMDB's limit whichever way it counts


def change_windows(start: date, end: date) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive windows TMDB accepts; empty when start is after end."""
    windows = []
    lo = start
    while lo <= end:
        hi = min(end, lo + timedelta(days=MAX_SPAN_DAYS))
        windows.append((lo, hi))
        lo = hi + timedelta(days=1)
    return windows


@dataclass
class ChangeCounts:
    pages: int = 0
    ids: int = 0


async def changed_ids(
    client: TmdbClient, media: Media, start: date, end: date, counts: ChangeCounts
) -> AsyncGenerator[int, None]:
    """Every id TMDB lists as changed from `start` to `end` (both days included), possibly repeated
    across windows; the caller de-duplicates."""
    for lo, hi in change_windows(start, end):
        page, pages = 1, 1
        while page <= pages:
            params = {"start_date": lo.isoformat(), "end_date": hi.isoformat(), "page": str(page)}
            counts.pages += 1
            try:
                reply = await client.get(f"/{media}/changes", params)
            except RequestFailed as exc:
                raise exc.translated(f"{media}/changes") from None
            data = reply.data
            results = data.get("results") if isinstance(data, dict) else None
            if reply.status != 200 or not isinstance(results, list):
                raise RequestFailed(f"unexpected answer (HTTP {reply.status})", transient=True).translated(
                    f"{media}/changes"
                )
            pages = int(data.get("total_pages", 1) or 1)
            for result in results:
                if isinstance(result, dict) and isinstance(result.get("id"), int):
                    counts.ids += 1
                    yield result["id"]
            page += 1
