"""`harvester verify`: the audit of a finished harvest, clean and with what can go wrong planted in it.

Each test harvests a small movies.csv for real (stand-in, then moto's S3 server or a local directory),
changes the lake behind the harvester's back, and audits it: in process for the findings, through the
CLI for exit codes and the JSON report.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_s3 import open_uploads, s3_client, s3_objects
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX

from harvester import config as config_mod
from harvester.config import Credentials, Settings
from harvester.errors import Interrupted
from harvester.lake.audit import CONCURRENCY, read_in_order
from harvester.lake.audit_checks import (
    Findings,
    Holder,
    Report,
    RunTally,
    Titles,
    count_mismatches,
    data_extension,
    in_table,
    scan_data,
    scan_outcomes,
    table_jobs,
    table_root,
)
from harvester.lake.chunks import ChunkEncoder
from harvester.lake.layout import data_key, data_prefix
from harvester.lake.sink import Sink, open_sink
from harvester.lake.sink.local import TMP_SUFFIX
from harvester.lake.state import Identity, RunRef, RunState, SinkIdentity, SourceIdentity, TmdbIdentity
from harvester.runner import harvest
from harvester.verify import verify
from tmdb_standin import RunningStandin, write_movies_csv

STATE_KEY = "_harvest/state-csv-movie.json"
CHUNK = 20


class Lake:
    """A finished harvest on one kind of sink, and ways to tamper with it from outside."""

    def __init__(self, tmp_path: Path, s3: tuple[str, str] | None, fmt: str, compression: str) -> None:
        self.s3 = s3
        self.root = tmp_path / "lake"
        self.tmp_path = tmp_path
        self.fmt, self.compression = fmt, compression

    def sink_section(self) -> dict[str, Any]:
        section = {"chunk_size": CHUNK, "format": self.fmt, "compression": self.compression}
        if self.s3 is None:
            return {**section, "url": str(self.root)}
        endpoint, bucket = self.s3
        return {**section, "url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint}

    async def build(self, standin: RunningStandin) -> None:
        csv = self.tmp_path / "movies.csv"
        write_movies_csv(csv, 120, seed=5)
        tmdb = {"base_url": standin.base_url, "rate_limit": 1000.0, "concurrency": 8, "timeout_s": 5.0}
        self.config = write_config(
            self.tmp_path / "config.toml", tmdb=tmdb, source={"path": str(csv)}, sink=self.sink_section()
        )
        self.settings: Settings = config_mod.load(self.config)
        result = await harvest(
            self.settings, Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN}), progress=False
        )
        assert result.status == "complete"
        self.sink: Sink = open_sink(self.settings.sink)
        raw = await self.sink.get(STATE_KEY)
        assert raw is not None
        self.state = RunState.from_bytes(raw, STATE_KEY)
        self.data = await self.sink.list_keys(data_prefix(self.state))
        assert len(self.data) >= 3

    async def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Every object (or file, lock and temp files included) and every open upload; a file with the
        time it was last written (S3's times are in seconds: `writes` tells those apart)."""
        if self.s3 is None:
            files = (p for p in self.root.rglob("*") if p.is_file())
            return {
                p.relative_to(self.root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in files
            }
        objects = {k: (body, 0) for k, body in (await s3_objects(*self.s3)).items()}
        return {**objects, **{f"upload:{k}": (b"", 0) for k in await open_uploads(*self.s3)}}

    async def open_upload(self, key: str) -> None:
        """An upload that was started and neither completed nor aborted (a killed writer's)."""
        if self.s3 is None:
            path = self.root / key
            (path.parent / f".{path.name}.0a1b2c{TMP_SUFFIX}").write_bytes(b"[{")
            return
        endpoint, bucket = self.s3
        async with s3_client(endpoint) as client:
            await client.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}/{key}")

    def records(self, body: bytes) -> list[bytes]:
        text = gzip.decompress(body) if self.compression == "gzip" else body
        if self.fmt == "jsonl":
            return [line for line in text.splitlines() if line]
        return [orjson.dumps(r) for r in orjson.loads(text)]

    def encode(self, records: list[bytes]) -> bytes:
        encoder = ChunkEncoder(self.fmt, self.compression)  # type: ignore[arg-type]
        for record in records:
            encoder.add(record)
        return encoder.finish()

    def ext(self) -> str:
        return data_extension(self.state)


@pytest.fixture(params=["local-jsonl-gzip", "s3-json"])
async def lake(
    request: pytest.FixtureRequest, tmp_path: Path, standin: RunningStandin
) -> AsyncIterator[Lake]:
    kind, fmt, *compression = request.param.split("-")
    s3 = request.getfixturevalue("s3_bucket") if kind == "s3" else None
    built = Lake(tmp_path, s3, fmt, compression[0] if compression else "none")
    await built.build(standin)
    try:
        yield built
    finally:
        await built.sink.aclose()


def kinds(report: Report) -> dict[str, int]:
    return {f.kind: f.count for f in report.findings}


def examples(report: Report, kind: str) -> list[str]:
    return next(f.examples for f in report.findings if f.kind == kind)


# -------------------------------------------------------------------------------------------------
# A finished harvest, and what can be planted in it


def writes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The requests moto's server answered that change something (it logs one line per request)."""
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    return [line for line in lines if any(f'"{m} ' in line for m in ("PUT", "POST", "DELETE"))]


async def test_a_finished_harvest_is_clean_and_verify_writes_nothing(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    before = await lake.snapshot()
    caplog.set_level(logging.INFO, logger="werkzeug")
    env = cli_env()  # no TMDB credential: the audit needs none
    done = await run_cli("verify", str(lake.config), env=env)
    assert done.code == 0, done.output
    assert "result      clean" in done.stdout and done.stderr == ""
    as_json = await run_cli("verify", "--json", str(lake.config), env=env)
    assert as_json.code == 0, as_json.output
    report = msgspec.json.decode(as_json.stdout, type=Report)
    assert report.clean and report.findings == []
    assert report.run == lake.state.tag and report.status == "complete"
    assert report.data_objects == len(lake.data) == lake.state.counts.objects
    assert report.records == report.titles == lake.state.counts.harvested
    assert report.outcome_lines == lake.state.counts.misses > 0
    stop = asyncio.Event()
    stop.set()  # a stop before the end: nothing to save, and nothing written either
    with pytest.raises(Interrupted):
        await verify(lake.settings, stop)
    assert await lake.snapshot() == before
    if lake.s3 is not None:
        assert any('"GET ' in r.getMessage() for r in caplog.records)  # the server's log was heard
        assert writes(caplog) == []


async def test_an_object_copied_under_a_commit_key_is_a_duplicate_and_an_orphan(lake: Lake) -> None:
    body = await lake.sink.get(lake.data[0])
    assert body is not None
    writer = lake.state.writers[-1][1]
    planted = data_key(lake.state, lake.state.next_seq, writer, lake.ext())  # the next commit's key
    await lake.sink.put(planted, body)
    report = await verify(lake.settings)
    assert kinds(report) == {"duplicates": len(lake.records(body)), "orphans": 1}
    assert examples(report, "orphans") == [planted]
    assert f"in {lake.data[0]} and {planted}" in examples(report, "duplicates")[0]
    done = await run_cli("verify", "--json", str(lake.config), env=cli_env())
    assert done.code == 2, done.output
    assert msgspec.json.decode(done.stdout, type=Report) == report
    assert done.stderr.startswith("harvester: error: the audit found") and "Traceback" not in done.stderr


async def test_a_record_written_twice_is_a_duplicate_the_state_does_not_count(lake: Lake) -> None:
    key = lake.data[1]
    body = await lake.sink.get(key)
    assert body is not None
    records = lake.records(body)
    await lake.sink.put(key, lake.encode([*records[:-1], records[0]]))  # the last one replaced
    report = await verify(lake.settings)
    assert kinds(report) == {"duplicates": 1}  # as many records as the state counts: only the id tells
    first = orjson.loads(records[0])["id"]
    assert examples(report, "duplicates") == [f"id {first} twice in {key}"]
    await lake.sink.put(key, lake.encode([*records, records[0]]))  # one record more than it counted
    report = await verify(lake.settings)
    assert kinds(report)["duplicates"] == 1 and kinds(report)["counts"] == 1
    assert "harvested" in examples(report, "counts")[0]


async def test_orphans_of_a_stale_writer_of_an_unknown_run_and_of_any_name_are_listed(lake: Lake) -> None:
    credits = {"cast": [], "crew": []}
    fresh = [orjson.dumps({"id": 900_000_000 + n, "title": "planted", "credits": credits}) for n in range(3)]
    stale = data_key(lake.state, 0, "wdead00", lake.ext())  # commit 0 by a writer that lost its lease
    partition = lake.state.partition
    unknown = f"{partition}/movies-20200101T000000Z-0badf00d-w123456-000000{lake.ext()}"
    elsewhere = f"{partition}/series-elsewhere.json"  # readers read it whatever its name says
    await lake.sink.put(stale, lake.encode(fresh[:1]))
    await lake.sink.put(unknown, lake.encode(fresh[1:]))
    await lake.sink.put(elsewhere, b"not ours: another table")
    report = await verify(lake.settings)
    assert kinds(report) == {"orphans": 3, "invalid": 1}
    assert sorted(examples(report, "orphans")) == sorted([stale, unknown, elsewhere])
    assert examples(report, "invalid")[0].startswith(f"{elsewhere}: not valid JSON")
    assert report.records == lake.state.counts.harvested + 3 and report.titles == report.records


async def test_a_truncated_and_a_deleted_object(lake: Lake) -> None:
    cut, gone = lake.data[0], lake.data[1]
    body = await lake.sink.get(cut)
    assert body is not None
    await lake.sink.put(cut, body[: len(body) // 2])
    await lake.sink.delete(gone)
    report = await verify(lake.settings)
    assert kinds(report) == {"invalid": 1, "missing": 1, "counts": 1}
    problem = "not a complete gzip stream" if lake.compression == "gzip" else "not valid JSON"
    assert examples(report, "invalid")[0].startswith(f"{cut}: {problem}")
    assert "harvested" in examples(report, "counts")[0]


async def test_an_open_upload_is_listed_and_left_alone(lake: Lake) -> None:
    key = f"{lake.state.partition}/movies-{lake.state.tag}-w0dead0-000099{lake.ext()}"
    await lake.open_upload(key)
    before = await lake.snapshot()
    report = await verify(lake.settings)
    assert kinds(report) == {"uploads": 1}
    assert examples(report, "uploads")[0].startswith(lake.state.partition)
    assert await lake.snapshot() == before  # listed, not aborted


async def test_no_harvest_yet_is_exit_2(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "config.toml", source={"path": "movies.csv"}, sink={"url": str(tmp_path / "lake")}
    )
    done = await run_cli("verify", str(cfg), env=cli_env())
    assert done.code == 2, done.output
    assert "no harvest state at" in done.stderr and done.stdout == ""
    assert not (tmp_path / "lake").exists()  # nothing created


# -------------------------------------------------------------------------------------------------
# The pure checks


def test_the_table_is_the_folder_above_the_first_date_placeholder() -> None:
    assert table_root("{yyyy}/{mm}/{dd}", "movies") == ""
    assert table_root("{media}/{yyyy}/{mm}/{dd}", "series") == "series/"
    assert table_root("raw/{media}-v2/{yyyy}-{mm}/{dd}", "movies") == "raw/movies-v2/"
    assert table_root("{media}", "movies") == "movies/"
    assert in_table("2026/11/23/movies-x-000001.json", "")
    assert in_table("2026/11/23/series-x-000001.json", "")  # readers read every name
    assert in_table("2026/11/23/copy of movies.json", "") and in_table("notes.txt", "")
    assert not in_table("_harvest/t/movies-x.json", "")
    assert not in_table("2026/.hidden/movies-x.json", "")
    assert not in_table("2026/11/_tmp/movies-x.json", "")
    assert not in_table("series/2026/movies-x.json", "movies/")


@pytest.mark.parametrize(
    ("key", "body", "problem"),
    [
        ("a.json", b'[{"id": 1}, {"id": 2}]', None),
        ("a.jsonl", b'{"id": 1}\n{"id": 2}\n', None),
        ("a.json.gz", gzip.compress(b'[{"id": 1}]'), None),
        ("a.json", b'[{"id": 1}, {"id": 2', "not valid JSON"),
        ("a.json.gz", gzip.compress(b'[{"id": 1}]')[:-6], "not a complete gzip stream"),
        ("a.json", b'[{"id": "1"}]', "a record is not an object with an integer id"),
        ("a.jsonl", b'{"id": 1}\n[2]\n', "a record is not an object with an integer id"),
        ("a.json", b'[{"id": true}]', "a record is not an object with an integer id"),
        ("a.json", b'{"id": 1}', "a record is not an object with an integer id"),
        ("a.jsonl", b"", "holds no records"),
        ("a.json", b'[{"id": 1}, {"id": 2}, {"id": 3}]', "3 records, more than chunk_size 2"),
        ("a.csv", b"id\n1\n", "not a .json or .jsonl object"),
    ],
)
def test_a_data_object_is_scanned_for_its_ids(key: str, body: bytes, problem: str | None) -> None:
    scan = scan_data(key, body, chunk_size=2)
    if problem is None:
        assert scan.problem is None and scan.ids
    else:
        assert scan.problem is not None and scan.problem.startswith(problem), scan.problem


def test_outcome_lines_are_counted_by_kind() -> None:
    lines = b'{"outcome": "miss"}\n{"outcome": "failed"}\n{"outcome": "removed"}\n{"outcome": "miss"}\n'
    scan = scan_outcomes(lines)
    assert (scan.misses, scan.removed, scan.failed, scan.problem) == (2, 1, 1, None)
    assert scan_outcomes(b'{"outcome": "found"}\n').problem is not None
    assert scan_outcomes(b'{"outcome": "miss"').problem is not None


def test_a_title_fetched_again_by_a_later_run_of_its_lineage_is_an_update() -> None:
    findings = Findings()
    titles = Titles(findings)
    titles.add("p/movies-A-000000.json", "p/movies-A-", 0, [1, 2])
    titles.add("p/movies-B-000000.json", "p/movies-B-", 0, [2, 3])  # a refresh of A fetched 2 again
    titles.add("p/movies-C-000000.json", "p/movies-C-", 1, [3])  # another harvest's run
    titles.add("p/movies-C-000001.json", "p/movies-C-", 1, [4, 4])
    assert titles.updates == 1 and len(titles) == 4 and titles.records == 7
    assert [f.examples for f in findings.listed()] == [
        ["id 3 in p/movies-B-000000.json and p/movies-C-000000.json", "id 4 twice in p/movies-C-000001.json"]
    ]


def identity(chunk_size: int = 2, source_type: str = "csv") -> Identity:
    return Identity(
        source=SourceIdentity(
            input="x", type=source_type, media="movie", genres=[], min_votes=0, year_from=0, year_to=0
        ),
        tmdb=TmdbIdentity(base_url="http://x", language="en-US", append=[], lookup="direct"),
        sink=SinkIdentity(chunk_size=chunk_size, format="json", compression="none", partition="{yyyy}/{mm}"),
    )


def test_the_states_account_for_the_table() -> None:
    ours = RunState.new(identity())
    ours.start_writer("w000001")
    ours.next_seq = 2
    ours.lineage = [RunRef("20250101T000000Z-00000001", "2025/01", "movies")]  # refreshed by this run
    ours.supersedes = [RunRef("20241201T000000Z-00000002", "2024/12", "movies")]  # a fresh start replaces
    other = RunState.new(identity(chunk_size=7, source_type="discover"))  # another harvest, same table
    other.start_writer("w000002")
    other.next_seq = 1
    committed = [data_key(ours, 0, "w000001", ".json"), data_key(ours, 1, "w000001", ".json")]
    beyond = data_key(ours, 2, "w000001", ".json")  # a commit that did not finish
    stale = data_key(ours, 1, "w0dead0", ".json")  # a writer that lost its lease
    other_key = data_key(other, 0, "w000002", ".json")
    refreshed = "2025/01/movies-20250101T000000Z-00000001-w000009-000000.json"
    replaced = "2024/12/movies-20241201T000000Z-00000002-w000008-000000.json"
    unknown = "2023/05/movies-20230501T000000Z-0000000f-w000007-000000.json"
    stray = "2025/01/series-x-000000.json"  # no state's: an orphan, read like any data object
    ignored = ["_harvest/t/movies-x.json", "2025/_tmp/movies-x.json"]
    keys = sorted([*committed, beyond, stale, other_key, refreshed, replaced, unknown, stray, *ignored])
    findings = Findings()
    jobs, superseded = table_jobs(keys, "", [Holder("ours", ours), Holder("other", other)], findings)
    assert superseded == 1
    by_key = {job.key: job for job in jobs}
    assert sorted(by_key) == sorted([*committed, beyond, stale, other_key, refreshed, unknown, stray])
    assert [k for k, job in by_key.items() if job.ours] == committed
    assert by_key[refreshed].lineage == by_key[committed[0]].lineage == 0  # a refresh updates, never doubles
    assert by_key[other_key].lineage == 1 and by_key[other_key].chunk_size == 7
    assert by_key[unknown].chunk_size is None and by_key[unknown].lineage < 0
    assert [(f.kind, f.count, sorted(f.examples)) for f in findings.listed()] == [
        ("orphans", 4, sorted([beyond, stale, unknown, stray]))
    ]


def test_counts_that_the_objects_contradict() -> None:
    state = RunState.new(identity())
    for pos in range(5):
        state.done.add(pos)
    state.counts.harvested, state.counts.misses, state.counts.objects = 4, 1, 2
    assert count_mismatches(state, RunTally(objects=2, records=4, misses=1)) == []
    wrong = count_mismatches(state, RunTally(objects=3, records=3, misses=1))
    assert len(wrong) == 2 and "3 records" in wrong[0] and "3 are committed" in wrong[1]
    state.done.add(9)
    assert "6 titles done" in count_mismatches(state, RunTally(objects=2, records=4, misses=1))[0]


async def test_reads_overlap_up_to_the_bound_and_merge_in_order() -> None:
    in_flight = most = 0
    crowded = asyncio.Event()
    merged: list[tuple[int, int]] = []

    async def read(n: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight >= CONCURRENCY:
            crowded.set()
        await crowded.wait()  # no read ends before CONCURRENCY of them are under way at once
        in_flight -= 1
        return n * n

    async with asyncio.timeout(10):
        await read_in_order(range(100), read, lambda n, r: merged.append((n, r)), asyncio.Event())
    assert merged == [(n, n * n) for n in range(100)]
    assert CONCURRENCY <= most <= CONCURRENCY + 2  # bounded: bodies in memory do not grow with the objects
