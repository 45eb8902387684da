"""Keeping the lake current: a harvest, the stand-in's catalogue moves a day, then `refresh`.

The stand-in's day 1 is today (its day 0 yesterday), so TMDB's change list for today names what the day
changed, appeared and went; what to expect is computed from the stand-in's day model (tmdb_standin.days),
not from the harvester's code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import read_local_lake

from harvester.config import Credentials, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import StateError
from harvester.runner import harvest
from harvester.source import export as export_source
from tmdb_standin import RunningStandin, days, exports, running_standin
from tmdb_standin.discover import discover_ids

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
MOVIES = 2_000


def popular(config: Any, day: int, floor: float) -> set[int]:
    """The ids of the day's export file with popularity >= floor, read as a user would read it."""
    when = config.base_date + timedelta(days=day)
    lines = exports.export_lines(config, exports.ExportFile("movie", False, when))
    return {o["id"] for o in map(orjson.loads, lines) if o["popularity"] >= floor and not o["video"]}


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    """A stand-in whose catalogue changes 3% of its movies a day, and whose day 1 is today."""
    today = datetime.now(UTC).date()
    config = standin_config(
        discover_movies=MOVIES,
        discover_tv=100,
        base_date=today - timedelta(days=1),
        changed_share=0.03,
        new_share=0.005,
        gone_share=0.005,
        hour=12.0,  # the stand-in's today has its export published (from 08:00 UTC)
    )
    async with running_standin(config) as running:
        yield running


def settings(standin: RunningStandin, lake: Path, source: SourceSettings) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16, append=()),
        source=source,
        sink=SinkSettings(url=str(lake), chunk_size=100, format="jsonl"),
    )


def by_run(lake_dir: Path) -> dict[str, Counter[int]]:
    """TMDB ids of the records in each run's data objects (keyed by run tag)."""
    runs: dict[str, Counter[int]] = {}
    for key, records in read_local_lake(lake_dir).data.items():
        tag = "-".join(key.rsplit("/", 1)[-1].split("-")[1:3])
        runs.setdefault(tag, Counter()).update(int(str(r["id"])) for r in records)
    return runs


def records(lake_dir: Path, tag: str) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for key, recs in read_local_lake(lake_dir).data.items():
        if tag in key:
            out.update({int(str(r["id"])): r for r in recs})
    return out


async def test_a_refresh_takes_what_changed_entered_and_left_once(
    moving: RunningStandin, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    s = settings(moving, lake, SourceSettings(type="discover", date_from="1900-01-01"))
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    selection = set(discover_ids("movie", moving.config, date_gte="1900-01-01"))
    assert set(by_run(lake)[first.summary.run]) == selection

    moving.config.day = 1
    before, pages_before = moving.stats.by_route.copy(), moving.stats.changes
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete" and refreshed.summary.run != first.summary.run

    changed = set(days.changed_ids(moving.config, "movie", 1)) & selection
    gone = set(days.gone_ids(moving.config, "movie", 1)) & selection
    entered = set(discover_ids("movie", moving.config, date_gte="1900-01-01")) - selection
    assert changed and gone and entered  # the day did all three to this harvest
    got = by_run(lake)[refreshed.summary.run]
    assert set(got) == (changed - gone) | entered and max(got.values()) == 1
    # The new bodies: each changed title shows the day's revision.
    for tmdb_id, record in records(lake, refreshed.summary.run).items():
        if tmdb_id in changed:
            assert str(record["overview"]).endswith("[revision 1]"), record["overview"]
    removed = [o for o in read_local_lake(lake).outcomes if o["outcome"] == "removed"]
    assert {o["tmdb_id"] for o in removed} == gone
    # Requests: the details of what changed or entered, the change-list pages and the listing's pages.
    pages = moving.stats.changes - pages_before  # change-list answers count in the movie route too
    details = moving.stats.by_route["movie"] - before["movie"] - pages
    assert 1 <= pages <= len(days.listed_ids(moving.config, "movie", 1)) // 100 + 1
    assert details <= 1.02 * len((changed - gone) | entered)

    # A second refresh the same day: TMDB's list is by day, so today's changed titles again, no others.
    before, pages_before = moving.stats.by_route.copy(), moving.stats.changes
    again = await harvest(s, CREDS, mode="refresh", progress=False)
    assert again.status == "complete"
    details = moving.stats.by_route["movie"] - before["movie"] - (moving.stats.changes - pages_before)
    assert details <= len(days.listed_ids(moving.config, "movie", 1))
    assert set(by_run(lake)[again.summary.run]) <= set(days.listed_ids(moving.config, "movie", 1))


async def test_a_refresh_of_an_export_harvest_is_at_the_bound(
    moving: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's check: a popularity-filtered export harvest, the catalogue moves a day, a refresh."""
    noon = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) + timedelta(hours=12)
    monkeypatch.setattr(export_source, "utc_now", lambda: noon)  # today's file is out (from 08:00 UTC)
    floor = 10.0
    lake = tmp_path / "lake"
    url = moving.base_url.removesuffix("/3") + "/p/exports"
    s = settings(moving, lake, SourceSettings(type="export", export_url=url, min_popularity=floor))
    first = await harvest(s, CREDS, progress=False)  # the stand-in is at day 0: yesterday's file
    assert first.status == "complete"
    selection = popular(moving.config, 0, floor)
    assert set(by_run(lake)[first.summary.run]) == selection - set(days.gone_ids(moving.config, "movie", 0))

    moving.config.day = 1
    before, pages_before = moving.stats.by_route.copy(), moving.stats.changes
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete"
    now = popular(moving.config, 1, floor)
    changed = set(days.changed_ids(moving.config, "movie", 1)) & selection & now
    entered, left = now - selection, selection - now
    got = by_run(lake)[refreshed.summary.run]
    assert set(got) == changed | entered and max(got.values()) == 1
    for tmdb_id, record in records(lake, refreshed.summary.run).items():
        if tmdb_id in changed:
            assert str(record["overview"]).endswith("[revision 1]")
    removed = {o["tmdb_id"] for o in read_local_lake(lake).outcomes if o["outcome"] == "removed"}
    assert removed == left
    pages = moving.stats.changes - pages_before
    details = moving.stats.by_route["movie"] - before["movie"] - pages
    assert details <= 1.02 * len(changed | entered)

    before, pages_before = moving.stats.by_route.copy(), moving.stats.changes
    again = await harvest(s, CREDS, mode="refresh", progress=False)
    assert again.status == "complete"
    details = moving.stats.by_route["movie"] - before["movie"] - (moving.stats.changes - pages_before)
    assert details <= len(days.listed_ids(moving.config, "movie", 1))


async def test_a_refresh_of_a_csv_takes_only_changed_titles_it_holds(
    moving: RunningStandin, tmp_path: Path
) -> None:
    from tmdb_standin import write_movies_csv

    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 300, seed=17)
    lake = tmp_path / "lake"
    s = settings(moving, lake, SourceSettings(path=str(csv)))
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    held = set(by_run(lake)[first.summary.run])

    moving.config.day = 1
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete"
    changed = set(days.changed_ids(moving.config, "movie", 1)) & held
    gone = set(days.gone_ids(moving.config, "movie", 1)) & held
    got = by_run(lake).get(refreshed.summary.run, Counter())
    assert set(got) == changed - gone
    state = orjson.loads((lake / "_harvest" / "state-csv-movie.json").read_bytes())
    assert state["mode"] == "refresh" and state["status"] == "complete"


async def test_nothing_changed_is_said_and_exits_0(moving: RunningStandin, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    s = settings(moving, lake, SourceSettings(type="discover", date_from="2010-01-01"))
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    # Still day 0 for the stand-in: today's change list (its day 1) is empty.
    again = await harvest(s, CREDS, mode="refresh", progress=False)
    assert again.status == "complete" and again.summary.harvested == 0 and again.summary.objects == 0


async def test_a_changed_csv_is_a_new_harvest_not_a_refresh(moving: RunningStandin, tmp_path: Path) -> None:
    from tmdb_standin import write_movies_csv

    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 50, seed=3)
    s = settings(moving, tmp_path / "lake", SourceSettings(path=str(csv)))
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    write_movies_csv(csv, 60, seed=3)
    with pytest.raises(StateError, match="another harvest"):
        await harvest(s, CREDS, mode="refresh", progress=False)
