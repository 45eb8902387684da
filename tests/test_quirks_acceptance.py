"""TMDB as it really is, all at once: every quirk of tmdb-quirks.md planted at once, on top of random 5xx,
resets and slow answers, with S3 on moto's server. What a lake must be after it, computed from the
stand-in's own model (titles, days, exports), never from the harvester's code.

The quirks one by one, each with its own tests: test_quirks_http.py (throttling, the edge, gzip),
test_quirks_lookup.py (appends, /find, holes), test_quirks_changes.py (change lists, revisits),
test_quirks_export.py (downloads cut short, export lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import PREFIX, Lake, distinct_ids, read_s3_lake

from harvester.config import (
    Credentials,
    RefreshSettings,
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
)
from harvester.runner import harvest
from harvester.source import export as export_source
from harvester.source import refresh as refresh_source
from tmdb_standin import RunningStandin, days, exports, running_standin
from tmdb_standin.csvgen import write_movies_csv
from tmdb_standin.server import QUIRKS

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
# Realistic, if anything harsh: each quirk touches 1% of the answers it applies to (the export's cut is
# every file's first download), beside 0.5% random 5xx, 0.2% resets and a few milliseconds of latency.
TMDB_AS_IT_IS: dict[str, Any] = {
    "quirks": QUIRKS,
    "quirk_rate": 0.01,
    "error_rate": 0.005,
    "reset_rate": 0.002,
    "latency": (0.0005, 0.004),
    "seed": 16,
}
REVISIT_DAYS = 30


def by_run(lake: Lake) -> dict[str, Counter[int]]:
    """TMDB ids of the records of each run's data objects, by run tag."""
    runs: dict[str, Counter[int]] = {}
    for key, records in lake.data.items():
        tag = "-".join(key.rsplit("/", 1)[-1].split("-")[1:3])
        runs.setdefault(tag, Counter()).update(int(str(r["id"])) for r in records)
    return runs


def lacking_credits(lake: Lake) -> list[object]:
    return [r.get("id") for records in lake.data.values() for r in records if not r.get("credits")]


async def test_a_movies_csv_harvest_through_every_quirk_is_whole_and_exactly_once(
    s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    csv = write_movies_csv(tmp_path / "movies.csv", 600, seed=16).path
    async with running_standin(standin_config(**TMDB_AS_IT_IS)) as standin:
        cfg = write_config(
            tmp_path / "config.toml",
            tmdb={"base_url": standin.base_url, "rate_limit": 400, "concurrency": 16, "append": ["credits"]},
            source={"type": "csv", "path": str(csv)},
            sink={"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, "format": "jsonl"},
        )
        done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN), limit_s=240)
        planted = dict(standin.stats.quirks)
    assert done.code == 0, done.output
    # The quirks a csv harvest meets were met (/find is asked only for the direct lookup's misses, too
    # few for its quirk's share here: test_quirks_lookup.py plants it at a high rate).
    assert {"throttle", "edge", "append", "holes", "gzip"} <= set(planted), planted

    lake = await read_s3_lake(endpoint, bucket)
    stored = lake.record_ids()
    assert max(stored.values()) == 1  # nothing twice
    misses = lake.miss_reasons()
    assert not set(stored) & set(misses)
    assert set(stored) | set(misses) == set(distinct_ids(csv))  # every selected title, once
    assert not [o for o in lake.outcomes if o["outcome"] not in ("miss",)]  # no failure, final or not
    assert lacking_credits(lake) == []


@pytest.fixture
def tomorrow() -> date:
    """The harvester's "today" for the refresh: the day after the full harvest started."""
    return datetime.now(UTC).date() + timedelta(days=1)


@pytest.fixture
async def catalogue() -> AsyncIterator[RunningStandin]:
    """A TMDB with every quirk whose day 0 is today and whose catalogue moves a day at a time."""
    config = standin_config(
        **TMDB_AS_IT_IS,
        discover_movies=2_000,
        discover_tv=100,
        base_date=datetime.now(UTC).date(),
        hour=12.0,  # today's export is out (from 08:00 UTC)
        changed_share=0.2,  # a busy day: enough titles for the 1.1x bound to be measured, not drawn
        new_share=0.005,
        gone_share=0.005,
    )
    async with running_standin(config) as running:
        yield running


async def test_an_export_harvest_then_a_refresh_a_day_later_through_every_quirk(
    catalogue: RunningStandin,
    tomorrow: date,
    s3_bucket: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, bucket = s3_bucket
    standin = catalogue
    s = Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=2000.0, concurrency=16, append=("credits",)),
        source=SourceSettings(type="export", export_url=standin.base_url.removesuffix("/3") + "/p/exports"),
        sink=SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=endpoint, format="jsonl"),
        refresh=RefreshSettings(revisit_days=REVISIT_DAYS),
    )
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete"
    assert standin.stats.quirks.get("export", 0) >= 1  # the file's first download came cut short
    selection = set(exports.export_ids(standin.config, "movie", 0))
    lake = await read_s3_lake(endpoint, bucket)
    held = by_run(lake)[first.summary.run]
    assert set(held) == selection and max(held.values()) == 1
    assert lacking_credits(lake) == []

    # A day later: TMDB's catalogue moved (changes with null and repeated ids, entries, removals), and
    # the day's export is cut short on its first download again.
    standin.config.day = 1
    monkeypatch.setattr(refresh_source, "utc_today", lambda: tomorrow)
    monkeypatch.setattr(export_source, "utc_now", lambda: datetime.combine(tomorrow, time(12), UTC))
    requests, pages = standin.stats.requests, standin.stats.changes
    cuts = standin.stats.quirks.get("export", 0)
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete" and refreshed.summary.refresh is not None
    assert standin.stats.quirks["export"] == cuts + 1

    now_listed = set(exports.export_ids(standin.config, "movie", 1))
    changed = set(days.changed_ids(standin.config, "movie", 1)) & selection
    gone = set(days.gone_ids(standin.config, "movie", 1)) & selection
    left = selection - now_listed
    entered = now_listed - selection
    assert changed and gone and entered and left == gone  # the day did all of it to this harvest
    slice_ = tomorrow.toordinal() % REVISIT_DAYS
    revisited = {i for i in selection if i % REVISIT_DAYS == slice_} - changed - left
    assert 0 < len(revisited) < len(selection) / 10

    lake = await read_s3_lake(endpoint, bucket)
    got = by_run(lake)[refreshed.summary.run]
    assert max(got.values()) == 1
    assert set(got) == (changed - left) | entered | revisited
    removed = {o["tmdb_id"] for o in lake.outcomes if o["outcome"] == "removed"}
    assert removed == left  # only what left TMDB's catalogue
    assert lacking_credits(lake) == []
    assert refreshed.summary.refresh.revisited == len(revisited)
    assert refreshed.summary.refresh.changes_junk > 0  # the change lists held null ids, skipped

    change_pages = standin.stats.changes - pages
    spent = standin.stats.requests - requests
    assert spent <= 1.1 * len(got) + change_pages, (spent, len(got), change_pages, refreshed.summary)
