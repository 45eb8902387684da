"""TMDB's daily exports as a source, against the stand-in's export files over real sockets.

What a harvest must hold is computed from the export file itself (downloaded and read here with gzip
and orjson), not from the harvester's code.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import read_local_lake, stop_after_commits
from yarl import URL

from harvester.check import check
from harvester.config import Credentials, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.config import from_mapping as settings_from
from harvester.errors import ConfigError, SourceError, StateError, TmdbUnavailable
from harvester.lake.sink import open_sink
from harvester.runner import harvest
from harvester.source import export as export_source
from harvester.source import export_stream
from harvester.source.export import ExportSource, candidate_dates, file_url
from harvester.source.export_stream import Gunzip, LineBlocks
from tmdb_standin import RunningStandin, days, running_standin

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
BASE = date(2026, 3, 2)  # the stand-in's day 0, pinned
NOON = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_stream, "RETRY_BASE_S", 0.001)


@pytest.fixture
async def standin() -> AsyncIterator[RunningStandin]:
    config = standin_config(
        discover_movies=2_000,
        discover_tv=200,
        base_date=BASE,
        hour=12.0,
        video_share=0.05,
        changed_share=0.02,
    )
    async with running_standin(config) as running:
        yield running


def exports_url(standin: RunningStandin) -> str:
    return standin.base_url.removesuffix("/3") + "/p/exports"


def settings(standin: RunningStandin, lake: Path, chunk_size: int = 100, **source: Any) -> Settings:
    fields: dict[str, Any] = {"type": "export", "export_url": exports_url(standin), **source}
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16, append=()),
        source=SourceSettings(**fields),
        sink=SinkSettings(url=str(lake), chunk_size=chunk_size, format="jsonl"),
    )


async def file_lines(url: str) -> list[dict[str, Any]]:
    """An export file as the reference reads it: all of it, then gzip, then one JSON a line."""
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        assert r.status == 200
        return [orjson.loads(line) for line in gzip.decompress(await r.read()).splitlines()]


def selected(lines: list[dict[str, Any]], min_popularity: float = 0.0, video: bool = False) -> list[int]:
    return [x["id"] for x in lines if x["popularity"] >= min_popularity and (video or not x.get("video"))]


def lake_ids(lake: Path) -> Counter[int]:
    return Counter(int(str(r["id"])) for records in read_local_lake(lake).data.values() for r in records)


async def source_ids(source: ExportSource) -> list[int]:
    ids: list[int] = []
    async for title in source.titles():
        assert title.pos == len(ids) and title.tmdb_id is not None and title.imdb_id is None
        ids.append(title.tmdb_id)
    return ids


def clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


# ---------------------------------------------------------------------------------------------
# Harvests


async def test_an_export_harvest_with_a_popularity_filter_is_exactly_once(
    standin: RunningStandin, tmp_path: Path
) -> None:
    lines = await file_lines(file_url(exports_url(standin), "movie", BASE))
    expected = selected(lines, min_popularity=20.0)
    assert 200 < len(expected) < len(lines) / 2  # the filter leaves a good share out
    s = settings(standin, tmp_path / "lake", export_date=BASE.isoformat(), min_popularity=20.0)
    result = await harvest(s, CREDS, progress=False)
    assert result.status == "complete" and result.summary.harvested == len(expected)
    got = lake_ids(tmp_path / "lake")
    assert set(got) == set(expected) and max(got.values()) == 1
    assert standin.stats.by_route["movie"] == len(expected)  # one details request per title
    assert standin.stats.export_credentials == 0  # the token went to the API only
    pin = orjson.loads(next((tmp_path / "lake" / "_harvest").rglob("export.json")).read_bytes())
    assert pin["date"] == BASE.isoformat() and pin["files"][0]["etag"].startswith('"')


async def test_adult_and_video_switches(standin: RunningStandin, tmp_path: Path) -> None:
    base = exports_url(standin)
    plain = await file_lines(file_url(base, "movie", BASE))
    adult = await file_lines(file_url(base, "movie", BASE, adult=True))
    assert adult and any(x["video"] for x in plain)
    sink = open_sink(SinkSettings(url=str(tmp_path)))

    def source(**fields: Any) -> ExportSource:
        src = settings(standin, tmp_path, export_date=BASE.isoformat(), **fields).source
        return ExportSource(src, sink)

    default = source()
    assert await source_ids(default) == selected(plain)
    assert default.stats.filtered_out == len(plain) - len(selected(plain)) and default.stats.rows == len(
        plain
    )
    assert await source_ids(source(include_video=True)) == selected(plain, video=True)
    with_adult = await source_ids(source(include_adult=True, include_video=True))
    assert with_adult == selected(plain, video=True) + selected(adult, video=True)  # the adult file after
    assert await source(include_adult=True).count() == len(selected(plain)) + len(selected(adult))
    series = await file_lines(file_url(base, "tv", BASE))
    assert await source_ids(source(media="tv", min_popularity=1.0)) == selected(series, 1.0)


async def test_the_latest_export_falls_back_to_the_day_before(
    standin: RunningStandin, tmp_path: Path
) -> None:
    sink = open_sink(SinkSettings(url=str(tmp_path)))
    src = settings(standin, tmp_path).source
    standin.config.day = 3
    today = BASE + timedelta(days=3)
    at = datetime.combine(today, datetime.min.time(), UTC)
    standin.config.hour = 7.5  # the stand-in has not published today's file yet

    after_eight = ExportSource(src, sink, now=clock(at + timedelta(hours=9)))
    assert await source_ids(after_eight) == selected(
        await file_lines(file_url(src.export_url, "movie", today - timedelta(days=1)))
    )
    assert "of " + (today - timedelta(days=1)).isoformat() in after_eight.describe()
    before_eight = ExportSource(src, sink, now=clock(at + timedelta(hours=7)))
    await before_eight.count()
    assert "of " + (today - timedelta(days=1)).isoformat() in before_eight.describe()
    standin.config.export_missing_status = 403  # CDNs answer 403 for a missing key: the same fallback
    assert await ExportSource(src, sink, now=clock(at + timedelta(hours=10))).count() > 0

    standin.config.day, standin.config.hour = 0, 7.5  # nothing published at all: day 0 is not out yet
    with pytest.raises(SourceError, match="no TMDB export to read") as refused:
        await ExportSource(src, sink, now=clock(NOON)).count()
    assert file_url(src.export_url, "movie", BASE) in str(refused.value)
    assert str(refused.value).count("HTTP 403") == 4  # today and 3 days before
    explicit = settings(standin, tmp_path, export_date=(BASE - timedelta(days=1)).isoformat()).source
    with pytest.raises(SourceError, match="no TMDB export to read") as refused:
        await ExportSource(explicit, sink, now=clock(NOON)).count()
    assert str(refused.value).count("HTTP") == 1  # an explicit date does not fall back


def test_the_latest_date_turns_at_0800_utc() -> None:
    assert candidate_dates("", datetime(2026, 3, 5, 7, 59, tzinfo=UTC))[:2] == [
        date(2026, 3, 4),
        date(2026, 3, 3),
    ]
    assert candidate_dates("", datetime(2026, 3, 5, 8, 0, tzinfo=UTC))[0] == date(2026, 3, 5)
    brazil = datetime(2026, 3, 5, 9, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=-3)))  # 06:00 there
    assert candidate_dates("", brazil)[0] == date(2026, 3, 5)  # judged in UTC whatever the zone
    assert candidate_dates("2026-01-31", datetime(2026, 3, 5, tzinfo=UTC)) == [date(2026, 1, 31)]


async def stopped_after(s: Settings, commits: int) -> None:
    with stop_after_commits(commits) as stop:
        result = await harvest(s, CREDS, stop=stop, progress=False)
    assert result.status == "incomplete"


async def test_a_resume_keeps_its_file_and_refuses_another(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.config.gone_share, standin.config.new_share = 0.0, 0.01  # day 1 removes nothing, adds some
    lake = tmp_path / "lake"
    latest = settings(standin, lake, chunk_size=20)
    monkeypatch.setattr(export_source, "utc_now", clock(NOON))
    await stopped_after(latest, 2)

    # The next day's file is out, and differs; the run goes on with the file it started with.
    standin.config.day = 1
    monkeypatch.setattr(export_source, "utc_now", clock(NOON + timedelta(days=1)))
    day0 = selected(await file_lines(file_url(exports_url(standin), "movie", BASE)))
    day1 = selected(await file_lines(file_url(exports_url(standin), "movie", BASE + timedelta(days=1))))
    assert day0 != day1
    resumed = await harvest(latest, CREDS, progress=False)
    assert resumed.status == "complete"
    got = lake_ids(lake)
    assert set(got) == set(day0) and max(got.values()) == 1

    # Another day's file, asked for by date, is another harvest
    other_day = settings(standin, lake, chunk_size=20, export_date=(BASE + timedelta(days=1)).isoformat())
    with pytest.raises(StateError, match="another harvest"):
        await harvest(other_day, CREDS, progress=False)

    # The same URL with another content (its ETag changed) is refused on resume
    pinned = settings(standin, tmp_path / "other", chunk_size=20, export_date=BASE.isoformat())
    await stopped_after(pinned, 1)
    standin.config.video_share = 0.1  # the file of that day now reads differently
    with pytest.raises(SourceError, match="changed since this harvest started"):
        await harvest(pinned, CREDS, progress=False)


async def test_a_download_cut_short_starts_over_without_repeating(
    standin: RunningStandin, tmp_path: Path
) -> None:
    url = file_url(exports_url(standin), "movie", BASE)
    expected = selected(await file_lines(url))
    sink = open_sink(SinkSettings(url=str(tmp_path)))
    source = ExportSource(settings(standin, tmp_path, export_date=BASE.isoformat()).source, sink)
    assert await source.count() == len(expected)  # the file is chosen: the next passes only download it
    faults = standin.config.faults
    faults[URL(url).path] = ["503", "reset", "truncate", "500"]
    assert await source_ids(source) == expected
    # aiohttp itself sends a request again once when a kept-alive connection is reset: 4 or 5 tries
    assert source.download.attempts in (4, 5)
    assert standin.stats.faults == {"503": 1, "reset": 1, "truncate": 1, "500": 1}
    faults[URL(url).path] = ["badjson"]
    with pytest.raises(SourceError, match="not a gzip"):
        await source.count()
    faults[URL(url).path] = ["503"] * 5
    with pytest.raises(TmdbUnavailable, match="5 tries in a row"):
        await source.count()


async def test_the_file_is_read_incrementally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(export_stream, "CHUNK_SIZE", 4096)
    config = standin_config(discover_movies=20_000, discover_tv=10, base_date=BASE, hour=12.0)
    async with running_standin(config) as big:
        source = ExportSource(
            settings(big, tmp_path, export_date=BASE.isoformat()).source,
            open_sink(SinkSettings(url=str(tmp_path))),
        )
        first: tuple[int, int] | None = None
        positions = 0
        async for title in source.titles():
            if first is None:
                first = (source.download.bytes, source.download.chunks)
            positions = title.pos + 1
    assert first is not None and positions == source.stats.selected > 19_000
    total = source.download.bytes
    assert first[0] <= 2 * 4096 and first[0] < total / 20  # the first title came after a chunk or two
    assert source.download.chunks >= total // 4096  # never more than a chunk at a time


def test_gzip_members_and_lines_are_decoded_piecewise() -> None:
    text = b"".join(b'{"id":%d,"popularity":1.5}\n' % i for i in range(500))
    two_members = gzip.compress(text[:7000]) + gzip.compress(text[7000:])
    gunzip, lines, out = Gunzip(), LineBlocks(), []
    for i in range(0, len(two_members), 7):
        block = lines.feed(gunzip.feed(two_members[i : i + 7]))
        assert block == b"" or block.endswith(b"\n")
        out.append(block)
    assert gunzip.complete and lines.finish() == b"" and b"".join(out) == text
    cut = Gunzip()
    cut.feed(two_members[: len(two_members) - 5])
    assert not cut.complete  # a body that ends inside a member is a download cut short
    with pytest.raises(zlib.error):
        Gunzip().feed(b"<html>not gzip</html>")


# ---------------------------------------------------------------------------------------------
# check, config, refresh listing


async def test_check_counts_an_export(standin: RunningStandin, tmp_path: Path) -> None:
    expected = selected(await file_lines(file_url(exports_url(standin), "movie", BASE)), min_popularity=20.0)
    s = settings(standin, tmp_path / "lake", export_date=BASE.isoformat(), min_popularity=20.0)
    report = await check(s, CREDS)
    assert f"titles      {len(expected)}\n" in report
    assert f"requests    about {len(expected)} (1 per title" in report
    assert "popularity >= 20" in report and f"of {BASE.isoformat()}" in report
    assert standin.stats.by_route["movie"] == 0 and not list((tmp_path / "lake").rglob("export.json"))


def test_export_settings_are_checked() -> None:
    def load(**source: Any) -> Settings:
        return settings_from({"source": {"type": "export", **source}})

    assert load(min_popularity=5).source.min_popularity == 5.0
    assert load().source.export_url == "https://files.tmdb.org/p/exports"
    for bad, message in (
        ({"export_url": "ftp://x"}, "export_url must be an http"),
        ({"export_date": "2026-3-1"}, "export_date must be a date"),
        ({"min_popularity": -1}, "min_popularity must be >= 0"),
        ({"genres": ["Drama"]}, "source.genres does not apply to an export"),
        ({"min_votes": 10}, "source.min_votes does not apply"),
    ):
        with pytest.raises(ConfigError, match=message):
            load(**bad)


async def test_a_refresh_lists_the_latest_export(standin: RunningStandin, tmp_path: Path) -> None:
    src = settings(standin, tmp_path).source
    standin.config.day = 1
    source = ExportSource(
        src, open_sink(SinkSettings(url=str(tmp_path))), now=clock(NOON + timedelta(days=1))
    )
    listed = [i async for i in source.listing(None)]  # type: ignore[arg-type]  # it needs no context
    day1 = await file_lines(file_url(src.export_url, "movie", BASE + timedelta(days=1)))
    assert listed == selected(day1)
    new = set(days.appeared_ids(standin.config, "movie", 1)) & {x["id"] for x in day1 if not x["video"]}
    assert new and new <= set(listed)
    assert not set(listed) & set(days.gone_ids(standin.config, "movie", 1))
