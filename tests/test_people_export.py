"""Keeping a people table current, and the whole catalogue of people: a refresh of a people harvest
takes the people `/person/changes` names, the people who entered its from-harvest's credits and records
those who left; `type = "export"` with `media = "person"` reads TMDB's person_ids export.

What to expect is computed from the stand-in's own model (tmdb_standin.people, days, discover) and from
the records in the lake, not from the harvester's code. The stand-in's day 1 is today (its day 0
yesterday), as in tests/test_refresh.py."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import Lake, read_local_lake

from harvester import config
from harvester.config import Credentials
from harvester.fleet import harvest_all
from harvester.source import export as export_source
from tmdb_standin import RunningStandin, exports, people, running_standin
from tmdb_standin.discover import discover_ids

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    today = datetime.now(UTC).date()
    cfg = standin_config(
        discover_movies=400,
        discover_tv=50,
        base_date=today - timedelta(days=1),
        changed_share=0.05,
        new_share=0.2,  # a small listing that moves: titles of new directors come and go
        gone_share=0.2,
        hour=12.0,
    )
    async with running_standin(cfg) as running:
        yield running


def deployment(standin: RunningStandin, lake: Path) -> config.Deployment:
    return config.deployment_from_mapping(
        {
            "tmdb": {"base_url": standin.base_url, "rate_limit": 5000.0, "concurrency": 16},
            "sink": {"url": str(lake), "format": "jsonl", "chunk_size": 100},
            "refresh": {"revisit_days": 0},  # only what changed, entered or left
            "harvest": [
                {"name": "movies", "source": {"type": "discover", "date_from": "2020-01-01"}},
                {
                    "name": "directors",
                    "source": {"type": "people", "from": "movies", "jobs": ["Director"]},
                    "tmdb": {"append": ["external_ids"]},
                },
            ],
        }
    )


def latest(lake: Lake, table: str, word: str) -> dict[int, dict[str, Any]]:
    """The newest record of each id of a table folder (keys sort by date, then run tag)."""
    out: dict[int, dict[str, Any]] = {}
    for key in sorted(k for k in lake.data if k.startswith(table) and f"/{word}-" in k):
        out.update({int(str(r["id"])): r for r in lake.data[key]})
    return out


def directors(records: dict[int, dict[str, Any]], titles: set[int]) -> set[int]:
    return {
        c["id"]
        for tmdb_id, r in records.items()
        if tmdb_id in titles
        for c in r["credits"]["crew"]
        if c["job"] == "Director"
    }


def run_ids(lake: Lake, table: str, tag: str) -> Counter[int]:
    return Counter(
        int(str(r["id"])) for k, rs in lake.data.items() if k.startswith(table) and tag in k for r in rs
    )


async def test_a_refresh_takes_changed_entered_and_left_people_once(
    moving: RunningStandin, tmp_path: Path
) -> None:
    lake_dir = tmp_path / "lake"
    d = deployment(moving, lake_dir)
    first = await harvest_all(d, CREDS, progress=False)
    assert first.exit_code == 0
    titles_before = set(discover_ids("movie", moving.config, date_gte="2020-01-01"))
    lake = read_local_lake(lake_dir)
    held_before = set(latest(lake, "directors/", "people"))
    assert held_before == directors(latest(lake, "movies/", "movies"), titles_before)

    moving.config.day = 1
    before = moving.stats.by_route["person"]
    again = await harvest_all(d, CREDS, mode="refresh", progress=False)
    assert again.exit_code == 0, [o.error for o in again.outcomes]
    titles_now = set(discover_ids("movie", moving.config, date_gte="2020-01-01"))
    lake = read_local_lake(lake_dir)
    now = directors(latest(lake, "movies/", "movies"), titles_now)
    entered, left = now - held_before, held_before - now
    changed = set(people.changed_ids(moving.config, 1)) & held_before
    assert entered and left and changed, (len(entered), len(left), len(changed), len(now), len(held_before))

    summary = next(o.summary for o in again.outcomes if o.name == "directors")
    assert summary is not None
    got = run_ids(lake, "directors/", summary.run)
    assert set(got) == (changed - left) | entered and max(got.values()) == 1
    removed = {o["tmdb_id"] for o in lake.outcomes if o["outcome"] == "removed" and o["media"] == "person"}
    assert removed == left
    # The table's latest records, less the removed people, are the directors held now.
    assert set(latest(lake, "directors/", "people")) - removed == now
    # Requests: one per person taken again or entered, and the change-list pages (100 ids a page).
    pages = max(1, math.ceil(len(people.changed_ids(moving.config, 1)) / 100))
    assert moving.stats.by_route["person"] - before == len(got) + pages


# ---------------------------------------------------------------------------------------------
# The whole catalogue: TMDB's person_ids export


def popular_people(standin: RunningStandin, day: int, floor: float) -> set[int]:
    """The ids of the day's person export with popularity >= floor, read as a user would read it."""
    when = standin.config.base_date + timedelta(days=day)
    lines = exports.export_lines(standin.config, exports.ExportFile("person", False, when))
    return {o["id"] for o in map(orjson.loads, lines) if (o["popularity"] or 0) >= floor}


async def test_an_export_of_people_holds_the_popular_ones_once_and_a_refresh_keeps_it_current(
    moving: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noon = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) + timedelta(hours=12)
    monkeypatch.setattr(export_source, "utc_now", lambda: noon)  # today's file is out (from 08:00 UTC)
    floor = 10.0
    lake_dir = tmp_path / "lake"
    url = moving.base_url.removesuffix("/3") + "/p/exports"
    d = config.deployment_from_mapping(
        {
            "tmdb": {"base_url": moving.base_url, "rate_limit": 5000.0, "concurrency": 16, "append": []},
            "sink": {"url": str(lake_dir), "format": "jsonl", "partition": "{media}/{yyyy}/{mm}/{dd}"},
            "refresh": {"revisit_days": 0},
            "source": {"type": "export", "media": "person", "export_url": url, "min_popularity": floor},
        }
    )
    first = await harvest_all(d, CREDS, progress=False)  # the stand-in is at day 0: yesterday's file
    assert first.exit_code == 0
    selection = popular_people(moving, 0, floor)
    lake = read_local_lake(lake_dir)
    held = Counter(int(str(r["id"])) for k, rs in lake.data.items() if k.startswith("people/") for r in rs)
    assert selection and set(held) == selection and max(held.values()) == 1
    assert all("/person/" not in k for k in lake.data)  # `{media}` is the table's word: people/
    assert moving.stats.by_route["person"] == len(selection)  # one request a person

    moving.config.day = 1
    before = moving.stats.by_route["person"]
    again = await harvest_all(d, CREDS, mode="refresh", progress=False)
    assert again.exit_code == 0
    now = popular_people(moving, 1, floor)
    changed = set(people.changed_ids(moving.config, 1)) & selection & now
    entered, left = now - selection, selection - now
    assert changed and entered and left
    summary = again.outcomes[0].summary
    assert summary is not None
    lake = read_local_lake(lake_dir)
    got = run_ids(lake, "people/", summary.run)
    assert set(got) == changed | entered and max(got.values()) == 1
    removed = {o["tmdb_id"] for o in lake.outcomes if o["outcome"] == "removed"}
    assert removed == left
    pages = max(1, math.ceil(len(people.changed_ids(moving.config, 1)) / 100))
    assert moving.stats.by_route["person"] - before == len(got) + pages
