"""Change lists as they come (issue 16, items 5 and 9): null ids, ids on two pages, TMDB's 500 pages,
and the rolling revisit (`[refresh] revisit_days`) that bounds what the lists miss.

Over real sockets against the stand-in, into a local-directory sink. What to expect comes from the
stand-in's day model (tmdb_standin.days, discover.discover_ids) and from the days and slices computed
here, not from the harvester's code. The harvester's "today" is moved with `harvester.source.refresh.
utc_today` where a test needs refreshes on later days than the one the full harvest started on.
"""

from __future__ import annotations

import io
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import TOKEN, get, standin_config
from harvest_helpers import read_local_lake

from harvester.check import ChangeWindow, check, estimate_refresh
from harvester.config import (
    Credentials,
    RefreshSettings,
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
)
from harvester.errors import SourceError
from harvester.ops import metrics
from harvester.ops.stats import format_summary
from harvester.runner import RunResult, harvest
from harvester.source import changes as harvester_changes
from harvester.source import refresh as refresh_source
from harvester.source import revisit
from tmdb_standin import RunningStandin, days, running_standin
from tmdb_standin.discover import discover_ids

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
MOVIES = 2_000
EVERY = "1900-01-01"  # a discover query that selects the whole universe


def settings(standin: RunningStandin, lake: Path, source: SourceSettings, revisit_days: int) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16, append=()),
        source=source,
        sink=SinkSettings(url=str(lake), chunk_size=100, format="jsonl"),
        refresh=RefreshSettings(revisit_days=revisit_days),
    )


DISCOVER = SourceSettings(type="discover", date_from=EVERY)


def run_ids(lake: Path, tag: str) -> Counter[int]:
    """TMDB ids of the records in one run's data objects."""
    found: Counter[int] = Counter()
    for key, records in read_local_lake(lake).data.items():
        if tag in key:
            found.update(int(str(r["id"])) for r in records)
    return found


def run_records(lake: Path, tag: str) -> dict[int, dict[str, Any]]:
    return {
        int(str(r["id"])): r for key, recs in read_local_lake(lake).data.items() if tag in key for r in recs
    }


def removed(lake: Path) -> set[int]:
    return {int(str(o["tmdb_id"])) for o in read_local_lake(lake).outcomes if o["outcome"] == "removed"}


def plan(lake: Path, source_type: str = "discover") -> dict[str, Any]:
    state = orjson.loads((lake / "_harvest" / f"state-{source_type}-movie.json").read_bytes())
    return dict(state["source"]["plan"])


def slices(since: date, today: date, every: int) -> set[int]:
    """The revisit slices of the days after `since` up to `today`: the issue's rule, written out."""
    return {(since + timedelta(days=n)).toordinal() % every for n in range(1, (today - since).days + 1)}


def movie_details(standin: RunningStandin, before: dict[str, int], pages_before: int) -> int:
    """Details requests since `before` (change-list answers are counted in the movie route too)."""
    return standin.stats.by_route["movie"] - before["movie"] - (standin.stats.changes - pages_before)


@pytest.fixture
async def quirky() -> AsyncIterator[RunningStandin]:
    """Day 1 is today; the "changes" quirk at a rate high enough to show in 60 change-list entries."""
    config = standin_config(
        discover_movies=MOVIES,
        discover_tv=100,
        base_date=datetime.now(UTC).date() - timedelta(days=1),
        changed_share=0.1,  # some 200 listed ids a day: three pages
        new_share=0.005,
        gone_share=0.005,
        quirks=frozenset({"changes"}),
        quirk_rate=0.1,
    )
    async with running_standin(config) as running:
        yield running


# ---------------------------------------------------------------------------------------------
# The stand-in's quirk


async def all_pages(session: aiohttp.ClientSession, base: str, **params: str) -> list[list[Any]]:
    pages: list[list[Any]] = []
    page, total_pages = 1, 1
    while page <= total_pages:
        status, body = await get(session, f"{base}/movie/changes", page=str(page), **params)
        assert status == 200, body
        pages.append(body["results"])
        total_pages = body["total_pages"]
        assert body["total_pages"] == math.ceil(body["total_results"] / 100)
        page += 1
    return pages


async def test_the_quirk_plants_null_ids_and_repeats_and_refuses_page_501(
    quirky: RunningStandin, client: aiohttp.ClientSession
) -> None:
    quirky.config.day = 1
    base = quirky.base_url
    pages = await all_pages(client, base)
    entries = [e for page in pages for e in page]
    _, last = await get(client, f"{base}/movie/changes", page="1")
    assert len(entries) == last["total_results"] and all(len(p) == 100 for p in pages[:-1])
    listed = set(days.listed_ids(quirky.config, "movie", 1)) | set(days.listed_ids(quirky.config, "movie", 0))
    ids = [e["id"] for e in entries if e["id"] is not None]
    assert set(ids) == listed  # every listed id is there, nothing else but nulls
    assert any(e == {"id": None, "adult": None} for e in entries)
    assert any(e["id"] is not None and e["adult"] is None for e in entries)
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    assert repeated and max(Counter(ids).values()) == 2
    for tmdb_id in repeated:  # the list moved while it was paged: an id of page N again on page N+1
        where = [n for n, page in enumerate(pages) for e in page if e["id"] == tmdb_id]
        assert where[1] == where[0] + 1
    assert await all_pages(client, base) == pages  # the same pages for the same query
    assert quirky.stats.quirks["changes"] > 0

    status, body = await get(client, f"{base}/movie/changes", page="501")
    assert (status, body) == (422, {"errors": ["page must be less than or equal to 500"]})
    quirky.config.quirks = frozenset()
    status, body = await get(client, f"{base}/movie/changes", page="501")
    assert (status, body["status_code"]) == (400, 22)  # without the quirk, as before
    plain = await all_pages(client, base)
    assert [e for p in plain for e in p if e["id"] is None or e["adult"] is None] == []


async def test_a_crowded_change_day_lists_its_extra_ids_past_500_pages(client: aiohttp.ClientSession) -> None:
    base_date = date(2026, 3, 2)
    config = standin_config(
        discover_movies=500, discover_tv=10, base_date=base_date, day=2, crowded_changes={1: 51_000, 2: 300}
    )
    async with running_standin(config) as running:
        one = (base_date + timedelta(days=1)).isoformat()
        status, body = await get(client, f"{running.base_url}/movie/changes", start_date=one, end_date=one)
        assert status == 200 and body["total_results"] == len(days.listed_ids(config, "movie", 1)) >= 51_000
        assert body["total_pages"] == math.ceil(body["total_results"] / 100) > 500  # TMDB says so too
        status, body = await get(client, f"{running.base_url}/movie/changes", page="500", start_date=one)
        assert status == 200 and len(body["results"]) == 100
    crowded1, crowded2 = days.crowded_ids(config, "movie", 1), days.crowded_ids(config, "movie", 2)
    population = set(discover_ids("movie", config, date_gte=EVERY))
    assert len(crowded1) == 51_000 and population <= set(crowded1)  # the titles a harvest holds
    assert len(crowded2) == 300 and not set(crowded1) & set(crowded2)  # each crowded day its own ids
    with pytest.raises(ValueError, match="crowded_changes"):
        standin_config(crowded_changes={0: 5})


# ---------------------------------------------------------------------------------------------
# The harvester's reading of them


async def test_null_and_repeated_ids_are_taken_once(
    quirky: RunningStandin, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    s = settings(quirky, lake, DISCOVER, 0)
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    held = set(discover_ids("movie", quirky.config, date_gte=EVERY))

    quirky.config.day = 1
    before, pages_before = quirky.stats.by_route.copy(), quirky.stats.changes
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete"
    now = set(discover_ids("movie", quirky.config, date_gte=EVERY))
    entered, left = now - held, held - now
    changed = set(days.listed_ids(quirky.config, "movie", 1)) & (held - left)
    # The pages the refresh read (the same query gives the same pages): held ids twice, and null ids.
    entries = [e for page in await all_pages(client, quirky.base_url) for e in page]
    twice = [i for i, n in Counter(e["id"] for e in entries).items() if n > 1 and i in changed]
    assert twice and any(e["id"] is None for e in entries)
    got = run_ids(lake, refreshed.summary.run)
    assert changed and set(got) == changed | entered and max(got.values()) == 1
    assert movie_details(quirky, before, pages_before) == len(changed | entered)  # each id asked once
    assert removed(lake) == left
    p = plan(lake)
    assert (p["changed"], p["entered"], p["left"], p["revisited"]) == (
        len(changed), len(entered), len(left), 0,
    )  # fmt: skip
    assert p["junk"] == sum(e["id"] is None for e in entries) and p["unlisted"] == 0  # skipped, counted
    assert refreshed.summary.refresh is not None and refreshed.summary.refresh.changes_junk == p["junk"]


async def test_a_window_past_500_pages_is_asked_day_by_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two crowded days of 30,000 ids: the window has 600 pages, each day 300. The held titles are all
    on the earlier day, which the window lists on pages 301-600: a refresh that paged the window to 500
    would miss a third of them."""
    today = datetime.now(UTC).date()
    config = standin_config(
        discover_movies=MOVIES,
        discover_tv=100,
        base_date=today - timedelta(days=1),
        crowded_changes={1: 30_000, 2: 30_000},
        quirks=frozenset({"changes"}),  # a page 501 would be refused...
        quirk_rate=0.0,  # ...and nothing else planted
    )
    async with running_standin(config) as standin:
        lake = tmp_path / "lake"
        s = settings(standin, lake, DISCOVER, 0)
        assert (await harvest(s, CREDS, progress=False)).status == "complete"
        held = set(discover_ids("movie", config, date_gte=EVERY))

        standin.config.day = 2
        monkeypatch.setattr(refresh_source, "utc_today", lambda: today + timedelta(days=1))
        pages_before = standin.stats.changes
        refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
        assert refreshed.status == "complete"
        now = set(discover_ids("movie", config, date_gte=EVERY))
        entered, left = now - held, held - now
        listed = set(days.listed_ids(config, "movie", 1)) | set(days.listed_ids(config, "movie", 2))
        assert held <= listed
        got = run_ids(lake, refreshed.summary.run)
        assert set(got) == (held - left) | entered and max(got.values()) == 1
        pages = standin.stats.changes - pages_before
        day1, day2 = (math.ceil(len(days.listed_ids(config, "movie", d)) / 100) for d in (1, 2))
        assert pages == 1 + day1 + day2  # the window's page 1, then every page of each day
        assert standin.stats.by_status.get(422, 0) == 0
        assert plan(lake)["unlisted"] == 0 and refreshed.summary.refresh is not None
        assert refreshed.summary.refresh.changes_unlisted == 0


@pytest.mark.parametrize("revisit_days", [0, 30])
async def test_a_single_day_past_500_pages_is_never_truncated_in_silence(
    tmp_path: Path, revisit_days: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A day of 52,000 ids: TMDB serves 50,000 of them. The refresh says how many it could not read
    (summary, warning, metric, plan). With revisits off it revisits every held title; with them on,
    a same-day refresh revisits no slice and the warning says that revisit_days bounds the rest."""
    today = datetime.now(UTC).date()
    config = standin_config(
        discover_movies=MOVIES,
        discover_tv=100,
        base_date=today - timedelta(days=1),
        crowded_changes={1: 52_000},
        changed_share=0.01,
    )
    async with running_standin(config) as standin:
        lake = tmp_path / "lake"
        s = settings(standin, lake, DISCOVER, revisit_days)
        assert (await harvest(s, CREDS, progress=False)).status == "complete"
        held = set(discover_ids("movie", config, date_gte=EVERY))

        standin.config.day = 1
        pages_before = standin.stats.changes
        with caplog.at_level(logging.WARNING, logger="harvester"):
            refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
        assert refreshed.status == "complete"
        assert standin.stats.changes - pages_before == 500  # to TMDB's last page, not one more
        listed = days.listed_ids(config, "movie", 1)
        unlisted = len(listed) - 50_000
        now = set(discover_ids("movie", config, date_gte=EVERY))
        entered, left = now - held, held - now
        shown = set(listed[:50_000])  # one day's ids come ascending: pages 1-500 hold the first 50,000

        summary = refreshed.summary
        assert summary.refresh is not None and summary.refresh.changes_unlisted == unlisted > 0
        assert plan(lake)["unlisted"] == unlisted
        assert f"not listed       {unlisted} changed ids" in format_summary(summary)
        (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING and "not listed" in r.message]
        assert f"{unlisted} changed ids were not listed" in warning.message
        line = metric_line(refreshed)
        assert line["ChangesUnlisted"] == unlisted

        got = run_ids(lake, summary.run)
        assert max(got.values()) == 1
        if revisit_days == 0:
            assert "revisits every held title" in warning.message
            assert set(got) == (held - left) | entered  # every held title, fetched once
            assert summary.refresh.revisited > 0 and line["Revisited"] == summary.refresh.revisited
        else:
            assert "at least every 30 days" in warning.message
            assert summary.refresh.revisited == 0  # same day: no slice is due yet
            assert set(got) == (shown & (held - left)) | entered  # what TMDB listed, and what entered
            assert (held - left) - shown  # held titles it did not list: the slices will reach them


def metric_line(result: RunResult) -> dict[str, Any]:
    out = io.StringIO()
    metrics.emit(result.summary, "h", stream=out)
    (line,) = out.getvalue().splitlines()
    return dict(orjson.loads(line))


async def test_a_refusal_of_page_501_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the harvester to ask past TMDB's last page, TMDB's 422 `{"errors": [...]}` (no status_code)
    stops the refresh with one line that names the request."""
    today = datetime.now(UTC).date()
    config = standin_config(
        discover_movies=300,
        discover_tv=10,
        base_date=today - timedelta(days=1),
        crowded_changes={1: 50_050},
        quirks=frozenset({"changes"}),
        quirk_rate=0.0,
    )
    async with running_standin(config) as standin:
        s = settings(standin, tmp_path / "lake", DISCOVER, 0)
        assert (await harvest(s, CREDS, progress=False)).status == "complete"
        standin.config.day = 1
        monkeypatch.setattr(harvester_changes, "MAX_PAGES", 1_000)  # break the limit on purpose
        with pytest.raises(SourceError) as err:
            await harvest(s, CREDS, mode="refresh", progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"movie/changes {today}..{today} page 501 was refused")
    assert "http_422: page must be less than or equal to 500" in message  # TMDB's words, no code
    assert standin.stats.by_status.get(422) == 1


# ---------------------------------------------------------------------------------------------
# The rolling revisit


def test_the_slices_due_are_the_days_since_the_last_run() -> None:
    since = date(2026, 3, 2)
    assert revisit.due(since, since, 30).slices == frozenset()  # the same day: nothing is stale
    one = revisit.due(since, since + timedelta(days=1), 30)
    assert one.slices == {(since + timedelta(days=1)).toordinal() % 30} and one.share == 1 / 30
    three = revisit.due(since, since + timedelta(days=3), 7)
    assert three.slices == slices(since, since + timedelta(days=3), 7) and len(three.slices) == 3
    assert revisit.due(since, since + timedelta(days=45), 30).slices == frozenset(range(30))
    assert revisit.due(since, since + timedelta(days=5), 0).share == 0  # off
    assert not revisit.due(since, since + timedelta(days=5), 0).due(5)
    assert revisit.everything(0).due(12345)
    # Daily refreshes: any revisit_days consecutive days revisit every slice once.
    covered = Counter(
        s
        for d in range(30)
        for s in revisit.due(since + timedelta(days=d), since + timedelta(days=d + 1), 30).slices
    )
    assert set(covered) == set(range(30)) and set(covered.values()) == {1}


@pytest.fixture
async def two_days() -> AsyncIterator[RunningStandin]:
    """Day 2 is today. A refresh asked from today lists day 2 only: the titles day 1 changed and removed
    are ones the change lists never name to it, as TMDB's lists miss edits and deletions."""
    config = standin_config(
        discover_movies=MOVIES,
        discover_tv=100,
        base_date=datetime.now(UTC).date() - timedelta(days=2),
        changed_share=0.05,
        new_share=0.0,
        gone_share=0.02,
    )
    async with running_standin(config) as running:
        yield running


def id_source(standin: RunningStandin) -> SourceSettings:
    """The day-0 population as a list of TMDB ids: its own selection, so nothing enters or leaves."""
    ids = discover_ids("movie", standin.config, date_gte=EVERY)
    return SourceSettings(type="ids", ids=tuple(str(i) for i in ids))


@pytest.mark.parametrize(("revisit_days", "gap"), [(4, 1), (5, 3), (3, 4), (0, 2)])
async def test_a_refresh_revisits_the_slices_of_the_days_since(
    two_days: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, revisit_days: int, gap: int
) -> None:
    lake = tmp_path / "lake"
    s = settings(two_days, lake, id_source(two_days), revisit_days)
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    held = set(run_ids(lake, first.summary.run))  # what the ids answered for (a few are not movies)
    assert len(held) > 0.9 * MOVIES
    since = datetime.now(UTC).date()  # the full run started today

    two_days.config.day = 2
    today = since + timedelta(days=gap)  # the schedule skipped gap - 1 days
    monkeypatch.setattr(refresh_source, "utc_today", lambda: today)
    before, pages_before = two_days.stats.by_route.copy(), two_days.stats.changes
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete"

    cfg = two_days.config
    changed = set(days.listed_ids(cfg, "movie", 2)) & held
    due = slices(since, today, revisit_days) if revisit_days else set()
    revisited = {i for i in held - changed if revisit_days and i % revisit_days in due}
    alive = {i for i in held if days.alive(cfg, "movie", i)}
    got = run_ids(lake, refreshed.summary.run)
    assert set(got) == (changed | revisited) & alive and max(got.values()) == 1
    assert removed(lake) == (changed | revisited) - alive  # a revisit that answers 404 left TMDB
    assert movie_details(two_days, before, pages_before) == len(changed | revisited)
    p = plan(lake, "ids")
    assert (p["changed"], p["revisited"]) == (len(changed), len(revisited))
    assert refreshed.summary.refresh is not None and refreshed.summary.refresh.revisited == len(revisited)
    if not revisit_days:
        assert revisited == set()
        return
    if gap >= revisit_days:
        assert revisited == held - changed  # the gap reached revisit_days: every slice
    else:
        assert 0 < len(revisited) < len(held - changed)
    # What the lists never named is caught: day 1's edits (revision 1) and removals among the slices.
    records = run_records(lake, refreshed.summary.run)
    missed_edits = revisited & set(days.changed_ids(cfg, "movie", 1)) & alive
    assert missed_edits and all("[revision" in str(records[i]["overview"]) for i in missed_edits)
    assert revisited - alive  # and some removals: recorded, not stored


async def test_check_counts_what_a_refresh_will_cost(
    two_days: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    s = settings(two_days, lake, id_source(two_days), 4)
    report = await check(s, CREDS)
    assert "refresh     no complete run yet: `refresh` would run (or resume) the full harvest" in report
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    held = len(run_ids(lake, first.summary.run))
    since = datetime.now(UTC).date()
    two_days.config.day = 2
    monkeypatch.setattr(refresh_source, "utc_today", lambda: since + timedelta(days=1))
    files = sorted(p for p in lake.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]

    pages_before = two_days.stats.changes
    report = await check(s, CREDS)
    assert two_days.stats.changes - pages_before == 1  # page 1 of the one window, no more
    assert sorted(p for p in lake.rglob("*") if p.is_file()) == files  # nothing written
    assert [p.stat().st_mtime_ns for p in files] == stamps
    listed = len(days.listed_ids(two_days.config, "movie", 2))
    expected = estimate_refresh(held, 4, 1, [ChangeWindow(2, math.ceil(listed / 100), listed)], 0)
    assert expected.revisited == math.ceil(held / 4) and expected.changed == listed
    assert f"refresh     from run {first.summary.run} " in report and f"{held} titles held" in report
    assert (
        f"about {expected.requests} requests: {expected.pages} change-list pages, at most {listed} changed, "
        f"{expected.revisited} revisited (1 of 4 slices), about 0 entered"
    ) in report
    # The refresh itself stays within the estimate.
    before, pages_before = two_days.stats.by_route.copy(), two_days.stats.changes
    assert (await harvest(s, CREDS, mode="refresh", progress=False)).status == "complete"
    spent = two_days.stats.by_route["movie"] - before["movie"]
    assert spent <= expected.requests and two_days.stats.changes - pages_before == expected.pages


def test_the_refresh_estimate_is_pure_arithmetic() -> None:
    w = ChangeWindow
    held = 1_000_000
    daily = estimate_refresh(held, 30, 1, [w(2, 150, 15_000)], 300)
    assert (daily.pages, daily.changed, daily.revisited, daily.entered) == (150, 15_000, 33_334, 300)
    assert daily.requests == 150 + 15_000 + 33_334 + 300
    assert estimate_refresh(held, 30, 0, [w(1, 0, 0)], 0).requests == 1  # same day: page 1, nothing else
    assert estimate_refresh(held, 30, 45, [w(14, 10, 1000)], 0).revisited == held  # every slice
    split = estimate_refresh(held, 0, 3, [w(3, 620, 62_000)], 0)
    assert split.pages == 621 and split.unlisted == 0 and split.revisited == 0  # asked day by day
    cut = estimate_refresh(held, 0, 1, [w(1, 520, 52_000)], 0)
    assert cut.pages == 500 and cut.unlisted == 2_000 and cut.revisited == held  # revisited whole
    assert estimate_refresh(held, 30, 1, [w(1, 520, 52_000)], 0).revisited == 33_334
