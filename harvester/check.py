"""`python -m harvester check config.toml`: what a run would do, without harvesting.

Validates the config (already done by loading it), the credential and the sink (the sink's probe
object is written and deleted, so nothing stays behind), counts what the source would yield after its
filters (for discover, TMDB's `total_results`: one request), and estimates the requests and the time
the harvest would take at the configured rate.

It also says what `refresh` would cost today: with a complete run in the sink, the change-list pages
(page 1 of each window is asked: it tells the window's total), the changed ids the harvest may hold,
the revisit slices due and the titles entered; without one, that `refresh` runs the full harvest. The
state and the selection are only read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime

from .config import Credentials, Settings, harvest_id, media_of
from .errors import NotReady
from .lake.selection import load_selection
from .lake.sink import Sink, open_sink
from .lake.state import StateStore, state_key
from .ops.progress import format_duration
from .reference import check_line, due_tables
from .source import DiscoverSource, PeopleSource, open_source
from .source import refresh as refresh_source
from .source.changes import MAX_PAGES, ChangeCounts, change_page, change_windows
from .source.discover import PAGE_SIZE, Enumerator
from .source.refresh import Listing
from .tmdb.client import TmdbClient
from .tmdb.ratelimit import RateLimiter
from .tmdb.seasons import FOLLOW_UP_SEASONS, first_seasons

CHANGES_PAGE = 100  # ids a change-list page holds

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
    requests, how = _estimate(settings, titles)
    if settings.source.seasons:
        first = len(first_seasons(settings.tmdb.append))
        how += (
            f"; seasons: the first {first} of each series in that request, then 1 more request per "
            f"{FOLLOW_UP_SEASONS} seasons past them (a series' count is known only from its details)"
        )
    return requests, how


def _estimate(settings: Settings, titles: int) -> tuple[int, str]:
    src, tmdb = settings.source, settings.tmdb
    if src.type == "discover":
        pages = math.ceil(titles / PAGE_SIZE)
        per = 1.0 if src.details else 0.0
        return pages + math.ceil(titles * per), f"{pages} discover pages + {per:g} per title for details"
    if src.type == "export":
        return titles, "1 per title (details by TMDB id; the export file itself is not an API request)"
    if src.type == "people":
        return titles, "1 per person (/person/{id} with its appends; the credits are read from the sink)"
    media = media_of(src)
    if src.type == "ids":
        per = REQUESTS_PER_TITLE["tmdb_id"]  # numeric ids; IMDb ids cost like the CSV below
        return math.ceil(titles * per), "about 1 per TMDB id, as for a CSV per IMDb id"
    key = "tv" if media == "tv" else tmdb.lookup
    per = REQUESTS_PER_TITLE[key]
    return round(titles * per), f"about {per:g} per title ({key} lookup)"


@dataclass(frozen=True)
class ChangeWindow:
    """What page 1 of one change-list window said."""

    days: int
    total_pages: int
    total_results: int


@dataclass(frozen=True)
class RefreshEstimate:
    requests: int
    pages: int  # change-list pages
    changed: int  # at most: TMDB's ids, as many as the harvest holds (which of them it holds is unknown)
    revisited: int
    entered: int
    unlisted: int  # ids a day past 500 pages would not list


def estimate_refresh(
    held: int, revisit_days: int, days_since: int, windows: Sequence[ChangeWindow], entered: int
) -> RefreshEstimate:
    """Pure: a refresh's requests, from the held titles, `[refresh] revisit_days`, the days since the
    last complete run started, what the change lists' first pages said, and the titles entered."""
    pages = listed = unlisted = 0
    for w in windows:
        listed += w.total_results
        if w.total_pages <= MAX_PAGES:
            pages += max(1, w.total_pages)
        elif w.days > 1:
            pages += 1 + max(w.days, w.total_pages)  # asked again day by day: about the same pages
        else:
            pages += MAX_PAGES
            unlisted += max(0, w.total_results - MAX_PAGES * CHANGES_PAGE)
    if revisit_days:
        revisited = math.ceil(held * min(days_since, revisit_days) / revisit_days)
    else:
        revisited = held if unlisted else 0  # a day cut short is revisited whole (source/refresh.py)
    changed = min(listed, held)
    titles = min(held, changed + revisited) + entered  # each id once: one details request each
    return RefreshEstimate(pages + titles, pages, changed, revisited, entered, unlisted)


async def refresh_lines(
    settings: Settings, sink: Sink, client: TmdbClient, selected: int | None, today: date
) -> list[str]:
    """What `refresh` would do now, read from the sink's state (nothing is written). `selected`: what
    a listing source selects now (entered ones are fetched), None for a CSV or id list."""
    media = media_of(settings.source)
    old = await StateStore(sink, state_key(harvest_id(settings))).load()
    if old is None or (not old.complete and old.mode == "run"):
        return ["refresh     no complete run yet: `refresh` would run (or resume) the full harvest above"]
    if not old.complete:
        plan = old.source.plan
        left = "" if plan is None else f": {max(0, plan.titles - len(old.done))} of {plan.titles} titles left"
        return [f"refresh     run {old.tag} is a refresh in progress; `refresh` resumes it{left}"]
    selection = await load_selection(sink, old.ref())
    if selection is None:
        return [f"refresh     run {old.tag} has no selection: `refresh` would refuse (use --fresh)"]
    held = len(selection)
    since = datetime.fromisoformat(old.created).date()
    windows, counts = [], ChangeCounts()
    for lo, hi in change_windows(since, today):
        first = await change_page(client, media, lo, hi, 1, counts)
        windows.append(ChangeWindow((hi - lo).days + 1, first.total_pages, first.total_results))
    entered = 0 if selected is None else max(0, selected - held)  # at least: some may have left
    e = estimate_refresh(held, settings.refresh.revisit_days, (today - since).days, windows, entered)
    every = settings.refresh.revisit_days
    slices = f"{min((today - since).days, every)} of {every} slices" if every else "revisit_days = 0"
    lines = [
        f"refresh     from run {old.tag} (started {old.created}): {held} titles held",
        f"            about {e.requests} requests: {e.pages} change-list pages, at most {e.changed} "
        f"changed, {e.revisited} revisited ({slices}), about {e.entered} entered",
        f"            about {format_duration(e.requests / settings.tmdb.rate_limit)} at "
        f"{settings.tmdb.rate_limit:g} requests/s",
    ]
    if e.unlisted:
        lines.append(
            f"            TMDB would not list {e.unlisted} changed ids (a day past {MAX_PAGES} pages)"
        )
    return lines


async def _people(source: PeopleSource) -> tuple[int, str]:
    """The people a people harvest would take now, read from its from-harvest in the sink."""
    try:
        read = await source.read_people(None)
    except NotReady as exc:
        return 0, f"none yet: {exc}"
    assert read is not None, "no stop: the read goes to its end"
    c = read.counts
    return len(read.people), (
        f"{c.credits} credits of {read.titles} titles held by run {read.held.run}: "
        f"{c.filtered_out} filtered out, {len(read.people)} distinct people"
    )


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
            elif isinstance(source, PeopleSource):
                titles, counts = await _people(source)
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
            selected = titles if isinstance(source, Listing) else None
            refresh = await refresh_lines(settings, sink, client, selected, refresh_source.utc_today())
            reference = check_line((await due_tables(sink, refresh_source.utc_today()))[0])
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
            *refresh,
            reference,
        ]
    )
