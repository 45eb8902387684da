"""`GET /3/movie/changes` and `/3/tv/changes`: the ids TMDB lists as changed in a window of days.

Parameters (anything else is ignored):
    start_date, end_date   YYYY-MM-DD, both days included. Default: the last 24 hours, i.e. from
                           yesterday to today (the server's today, days.py); a missing end is today,
                           a missing start is the day before the end
    page                   1..500 as discover: 0, 501+ or not an integer is HTTP 400, status_code 22

Errors: a window longer than 14 days (end - start > 14) or ending before it starts is HTTP 422,
status_code 20 ("Invalid date range: Should be a range no longer than 14 days."); a date that is not
YYYY-MM-DD is HTTP 400, status_code 23 ("Invalid date: Format needs to be YYYY-MM-DD."), TMDB's
documented code for a malformed date (which code the changes endpoints really send is unverified).

Answer: {"results": [{"id": N, "adult": false}, ...], "page", "total_pages", "total_results"}, 100
results a page; a page past the last has no results (total_pages = ceil(total / 100), 0 when none).
A title is listed once per query, however many days of the window it changed on: the days of the
window are taken from the latest back, each day's ids ascending. The ids of a day are its changed,
appeared and gone titles (days.listed_ids); days before day 1 and after today list nothing, so asking
twice on the same day lists the same ids.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date as Date
from datetime import timedelta
from typing import Final

from harvester.items import Media

from .days import DaysConfig, day_of, timeline, timeline_key, today
from .discover import is_date
from .titles import imdb_id_from_number, title_facts, tmdb_id_for_number

PAGE_SIZE: Final = 100
MAX_SPAN_DAYS: Final = 14
RANGE_ERROR: Final = 20
DATE_ERROR: Final = 23
_CACHED: Final = 16
_lists: OrderedDict[tuple[object, ...], list[tuple[int, bool]]] = OrderedDict()


def window(config: DaysConfig, start: str | None, end: str | None) -> tuple[Date, Date] | int:
    """The window asked for, or the TMDB status_code of the error it deserves."""
    for text in (start, end):
        if text is not None and not is_date(text):
            return DATE_ERROR
    hi = Date.fromisoformat(end) if end else today(config)
    lo = Date.fromisoformat(start) if start else hi - timedelta(days=1)
    if lo > hi or (hi - lo).days > MAX_SPAN_DAYS:
        return RANGE_ERROR
    return lo, hi


def listed(config: DaysConfig, media: Media, lo: Date, hi: Date) -> list[tuple[int, bool]]:
    """(TMDB id, adult) of every title listed in [lo, hi], latest day first, each once."""
    first = max(1, day_of(config, lo))
    last = min(config.day, day_of(config, hi))
    key = (timeline_key(media, config), first, last)
    cached = _lists.get(key)
    if cached is not None:
        _lists.move_to_end(key)
        return cached
    line = timeline(media, config)
    seen: set[int] = set()
    out: list[tuple[int, bool]] = []
    for d in range(last, first - 1, -1):
        c = line.day(d)
        day_ids = sorted((tmdb_id_for_number(media, n), n) for n in {*c.changed, *c.appeared, *c.gone})
        for tmdb_id, n in day_ids:
            if tmdb_id not in seen:
                seen.add(tmdb_id)
                out.append((tmdb_id, title_facts(media, imdb_id_from_number(n)).adult))
    _lists[key] = out
    if len(_lists) > _CACHED:
        _lists.popitem(last=False)
    return out


def page_body(config: DaysConfig, media: Media, lo: Date, hi: Date, page: int) -> bytes:
    """The body of one page of /{media}/changes for a valid window and page."""
    everything = listed(config, media, lo, hi)
    chosen = everything[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    results = b",".join(b'{"id":%d,"adult":%s}' % (i, b"true" if a else b"false") for i, a in chosen)
    total = len(everything)
    pages = -(-total // PAGE_SIZE)
    return b'{"results":[%s],"page":%d,"total_pages":%d,"total_results":%d}' % (results, page, pages, total)
