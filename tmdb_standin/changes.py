"""`GET /3/movie/changes`, `/3/tv/changes` and `/3/person/changes`: the ids TMDB lists as changed
in a window of days (the people's days: people.py).

Parameters (anything else is ignored):
    start_date, end_date   YYYY-MM-DD, both days included. Default: the last 24 hours, i.e. from
                           yesterday to today (the server's today, days.py); a missing end is today,
                           a missing start is the day before the end
    page                   1..500 as discover: 0, 501+ or not an integer is HTTP 400, status_code 22
                           (with the "changes" quirk, 501+ is refused as TMDB refuses it: HTTP 422,
                           {"errors":["page must be less than or equal to 500"]}, no status_code)

Errors: a window longer than 14 days (end - start > 14) or ending before it starts is HTTP 422,
status_code 20 ("Invalid date range: Should be a range no longer than 14 days."); a date that is not
YYYY-MM-DD is HTTP 400, status_code 23 ("Invalid date: Format needs to be YYYY-MM-DD."), TMDB's
documented code for a malformed date (which code the changes endpoints really send is unverified).

Answer: {"results": [{"id": N, "adult": false}, ...], "page", "total_pages", "total_results"}, 100
results a page; a page past the last has no results (total_pages = ceil(total / 100), 0 when none).
A title is listed once per query, however many days of the window it changed on: the days of the
window are taken from the latest back, each day's ids ascending. The ids of a day are its changed,
appeared, gone and crowded titles (days.listed_ids); days before day 1 and after today list nothing, so
asking twice on the same day lists the same ids. `total_pages` and `total_results` are the whole list's,
past page 500 too (TMDB reports them so and refuses the pages).

The "changes" quirk (tmdb-quirks.md: lists as they come) plants, for each listed id at `quirk_rate`
each (drawn from the seed and the window, so the same query gives the same pages): an entry
{"id":null,"adult":null} before it, "adult": null on it, and the id again at the start of the next page
(the list moved while it was paged). The planted entries are entries like any other: `total_results`
counts them and the pages hold them.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import date as Date
from datetime import timedelta
from typing import Final, NamedTuple

from . import people
from .days import DaysConfig, TimelineKey, crowded_numbers, day_of, timeline, timeline_key, today
from .discover import is_date
from .people import Subject
from .titles import imdb_id_from_number, title_facts, tmdb_id_for_number

PAGE_SIZE: Final = 100
MAX_SPAN_DAYS: Final = 14
RANGE_ERROR: Final = 20
DATE_ERROR: Final = 23
MAX_PAGE: Final = 500
PAGE_LIMIT_BODY: Final = b'{"errors":["page must be less than or equal to 500"]}'  # HTTP 422, TMDB's own
_CACHED: Final = 16
_lists: OrderedDict[object, list[tuple[int, bool]]] = OrderedDict()


class Entry(NamedTuple):
    """One result of a change list as served; `planted` marks what the quirk put there."""

    id: int | None
    adult: bool | None
    planted: bool = False


_quirked: OrderedDict[object, list[Entry]] = OrderedDict()


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


class _ListKey(NamedTuple):
    """What a window's list depends on: the catalogue, the days it covers up to today, the crowded days."""

    timeline: TimelineKey | people.DaysKey
    first: int
    last: int
    crowded: tuple[tuple[int, int], ...]


def _key(config: DaysConfig, media: Subject, lo: Date, hi: Date) -> _ListKey:
    first = max(1, day_of(config, lo))
    last = min(config.day, day_of(config, hi))
    line = people.days_key(config) if media == "person" else timeline_key(media, config)
    return _ListKey(line, first, last, tuple(sorted(config.crowded_changes.items())))


def listed(config: DaysConfig, media: Subject, lo: Date, hi: Date) -> list[tuple[int, bool]]:
    """(TMDB id, adult) of every title (person) listed in [lo, hi], latest day first, each once."""
    if media == "person":
        return people.listed(config, lo, hi)  # /person/changes: the people's days (people.py)
    key = _key(config, media, lo, hi)
    first, last = key.first, key.last
    cached = _lists.get(key)
    if cached is not None:
        _lists.move_to_end(key)
        return cached
    line = timeline(media, config)
    seen: set[int] = set()
    out: list[tuple[int, bool]] = []
    for d in range(last, first - 1, -1):
        c = line.day(d)
        numbers = {*c.changed, *c.appeared, *c.gone, *crowded_numbers(config, media, d)}
        day_ids = sorted((tmdb_id_for_number(media, n), n) for n in numbers)
        for tmdb_id, n in day_ids:
            if tmdb_id not in seen:
                seen.add(tmdb_id)
                out.append((tmdb_id, title_facts(media, imdb_id_from_number(n)).adult))
    _lists[key] = out
    if len(_lists) > _CACHED:
        _lists.popitem(last=False)
    return out


def past_last_page(text: str | None) -> bool:
    """Whether `page` asks beyond page 500 (the quirk's HTTP 422 rather than discover's 400)."""
    return text is not None and text.isascii() and text.isdigit() and int(text) > MAX_PAGE


def quirked(config: DaysConfig, media: Subject, lo: Date, hi: Date, rate: float) -> list[Entry]:
    """The results of a window in page order with the quirk on: the listed ids and what the quirk
    plants among them at `rate` (see the module docstring)."""
    everything = listed(config, media, lo, hi)
    key = (*_key(config, media, lo, hi), rate)
    cached = _quirked.get(key)
    if cached is not None:
        _quirked.move_to_end(key)
        return cached
    rng = random.Random(f"standin-changes:{media}:{config.seed}:{lo}:{hi}")
    out: list[Entry] = []
    again: list[Entry] = []  # ids of the page being filled, to appear again at the start of the next

    def add(entry: Entry) -> None:
        # The first entry past a page's end: the repeats of that page come first, all on this page
        # (at most PAGE_SIZE of them, one per listed id of the page before).
        if again and len(out) % PAGE_SIZE == 0:
            out.extend(again)
            again.clear()
        out.append(entry)

    for tmdb_id, adult in everything:
        null, no_adult, repeat = rng.random() < rate, rng.random() < rate, rng.random() < rate
        if null:
            add(Entry(None, None, planted=True))
        add(Entry(tmdb_id, None if no_adult else adult, planted=no_adult))
        if repeat:
            again.append(Entry(tmdb_id, adult, planted=True))
    # The last page's repeats have no next page to appear on.
    _quirked[key] = out
    if len(_quirked) > _CACHED:
        _quirked.popitem(last=False)
    return out


def _json(value: int | bool | None) -> bytes:
    if value is None:
        return b"null"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return b"%d" % value


class Page(NamedTuple):
    body: bytes
    planted: int  # entries on it that the quirk planted


def page_body(
    config: DaysConfig, media: Subject, lo: Date, hi: Date, page: int, rate: float | None = None
) -> Page:
    """One page of /{media}/changes for a valid window and page; `rate`: the "changes" quirk's."""
    at = slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)
    everything: list[Entry] | list[tuple[int, bool]]
    if rate is None:
        everything = listed(config, media, lo, hi)
        chosen = [Entry(i, a) for i, a in everything[at]]
    else:
        everything = quirked(config, media, lo, hi, rate)
        chosen = everything[at]
    results = b",".join(b'{"id":%s,"adult":%s}' % (_json(e.id), _json(e.adult)) for e in chosen)
    total = len(everything)
    pages = -(-total // PAGE_SIZE)
    body = b'{"results":[%s],"page":%d,"total_pages":%d,"total_results":%d}' % (results, page, pages, total)
    return Page(body, sum(e.planted for e in chosen))
