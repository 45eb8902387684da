"""TMDB's change lists: `/movie/changes` and `/tv/changes`, the ids changed between two dates.

TMDB answers at most 14 days per query (a wider one is HTTP 422, status_code 20), 100 ids a page, and
dates are days: a title changed today is listed for today however often one asks. A longer gap is asked
window by window, every page of each. The lists come as they come (../shared/reference/tmdb-quirks.md):

- entries with `"id": null` (or no usable id) are skipped and counted; `"adult": null` is no matter;
- the same id can appear on two pages (the list moves while it is paged): ids are yielded as listed,
  and the caller's Selection takes each once;
- TMDB serves at most 500 pages a query (page 501 is HTTP 422): a window whose page 1 says it has more
  is asked again day by day. A single day with more is taken to its page 500, and the ids it would not
  list (its `total_results` less the entries pages 1-500 held) are counted in `ChangeCounts.unlisted`
  and the day in `truncated`: the caller must say so and keep those titles from going stale
  (source/refresh.py revisits).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..items import Media
from ..tmdb.client import RequestFailed, TmdbClient

log = logging.getLogger(__name__)

MAX_SPAN_DAYS = 13  # end - start of one query: 14 calendar days, inside TMDB's limit whichever way it counts
MAX_PAGES = 500  # TMDB refuses page 501 of any list: one query lists at most 50,000 ids


def change_windows(start: date, end: date) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive windows TMDB accepts; empty when start is after end."""
    windows = []
    lo = start
    while lo <= end:
        hi = min(end, lo + timedelta(days=MAX_SPAN_DAYS))
        windows.append((lo, hi))
        lo = hi + timedelta(days=1)
    return windows


def days_of(lo: date, hi: date) -> list[tuple[date, date]]:
    """[lo, hi] as one-day windows."""
    return [(lo + timedelta(days=n), lo + timedelta(days=n)) for n in range((hi - lo).days + 1)]


@dataclass
class ChangeCounts:
    pages: int = 0  # change-list pages read
    ids: int = 0  # ids yielded (repeats included)
    junk: int = 0  # entries skipped: "id": null, or not an entry at all
    split: int = 0  # windows asked again day by day (more than MAX_PAGES pages)
    unlisted: int = 0  # ids TMDB would not list: a single day past MAX_PAGES pages
    truncated: list[tuple[date, date]] = field(default_factory=list)  # the queries cut short


@dataclass(frozen=True)
class ChangePage:
    results: list[Any]
    total_pages: int
    total_results: int


async def changed_ids(
    client: TmdbClient, media: Media, start: date, end: date, counts: ChangeCounts
) -> AsyncGenerator[int, None]:
    """Every id TMDB lists as changed from `start` to `end` (both days included), possibly repeated;
    the caller de-duplicates."""
    for lo, hi in change_windows(start, end):
        first = await change_page(client, media, lo, hi, 1, counts)
        if first.total_pages > MAX_PAGES and lo < hi:
            counts.split += 1
            log.info(
                "%s/changes %s..%s has %d pages, TMDB serves %d: asking it day by day",
                media, lo, hi, first.total_pages, MAX_PAGES,
            )  # fmt: skip
            for day, _ in days_of(lo, hi):
                async for tmdb_id in _query(client, media, day, day, counts, None):
                    yield tmdb_id
        else:
            async for tmdb_id in _query(client, media, lo, hi, counts, first):
                yield tmdb_id


async def _query(
    client: TmdbClient, media: Media, lo: date, hi: date, counts: ChangeCounts, first: ChangePage | None
) -> AsyncGenerator[int, None]:
    """Pages 1 to the last (at most MAX_PAGES) of one query; counts what TMDB would not list."""
    page = first or await change_page(client, media, lo, hi, 1, counts)
    number, held = 1, 0
    while True:
        held += len(page.results)
        for result in page.results:
            tmdb_id = result.get("id") if isinstance(result, dict) else None
            if isinstance(tmdb_id, int) and not isinstance(tmdb_id, bool) and tmdb_id > 0:
                counts.ids += 1
                yield tmdb_id
            else:
                counts.junk += 1
        # The list may grow while it is paged: each page's total_pages says how far to go.
        if number >= min(page.total_pages, MAX_PAGES):
            break
        number += 1
        page = await change_page(client, media, lo, hi, number, counts)
    if page.total_pages > MAX_PAGES:
        counts.unlisted += max(0, page.total_results - held)
        counts.truncated.append((lo, hi))


async def change_page(
    client: TmdbClient, media: Media, lo: date, hi: date, page: int, counts: ChangeCounts
) -> ChangePage:
    what = f"{media}/changes {lo}..{hi} page {page}"
    params = {"start_date": lo.isoformat(), "end_date": hi.isoformat(), "page": str(page)}
    counts.pages += 1
    try:
        reply = await client.get(f"/{media}/changes", params)
    except RequestFailed as exc:
        raise exc.translated(what) from None
    data = reply.data
    results = data.get("results") if isinstance(data, dict) else None
    if reply.status != 200 or not isinstance(results, list):
        raise RequestFailed(f"unexpected answer (HTTP {reply.status})", transient=True).translated(what)
    return ChangePage(results, _count(data.get("total_pages")), _count(data.get("total_results")))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
