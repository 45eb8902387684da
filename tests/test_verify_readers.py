"""`verify` judges what readers read (issue 18): every object under the table folder whose path has no
part starting with `_` or `.` is accounted for by a state of the table, or it is a finding.

The scenario is the checker's, from outside: a harvest on moto's S3 through the CLI, then, one at a
time, a copy of a data object under another name, a stray JSON file, a truncated object and an open
multipart upload, each put there with a plain S3 client; `verify` exits 2 for each and 0 once it is
undone. Then the table as several harvests make it: two of a list sharing a folder (a title both hold
is a duplicate), a harvest of the other media in the folder, records without an appended section, a
refresh (its titles are updates, not duplicates).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_s3 import open_uploads, s3_client
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_local_lake, read_s3_lake

from harvester import config as config_mod
from harvester.config import Credentials
from harvester.lake.audit_checks import Report
from harvester.runner import harvest
from harvester.verify import format_report, verify
from tmdb_standin import RunningStandin, running_standin, write_movies_csv, write_series_csv

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})
CHUNK = 15


class Bucket:
    """The bucket as a user with the AWS CLI sees it: keys under the sink's prefix."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint, self.bucket = endpoint, bucket

    def sink(self, **more: Any) -> dict[str, Any]:
        return {"url": f"s3://{self.bucket}/{PREFIX}", "endpoint_url": self.endpoint, **more}

    async def data_keys(self) -> list[str]:
        """The data objects (everything but `_harvest/`), relative to the prefix."""
        return sorted((await read_s3_lake(self.endpoint, self.bucket)).data)

    async def get(self, key: str) -> bytes:
        async with s3_client(self.endpoint) as client:
            resp = await client.get_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")
            async with resp["Body"] as body:
                data: bytes = await body.read()
                return data

    async def put(self, key: str, body: bytes) -> None:
        async with s3_client(self.endpoint) as client:
            await client.put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=body)

    async def delete(self, key: str) -> None:
        async with s3_client(self.endpoint) as client:
            await client.delete_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")

    async def start_upload(self, key: str) -> str:
        async with s3_client(self.endpoint) as client:
            resp = await client.create_multipart_upload(Bucket=self.bucket, Key=f"{PREFIX}/{key}")
            upload_id: str = resp["UploadId"]
            return upload_id

    async def abort_upload(self, key: str, upload_id: str) -> None:
        async with s3_client(self.endpoint) as client:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=f"{PREFIX}/{key}", UploadId=upload_id)


def tmdb(standin: RunningStandin, **more: Any) -> dict[str, Any]:
    return {"base_url": standin.base_url, "rate_limit": 1000.0, "concurrency": 8, "timeout_s": 5.0, **more}


async def harvested(config: Path) -> None:
    done = await run_cli("run", str(config), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output


async def verified(config: Path, code: int) -> list[Report]:
    """`verify --json` through the CLI, with no TMDB credential: its exit code and reports."""
    done = await run_cli("verify", "--json", str(config), env=cli_env())
    assert done.code == code, done.output
    assert "Traceback" not in done.stderr
    decoded = msgspec.json.decode(done.stdout)
    return msgspec.convert(decoded if isinstance(decoded, list) else [decoded], list[Report])


def kinds(report: Report) -> dict[str, int]:
    return {f.kind: f.count for f in report.findings}


def examples(report: Report, kind: str) -> list[str]:
    return next(f.examples for f in report.findings if f.kind == kind)


# -------------------------------------------------------------------------------------------------
# The checker's scenario: one change at a time, through the CLI, on S3


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
async def test_every_object_readers_read_is_judged_one_change_at_a_time(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, fmt: str
) -> None:
    s3 = Bucket(*s3_bucket)
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 60, seed=8)
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb=tmdb(standin),
        source={"path": str(csv)},
        sink=s3.sink(format=fmt, chunk_size=CHUNK),
    )
    await harvested(cfg)
    (clean,) = await verified(cfg, 0)
    assert clean.clean and clean.sharing == []
    data = await s3.data_keys()
    assert len(data) == clean.data_objects >= 3
    first = data[0]
    partition = first.rsplit("/", 1)[0]
    body = await s3.get(first)
    records = [line for line in body.splitlines() if line] if fmt == "jsonl" else orjson.loads(body)

    # A copy of a data object under another name: every reader counts its titles twice.
    copy = f"{partition}/backup-of-{first.rsplit('/', 1)[1]}"
    await s3.put(copy, body)
    (found,) = await verified(cfg, 2)
    assert kinds(found) == {"duplicates": len(records), "orphans": 1}
    assert examples(found, "orphans") == [copy]
    assert f"in {copy} and {first}" in examples(found, "duplicates")[0]  # key order: "backup-" first
    text = await run_cli("verify", str(cfg), env=cli_env())
    assert text.code == 2
    line = f"orphans     1 object is accounted for by no state of the table, and its readers read it: {copy}"
    assert line in text.stdout
    await s3.delete(copy)
    await verified(cfg, 0)

    # A stray JSON file: valid records, of titles no harvest wrote; only who accounts for it tells.
    stray = f"{partition}/extra.json"
    await s3.put(stray, b'[{"id": 987654321, "title": "no harvest wrote this", "credits": {}}]')
    (found,) = await verified(cfg, 2)
    assert kinds(found) == {"orphans": 1} and examples(found, "orphans") == [stray]
    assert found.records == clean.records + 1  # read like the rest: its titles are in the table
    # Readers skip `_` and `.` paths (a Spark staging folder, a hidden file): so does the audit.
    hidden = [f"{partition}/_temporary/0/{first.rsplit('/', 1)[1]}", f"{partition}/.extra.json"]
    for key in hidden:
        await s3.put(key, body)
    (found,) = await verified(cfg, 2)
    assert kinds(found) == {"orphans": 1}
    await s3.delete(stray)
    await verified(cfg, 0)
    for key in hidden:
        await s3.delete(key)

    # A truncated data object: cut within a record (a JSON Lines object cut after a line is whole).
    cut = len(body) // 2
    while body[cut - 1 : cut] in (b"\n", b"}"):  # no record ends where the cut is
        cut -= 1
    await s3.put(first, body[:cut])
    (found,) = await verified(cfg, 2)
    assert "invalid" in kinds(found) and examples(found, "invalid")[0].startswith(f"{first}: not valid JSON")
    await s3.put(first, body)
    await verified(cfg, 0)

    # An upload that was started and neither completed nor aborted.
    late = f"{partition}/movies-late.jsonl"
    upload = await s3.start_upload(late)
    (found,) = await verified(cfg, 2)
    assert kinds(found) == {"uploads": 1} and examples(found, "uploads")[0].startswith(partition)
    await s3.abort_upload(late, upload)
    assert await open_uploads(*s3_bucket) == []
    (again,) = await verified(cfg, 0)
    assert again == clean


# -------------------------------------------------------------------------------------------------
# Several harvests in one folder


@pytest.mark.parametrize("shared_titles", [0, 1])
async def test_two_harvests_of_a_list_sharing_a_folder(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, shared_titles: int
) -> None:
    s3 = Bucket(*s3_bucket)
    alpha, beta = tmp_path / "a.csv", tmp_path / "b.csv"
    write_movies_csv(alpha, 40, seed=1)
    write_movies_csv(beta, 40, seed=2, start_id=5_000_000)
    found_in_alpha = expected_movies(distinct_ids(alpha)).found
    both = sorted(found_in_alpha)[:shared_titles]  # a title of alpha's listed in beta's input too
    with beta.open("a", encoding="utf-8") as out:
        out.writelines(
            line for line in alpha.read_text().splitlines(keepends=True) if line.split("|")[0] in both
        )
    shared = {"partition": "movies/{yyyy}/{mm}/{dd}"}
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb=tmdb(standin),
        sink=s3.sink(format="jsonl", chunk_size=CHUNK),
        harvest=[
            {"name": "alpha", "source": {"path": str(alpha)}, "sink": shared},
            {"name": "beta", "source": {"path": str(beta)}, "sink": shared},
        ],
    )
    await harvested(cfg)
    reports = await verified(cfg, 2 if shared_titles else 0)
    assert [r.sharing for r in reports] == [["beta"], ["alpha"]]
    lake = await read_s3_lake(*s3_bucket)
    objects = len(lake.data)
    assert objects > 4 and all(k.startswith("movies/") for k in lake.data)
    assert all(r.data_objects == objects for r in reports)  # each reads the whole folder, as readers do
    if not shared_titles:
        assert all(r.clean for r in reports)
        return
    (tmdb_id,) = {r["id"] for rs in lake.data.values() for r in rs if r["imdb_id"] in both}
    for report in reports:
        assert kinds(report) == {"duplicates": 1}
        assert examples(report, "duplicates")[0].startswith(f"id {tmdb_id} in movies/")


async def test_a_harvest_of_the_other_media_in_the_folder(standin: RunningStandin, tmp_path: Path) -> None:
    """Two configs of one harvest each, on one prefix with the default partition: the table is the
    whole prefix, and its readers would take movies and series as one."""
    lake = tmp_path / "lake"
    write_movies_csv(tmp_path / "movies.csv", 30, seed=4)
    write_series_csv(tmp_path / "series.csv", 20, seed=4)
    settings = []
    for name, source in (("movies", {"type": "csv"}), ("series", {"type": "series_csv"})):
        cfg = write_config(
            tmp_path / f"{name}.toml",
            tmdb=tmdb(standin),
            source={**source, "path": str(tmp_path / f"{name}.csv")},
            sink={"url": str(lake), "chunk_size": CHUNK},
        )
        settings.append(config_mod.load(cfg))
        assert (await harvest(settings[-1], CREDS, progress=False)).status == "complete"
    data = read_local_lake(lake).data
    by_name = {
        n: sorted(k for k in data if k.rsplit("/", 1)[1].startswith(f"{n}-")) for n in ("movies", "series")
    }
    assert all(by_name.values()) and sum(map(len, by_name.values())) == len(data)
    for ours, theirs, harvest_id in ((0, "series", "series_csv-tv"), (1, "movies", "csv-movie")):
        report = await verify(settings[ours])
        assert kinds(report) == {"mixed": len(by_name[theirs])}
        assert examples(report, "mixed")[0] == f"{by_name[theirs][0]} (of harvest {harvest_id}, of {theirs})"
        assert report.data_objects == len(data) - len(by_name[theirs])  # the other media's are not read
        assert "readers of this folder mix movies and series" in format_report(report)


# -------------------------------------------------------------------------------------------------
# What each record must hold


async def test_records_without_an_appended_section(standin: RunningStandin, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_movies_csv(tmp_path / "movies.csv", 40, seed=6)
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb=tmdb(standin, append=["credits", "keywords"]),
        source={"path": str(tmp_path / "movies.csv")},
        sink={"url": str(lake), "chunk_size": CHUNK, "format": "jsonl"},
    )
    settings = config_mod.load(cfg)
    assert (await harvest(settings, CREDS, progress=False)).status == "complete"
    assert (await verify(settings)).clean
    data = read_local_lake(lake).data
    key = sorted(data)[0]
    records = data[key]
    del records[0]["credits"]  # left out
    records[1]["credits"] = None  # TMDB's other way of leaving it out
    del records[2]["keywords"]
    (lake / key).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    report = await verify(settings)
    assert kinds(report) == {"sections": 3}  # the counts still agree: only the records tell
    ids = ", ".join(str(r["id"]) for r in records[:3])
    assert examples(report, "sections") == [f"3 records (ids {ids}) without credits, keywords in {key}"]
    assert "sections    3 records are without an appended section: " in format_report(report)


async def test_discover_results_stored_as_they_are_carry_no_appended_section(tmp_path: Path) -> None:
    """`details = false` stores the listing's own results: nothing was appended, nothing is missing."""
    async with running_standin(standin_config(discover_movies=40)) as standin:
        cfg = write_config(
            tmp_path / "config.toml",
            tmdb=tmdb(standin),  # append = ["credits"], the default
            source={"type": "discover", "date_from": "1900-01-01", "details": False},
            sink={"url": str(tmp_path / "lake"), "chunk_size": CHUNK},
        )
        settings = config_mod.load(cfg)
        assert (await harvest(settings, CREDS, progress=False)).status == "complete"
    records = [r for rs in read_local_lake(tmp_path / "lake").data.values() for r in rs]
    assert records and not any("credits" in r for r in records)
    report = await verify(settings)
    assert report.clean and report.records == len(records)


# -------------------------------------------------------------------------------------------------
# A refresh: the same titles again, in a later run of the same line


@pytest.fixture
async def moving() -> AsyncIterator[RunningStandin]:
    """A stand-in whose catalogue changes 3% of its movies a day, and whose day 1 is today."""
    config = standin_config(
        discover_movies=2_000, base_date=datetime.now(UTC).date() - timedelta(days=1), changed_share=0.03
    )
    async with running_standin(config) as running:
        yield running


async def test_titles_a_refresh_fetched_again_are_updates_not_duplicates(
    moving: RunningStandin, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    write_movies_csv(tmp_path / "movies.csv", 300, seed=17)
    cfg = write_config(
        tmp_path / "config.toml",
        tmdb=tmdb(moving),
        source={"path": str(tmp_path / "movies.csv")},
        sink={"url": str(lake), "format": "jsonl"},
    )
    settings = config_mod.load(cfg)
    assert (await harvest(settings, CREDS, progress=False)).status == "complete"
    before = await verify(settings)
    moving.config.day = 1
    refreshed = await harvest(settings, CREDS, mode="refresh", progress=False)
    assert refreshed.status == "complete" and refreshed.summary.harvested > 0
    report = await verify(settings)
    assert report.clean, report.findings
    # What to expect, from the objects: a record of the refresh is an update when the first run holds
    # its title (one it did not hold, one that entered TMDB since, is a title of its own).
    data = read_local_lake(lake).data
    first = {r["id"] for k, rs in data.items() if before.run in k for r in rs}
    again = [r["id"] for k, rs in data.items() if report.run in k for r in rs]
    assert len(again) == refreshed.summary.harvested and len(data) == report.data_objects
    assert report.updates == sum(1 for i in again if i in first) > 0
    assert report.records == before.records + len(again) and report.titles == len(first | set(again))
    done = await run_cli("verify", str(cfg), env=cli_env())
    assert done.code == 0 and f"updates     {report.updates} records" in done.stdout
