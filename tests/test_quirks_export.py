"""Export files as TMDB's users have met them (quirk "export"), over real sockets.

A download cut short where HTTP does not show it, in the stand-in's two forms: "gzip-cut" (a chunked
body that ends properly, whose gzip stops inside the deflate data) and "short-length" (a Content-Length
for the whole file, a body short of it, the connection closed); and the lines TMDB writes: blank ones,
TV lines without `adult`, titles in other scripts, raw UTF-8 or JSON \\u escapes. What a harvest must
hold is computed from the file itself (downloaded whole and read here with zlib and orjson).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import read_local_lake, stop_after_commits
from yarl import URL

from harvester.config import Credentials, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import TmdbUnavailable
from harvester.items import Media
from harvester.lake.sink import open_sink
from harvester.runner import harvest
from harvester.source import export as export_source
from harvester.source import export_stream
from harvester.source.export import ExportSource, file_url
from harvester.source.export_stream import DownloadCounts, Gunzip, blocks, short_of
from tmdb_standin import RunningStandin, days, exports, running_standin

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
BASE = date(2026, 3, 2)  # the stand-in's day 0, pinned
CUTS = ("gzip-cut", "short-length")
STAYS_SHORT = 10  # scripted cuts: more than a HEAD and MAX_ATTEMPTS tries take


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_stream, "RETRY_BASE_S", 0.001)


@pytest.fixture
async def standin() -> AsyncIterator[RunningStandin]:
    config = standin_config(
        discover_movies=2_000, discover_tv=300, base_date=BASE, hour=12.0, video_share=0.05
    )
    async with running_standin(config) as running:
        yield running


def exports_url(standin: RunningStandin) -> str:
    return standin.base_url.removesuffix("/3") + "/p/exports"


def settings(standin: RunningStandin, lake: Path, **source: Any) -> Settings:
    fields: dict[str, Any] = {"type": "export", "export_url": exports_url(standin), **source}
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=5000.0, concurrency=16, append=()),
        source=SourceSettings(**fields),
        sink=SinkSettings(url=str(lake), chunk_size=50, format="jsonl"),
    )


class Download:
    """One GET of a file as a careful reader sees it: the bytes, how HTTP ended, whether gzip did."""

    def __init__(self, headers: Mapping[str, str], body: bytes, error: str | None) -> None:
        self.headers, self.body, self.error = headers, body, error
        gunzip = zlib.decompressobj(wbits=31)
        self.text = gunzip.decompress(body)
        self.gzip_whole = gunzip.eof and not gunzip.unused_data


async def download(url: str) -> Download:
    body, error = b"", None
    timeout = aiohttp.ClientTimeout(total=30)  # a body that never ends fails the test, not hangs it
    async with (
        aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session,
        session.get(url) as r,
    ):
        assert r.status == 200
        try:
            async for chunk in r.content.iter_chunked(1 << 16):
                body += chunk
        except aiohttp.ClientPayloadError as exc:
            error = type(exc).__name__
        return Download(r.headers.copy(), body, error)  # case-insensitive, as HTTP's names are


async def whole_records(url: str) -> list[dict[str, Any]]:
    """The file's records, from a whole download (the blank lines left out)."""
    for _ in range(3):  # the quirk cuts the first download of a file
        got = await download(url)
        if got.gzip_whole and got.error is None:
            return [orjson.loads(line) for line in got.text.splitlines() if line.strip()]
    raise AssertionError(f"{url} never came whole")


def selected(records: list[dict[str, Any]], video: bool = False) -> list[int]:
    return [x["id"] for x in records if video or not x.get("video")]


def lake_ids(lake: Path) -> Counter[int]:
    return Counter(int(str(r["id"])) for records in read_local_lake(lake).data.values() for r in records)


# ---------------------------------------------------------------------------------------------
# The stand-in


async def test_the_quirk_cuts_each_files_first_download_where_http_does_not_show_it() -> None:
    config = standin_config(
        discover_movies=2_000, discover_tv=300, base_date=BASE, hour=12.0, quirks=frozenset({"export"})
    )
    files = [exports.ExportFile(m, a, BASE) for m in ("movie", "tv") for a in (False, True)]
    forms = {seed: [exports.cut_form(replace(config, seed=seed), f) for f in files] for seed in range(40)}
    seed = next(s for s, f in forms.items() if set(f) == set(CUTS))  # a seed giving both forms
    config.seed = seed
    async with running_standin(config) as standin:
        for file, form in zip(files, forms[seed], strict=True):
            url = f"{exports_url(standin)}/{exports.file_name(file.media, file.date, file.adult)}"
            cut, whole, again = await download(url), await download(url), await download(url)
            assert whole.gzip_whole and whole.error is None and again.body == whole.body
            assert not cut.gzip_whole and len(cut.body) < len(whole.body) and whole.body.startswith(cut.body)
            assert cut.headers["ETag"] == whole.headers["ETag"]  # the file's, whole or cut
            size = len(whole.body)
            assert 0.25 * size - 1 <= len(cut.body) <= 0.75 * size + 1 or size < 100  # (an empty file: 20)
            if form == "gzip-cut":  # HTTP says the body is complete: only its gzip says otherwise
                assert cut.error is None and cut.headers.get("Transfer-Encoding") == "chunked"
            else:  # the whole file's length, a body short of it (aiohttp notices this one itself)
                assert cut.headers["Content-Length"] == whole.headers["Content-Length"] == str(size)
                assert cut.error == "ClientPayloadError"
        assert standin.stats.quirks == {"export": len(files)}
        assert forms[seed] == [exports.cut_form(config, f) for f in files]  # the seed decides, not the order


async def test_the_scripted_cuts_act_on_one_download(standin: RunningStandin) -> None:
    url = file_url(exports_url(standin), "movie", BASE)
    for form in CUTS:
        standin.config.faults[URL(url).path] = [form]
        cut, whole = await download(url), await download(url)
        assert not cut.gzip_whole and whole.gzip_whole and whole.body.startswith(cut.body)
        assert (cut.error is None) == (form == "gzip-cut")
        assert ("Content-Length" in cut.headers) == (form == "short-length")
    assert standin.stats.faults == {"gzip-cut": 1, "short-length": 1} and not standin.stats.quirks

    # With the quirk on, over a file it cuts by length: a scripted "gzip-cut" is still a chunked body
    # that ends properly (no Content-Length to fall short of), and the quirk's own cut comes after it.
    movie = exports.ExportFile("movie", False, BASE)
    cfg = standin.config
    cfg.seed = next(n for n in range(40) if exports.cut_form(replace(cfg, seed=n), movie) == "short-length")
    cfg.quirks, cfg.faults[URL(url).path] = frozenset({"export"}), ["gzip-cut"]
    scripted, quirk, whole = await download(url), await download(url), await download(url)
    assert scripted.error is None and "Content-Length" not in scripted.headers and not scripted.gzip_whole
    assert quirk.error == "ClientPayloadError" and whole.gzip_whole
    assert quirk.headers["Content-Length"] == whole.headers["Content-Length"] == str(len(whole.body))
    assert standin.stats.quirks == {"export": 1}


# ---------------------------------------------------------------------------------------------
# A download cut short is downloaded again; one that stays short stops the run before it records


@pytest.mark.parametrize("form", CUTS)
async def test_a_download_cut_short_is_downloaded_again_and_the_harvest_is_exact(
    standin: RunningStandin, tmp_path: Path, form: str
) -> None:
    url = file_url(exports_url(standin), "movie", BASE)
    expected = selected(await whole_records(url))
    faults, lake = standin.config.faults, tmp_path / "lake"
    s = settings(standin, lake, export_date=BASE.isoformat())
    # The pin's HEAD takes the first (a HEAD has no body to cut), the count's download the second.
    faults[URL(url).path] = [form, form]
    served = standin.stats.exports
    with stop_after_commits(3) as stop:  # counted (through the cut), then stopped after 3 commits
        first = await harvest(s, CREDS, stop=stop, progress=False)
    assert first.status == "incomplete" and 0 < len(lake_ids(lake)) < len(expected)
    # Served: the HEAD, the count's cut download and its whole one, the titles' download.
    assert standin.stats.exports - served == 4
    faults[URL(url).path] = [form]  # the resume does not count again: its titles pass is the one cut
    resumed = await harvest(s, CREDS, progress=False)
    assert resumed.status == "complete" and resumed.summary.source.selected == len(expected)
    assert standin.stats.exports - served == 6 and standin.stats.faults == {form: 3}  # cut, then whole
    got = lake_ids(lake)
    assert set(got) == set(expected) and max(got.values()) == 1  # every title, once


async def test_a_file_that_stays_short_exits_5_and_records_nothing(
    standin: RunningStandin, tmp_path: Path
) -> None:
    url = file_url(exports_url(standin), "movie", BASE)
    standin.config.faults[URL(url).path] = ["gzip-cut"] * STAYS_SHORT
    lake = tmp_path / "lake"
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 500, "concurrency": 8},
        source={"type": "export", "export_url": exports_url(standin), "export_date": BASE.isoformat()},
        sink={"url": str(lake), "chunk_size": 20},
    )
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 5, done.output
    assert "the body ended inside the gzip stream" in done.stderr and "5 tries in a row" in done.stderr
    held = read_local_lake(lake)
    assert held.data == {} and held.outcomes == []  # no title of the short file, no outcome
    assert standin.stats.by_route["movie"] == 0  # not one details request either


async def test_a_file_short_of_its_length_stays_short_and_records_nothing(
    standin: RunningStandin, tmp_path: Path
) -> None:
    url = file_url(exports_url(standin), "movie", BASE)
    standin.config.faults[URL(url).path] = ["short-length"] * STAYS_SHORT
    lake = tmp_path / "lake"
    with pytest.raises(TmdbUnavailable, match="5 tries in a row"):
        await harvest(settings(standin, lake, export_date=BASE.isoformat()), CREDS, progress=False)
    held = read_local_lake(lake)
    assert held.data == {} and held.outcomes == [] and standin.stats.by_route["movie"] == 0


def test_a_body_is_whole_only_at_its_length_and_its_gzip_trailer() -> None:
    text = b"".join(b'{"id":%d,"popularity":1.5}\n' % i for i in range(2_000))
    one = zlib.compress(text, wbits=31)
    two = zlib.compress(text[:20_000], wbits=31) + zlib.compress(text[20_000:], wbits=31)

    def fed(data: bytes) -> Gunzip:
        gunzip = Gunzip()
        gunzip.feed(data)
        return gunzip

    assert short_of(fed(one), len(one), len(one)) is None
    assert short_of(fed(one), len(one), None) is None  # no Content-Length: the gzip alone decides
    assert short_of(fed(two), len(two), len(two)) is None  # a second whole member is part of the file
    assert short_of(fed(one[:-4]), len(one) - 4, None) == "the body ended inside the gzip stream (no trailer)"
    assert (
        short_of(fed(one[:-4]), len(one) - 4, len(one))
        == f"the body ended after {len(one) - 4} of its {len(one)} bytes"
    )
    first = len(zlib.compress(text[:20_000], wbits=31))
    at_the_seam = fed(two[:first])  # cut between the members: only the length can tell
    assert short_of(at_the_seam, first, None) is None
    assert short_of(at_the_seam, first, len(two)) == f"the body ended after {first} of its {len(two)} bytes"
    assert short_of(Gunzip(), 0, None) is not None  # an empty body is no file
    for after in (b"\0" * 64, b"<html></html>" * 8, b"\x1f" + b"\0" * 63):  # after a member, only a member
        with pytest.raises(zlib.error):
            fed(one + after)
    assert short_of(fed(one + two[:30]), len(one) + 30, None) is not None  # a second member cut short


# ---------------------------------------------------------------------------------------------
# A refresh never takes a partial file's silence for titles that left


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    """Quirk "export" on, and a catalogue whose day 1 is today (removals and additions that day)."""
    config = standin_config(
        discover_movies=1_500,
        discover_tv=100,
        base_date=datetime.now(UTC).date() - timedelta(days=1),
        changed_share=0.02,
        new_share=0.01,
        gone_share=0.01,
        hour=12.0,
        quirks=frozenset({"export"}),
    )
    async with running_standin(config) as running:
        yield running


def file_records(config: Any, media: Media, when: date) -> list[dict[str, Any]]:
    """A file's records from the stand-in's own generator (downloading it would take its first cut)."""
    return [orjson.loads(raw) for raw in exports.export_lines(config, exports.ExportFile(media, False, when))]


def state_of(lake: Path) -> dict[str, Any]:
    return dict(orjson.loads((lake / "_harvest" / "state-export-movie.json").read_bytes()))


async def test_a_refresh_over_a_file_that_stays_short_plans_nothing_and_removes_nothing(
    moving: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC).date()
    noon = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    monkeypatch.setattr(export_source, "utc_now", lambda: noon)  # today's file is out once the day moves
    lake = tmp_path / "lake"
    s = settings(moving, lake)

    # The full harvest: yesterday's file (the stand-in's today), its first download cut short.
    first = await harvest(s, CREDS, progress=False)
    assert first.status == "complete" and moving.stats.quirks == {"export": 1}
    held = set(selected(file_records(moving.config, "movie", today - timedelta(days=1))))
    got = lake_ids(lake)
    assert set(got) == held and max(got.values()) == 1

    # A day later, today's file stays short: the refresh stops before it plans or records anything.
    moving.config.day = 1
    today_path = URL(file_url(exports_url(moving), "movie", today)).path
    moving.config.faults[today_path] = ["gzip-cut"] * STAYS_SHORT
    with pytest.raises(TmdbUnavailable, match=r"inside the gzip stream \(no trailer\), 5 tries in a row"):
        await harvest(s, CREDS, mode="refresh", progress=False)
    state = state_of(lake)
    assert state["mode"] == "refresh" and state["source"].get("plan") is None
    after = read_local_lake(lake)
    assert not [o for o in after.outcomes if o["outcome"] == "removed"]
    assert not [k for k in after.other if "/refresh-" in k]  # no spooled work list either
    assert lake_ids(lake) == got  # no new record

    # Once the file comes whole (after the quirk's own first cut), exactly the titles that left.
    moving.config.faults.clear()
    refreshed = await harvest(s, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete" and moving.stats.quirks == {"export": 2}
    now = set(selected(file_records(moving.config, "movie", today)))
    removed = {o["tmdb_id"] for o in read_local_lake(lake).outcomes if o["outcome"] == "removed"}
    assert removed == held - now and removed == held & set(days.gone_ids(moving.config, "movie", 1))
    assert removed  # the day removed some: the check is not vacuous
    assert now - held <= set(lake_ids(lake))  # and every title that entered is held


# ---------------------------------------------------------------------------------------------
# Lines as TMDB writes them


async def test_blank_lines_tv_lines_and_titles_in_other_scripts_read_right(tmp_path: Path) -> None:
    config = standin_config(
        discover_movies=2_000,
        discover_tv=300,
        base_date=BASE,
        hour=12.0,
        quirks=frozenset({"export"}),
        quirk_rate=0.3,
    )
    async with running_standin(config) as standin:
        base = exports_url(standin)
        texts = {}
        for media in ("movie", "tv"):
            url = file_url(base, media, BASE)
            await download(url)  # the quirk's first download is cut: this test is about the lines
            got = await download(url)
            assert got.gzip_whole
            texts[media] = got.text
        for text in texts.values():
            assert b"\n\n" in text  # blank lines
            assert "千".encode() in text or "七".encode() in text or "기".encode() in text  # UTF-8 as it is
            assert "\U0001f3ac".encode() in text or "\U0001f988".encode() in text  # emoji, 4 bytes
            assert b"\\u" in text and b"\\ud83" in text  # JSON escapes, emoji as surrogate pairs
        records = {m: [orjson.loads(x) for x in t.splitlines() if x.strip()] for m, t in texts.items()}
        assert records["tv"] and not [r for r in records["tv"] if "adult" in r]  # as TMDB's TV lines
        assert any(not r["original_name"].isascii() for r in records["tv"])

        sink = open_sink(SinkSettings(url=str(tmp_path)))
        for media, fields in (("movie", {"include_video": True}), ("tv", {})):
            src = settings(standin, tmp_path, export_date=BASE.isoformat(), media=media, **fields).source
            source = ExportSource(src, sink)
            ids = [title.tmdb_id async for title in source.titles()]
            assert ids == [r["id"] for r in records[media]]  # every record, TV lines as not adult
            assert source.stats.malformed == 0 and source.stats.rows == len(records[media])


async def test_a_download_started_over_counts_its_malformed_lines_once() -> None:
    """A server of our own: the stand-in writes no malformed line. Its first answer is cut short."""
    lines = [b'{"id":%d,"popularity":1.5}\n' % i for i in range(1, 3_001)]
    lines[10], lines[20] = b"<html>\n", b'{"id":"x"}\n'  # two malformed lines, early: both tries read them
    lines[30:30] = [b"\n", b"  \r\n"]  # blank lines are nothing
    body = zlib.compress(b"".join(lines), wbits=31)
    served: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"ETag": '"e"'})
        await response.prepare(request)
        served.append(len(served))
        await response.write(body if len(served) > 1 else body[: len(body) // 2])  # gzip-cut, then whole
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/f.json.gz", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        host, port = runner.addresses[0][:2]
        counts = DownloadCounts()
        ids = [
            line.id
            async for block in blocks(f"http://{host}:{port}/f.json.gz", None, counts)
            for line in block
        ]
    finally:
        await runner.cleanup()
    assert ids == [i for i in range(1, 3_001) if i not in (11, 21)] and counts.attempts == 2
    assert counts.malformed == 2  # not once a try
