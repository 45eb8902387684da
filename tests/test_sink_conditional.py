"""Conditional writes, ETags and capabilities of both sinks: moto's S3 server, a store in front of it
that lacks conditional writes or upload listing (tests/s3_partial_store.py), and local directories
raced by threads and processes."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from fixtures_s3 import open_uploads, s3_client, s3_objects
from s3_partial_store import Conditions, PartialStore

from harvester.config import SinkSettings
from harvester.errors import PreconditionFailed, SinkError, WriterConflict
from harvester.lake.sink import Capabilities, Sink, Versioned
from harvester.lake.sink import local as local_module
from harvester.lake.sink.local import LOCK_NAME, LOCK_SUFFIX, LocalSink
from harvester.lake.sink.s3 import S3Sink

MiB = 1024 * 1024
PART = 5 * MiB
PREFIX = "Raw/TMDB/JSON"
KEY = "_harvest/lease.json"


def _s3(endpoint: str, bucket: str, **kwargs: Any) -> S3Sink:
    return S3Sink(SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=endpoint), **kwargs)


# ---------------------------------------------------------------------------------------------
# Both sinks


async def test_conditional_create_replace_and_refuse(sink: Sink) -> None:
    first = await sink.put(KEY, b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed, match="exists already") as info:
        await sink.put(KEY, b"2", if_none_match=True)
    assert isinstance(info.value, WriterConflict) and info.value.exit_code == 6
    assert "lease.json" in str(info.value) and "\n" not in str(info.value)
    assert await sink.get_versioned(KEY) == Versioned(b"1", first)

    second = await sink.put(KEY, b"2", if_match=first)
    assert second != first
    with pytest.raises(PreconditionFailed, match="ETag is no longer"):
        await sink.put(KEY, b"3", if_match=first)  # a stale ETag: someone wrote since
    assert await sink.get_versioned(KEY) == Versioned(b"2", second)

    with pytest.raises(PreconditionFailed, match="no longer exists"):
        await sink.put("_harvest/other.json", b"x", if_match=second)
    assert await sink.get_versioned("_harvest/other.json") is None
    assert await sink.list_keys("") == [KEY]


async def test_etag_changes_with_each_write_and_matches_the_read(sink: Sink) -> None:
    etags = [await sink.put("k.json", body) for body in (b"a", b"b", b"c")]
    assert len(set(etags)) == 3
    found = await sink.get_versioned("k.json")
    assert found == Versioned(b"c", etags[-1])
    assert await sink.put("k.json", b"d", if_match=found.etag) != found.etag  # passed back as it is


async def test_conditional_delete(sink: Sink) -> None:
    etag = await sink.put(KEY, b"1")
    with pytest.raises(PreconditionFailed):
        await sink.delete(KEY, if_match=await sink.put("other.json", b"2"))  # another object's ETag
    assert await sink.get(KEY) == b"1"
    await sink.delete(KEY, if_match=etag)
    assert await sink.get(KEY) is None
    with pytest.raises(PreconditionFailed, match="no longer exists"):
        await sink.delete(KEY, if_match=etag)
    await sink.delete(KEY)  # unconditionally: still no error for a missing key


async def test_both_conditions_at_once_are_a_programming_error(sink: Sink) -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        await sink.put(KEY, b"1", if_match="x", if_none_match=True)
    assert await sink.list_keys("") == []


async def test_preflight_finds_both_capabilities_and_leaves_nothing(sink: Sink) -> None:
    assert await sink.preflight() == Capabilities(conditional_writes=True, list_uploads=True)
    assert await sink.list_keys("") == []


# ---------------------------------------------------------------------------------------------
# S3


async def test_s3_conditional_create_of_a_multipart_body(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    data = os.urandom(2 * PART + 1)
    sink = _s3(endpoint, bucket, part_size=PART)
    try:
        etag = await sink.put("big.json", data, if_none_match=True)
        assert etag.endswith('-3"')  # the ETag exactly as S3 sent it, quotes and part count included
        with pytest.raises(PreconditionFailed, match="exists already"):
            await sink.put("big.json", os.urandom(2 * PART), if_none_match=True)
        with pytest.raises(ValueError, match="multipart"):
            await sink.put("big.json", data, if_match=etag)
        assert await sink.get_versioned("big.json") == Versioned(data, etag)
    finally:
        await sink.aclose()
    assert await open_uploads(endpoint, bucket) == []  # the refused upload was aborted


async def test_s3_put_returns_the_etag_s3_stores(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)
    try:
        etag = await sink.put("a.json", b"1")
    finally:
        await sink.aclose()
    async with s3_client(endpoint) as client:
        head = await client.head_object(Bucket=bucket, Key=f"{PREFIX}/a.json")
    assert etag == head["ETag"] == f'"{hashlib.md5(b"1").hexdigest()}"'


async def test_s3_conflicting_conditional_write_is_a_failed_precondition(s3_bucket: tuple[str, str]) -> None:
    # AWS answers 409 ConditionalRequestConflict when two conditional writes race on one key.
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)

    class Body:
        async def read(self) -> bytes:
            return b"<Error><Code>ConditionalRequestConflict</Code><Message>conflict</Message></Error>"

    def conflict(request: Any, **_: Any) -> AioAWSResponse:
        return AioAWSResponse(request.url, 409, {}, Body())

    try:
        (await sink._get_client()).meta.events.register("before-send.s3.PutObject", conflict)
        with pytest.raises(PreconditionFailed, match="another conditional write"):
            await sink.put(KEY, b"1", if_none_match=True)
    finally:
        await sink.aclose()


async def _preflight_through(
    endpoint: str, bucket: str, conditions: Conditions, list_uploads: bool
) -> tuple[Capabilities, list[str]]:
    """The capabilities a store shows, and the requests their probe cost (method + path)."""
    async with PartialStore(endpoint, conditions=conditions, list_uploads=list_uploads) as store:
        sink = _s3(store.url, bucket)
        try:
            caps = await sink.preflight()
            assert sink.capabilities == caps
        finally:
            await sink.aclose()
    assert await s3_objects(endpoint, bucket) == {}  # the probe is gone whatever the store did
    return caps, [f"{s.method} {s.path.split('?')[0].split('/preflight-')[0]}" for s in store.seen]


async def test_s3_preflight_probe_costs_seven_requests(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    caps, requests = await _preflight_through(endpoint, bucket, "honour", list_uploads=True)
    assert caps == Capabilities(conditional_writes=True, list_uploads=True)
    probe = f"/{bucket}/{PREFIX}/_harvest"
    assert requests == [
        f"HEAD /{bucket}",
        f"PUT {probe}",  # create
        f"PUT {probe}",  # create again: refused
        f"PUT {probe}",  # replace with a wrong ETag: refused
        f"DELETE {probe}",  # delete with a wrong ETag: refused
        f"DELETE {probe}",
        f"GET /{bucket}",  # ListMultipartUploads, one key's worth
    ]


async def test_s3_store_that_ignores_conditions_and_cannot_list_uploads(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    caps, requests = await _preflight_through(endpoint, bucket, "ignore", list_uploads=False)
    assert caps == Capabilities(conditional_writes=False, list_uploads=False)
    assert len(requests) == 5  # the second create was accepted: no need to ask more


async def test_s3_store_that_rejects_conditional_headers(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    caps, requests = await _preflight_through(endpoint, bucket, "reject", list_uploads=True)
    assert caps == Capabilities(conditional_writes=False, list_uploads=True)
    probe = f"/{bucket}/{PREFIX}/_harvest"
    assert requests[1:4] == [f"PUT {probe}", f"PUT {probe}", f"DELETE {probe}"]  # 501, then plain


@pytest.mark.parametrize("preflight", [True, False])
async def test_s3_abort_uploads_without_listing_warns_once(
    s3_bucket: tuple[str, str], caplog: pytest.LogCaptureFixture, preflight: bool
) -> None:
    endpoint, bucket = s3_bucket
    caplog.set_level(logging.WARNING, logger="harvester.lake.sink")
    async with PartialStore(endpoint, list_uploads=False) as store:
        sink = _s3(store.url, bucket)
        try:
            if preflight:
                await sink.preflight()
            assert [await sink.abort_uploads(p) for p in ("", "2024/", "")] == [0, 0, 0]
        finally:
            await sink.aclose()
        listings = [s for s in store.seen if s.method == "GET" and "uploads" in s.path]
    assert len(listings) == 1  # found out once (by preflight or the first call), then not asked again
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot list unfinished multipart uploads" in warnings[0] and "lifecycle rule" in warnings[0]


# ---------------------------------------------------------------------------------------------
# Local


async def test_local_etag_is_the_md5_of_the_content(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path))
    assert await sink.put("a.json", b"abc") == hashlib.md5(b"abc").hexdigest()
    assert await sink.preflight() == Capabilities(conditional_writes=True, list_uploads=True)


async def test_local_lock_file_is_neither_a_key_nor_a_temp_file(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path))
    await sink.put(KEY, b"1", if_none_match=True)
    assert (tmp_path / "_harvest" / LOCK_NAME).is_file()
    assert await sink.list_keys("") == [KEY]
    assert await sink.abort_uploads("") == 0
    assert (tmp_path / "_harvest" / LOCK_NAME).is_file()
    with pytest.raises(SinkError, match=r"^invalid key"):
        await sink.put(f"_harvest/x{LOCK_SUFFIX}", b"x")


async def test_local_racing_conditional_writes_have_one_winner(tmp_path: Path) -> None:
    # A sink each, as separate runs would have; the threads open the lock file each on their own.
    sinks = [LocalSink(str(tmp_path)) for _ in range(8)]

    async def create(i: int) -> str | None:
        try:
            return await sinks[i].put(KEY, str(i).encode(), if_none_match=True)
        except PreconditionFailed:
            return None

    created = await asyncio.gather(*(create(i) for i in range(8)))
    winners = [i for i, etag in enumerate(created) if etag is not None]
    assert len(winners) == 1
    current = await sinks[0].get_versioned(KEY)
    assert current == Versioned(str(winners[0]).encode(), created[winners[0]] or "")

    async def replace(i: int) -> bool:
        try:
            await sinks[i].put(KEY, f"r{i}".encode(), if_match=current.etag)
        except PreconditionFailed:
            return False
        return True

    replaced = await asyncio.gather(*(replace(i) for i in range(8)))
    assert replaced.count(True) == 1
    assert await sinks[0].get(KEY) == f"r{replaced.index(True)}".encode()


async def test_local_condition_is_checked_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer holds the lock and creates the key while our put waits: the put must see it.
    temp_written = threading.Event()
    write_temp = local_module._write_temp

    def gated(path: Path, data: bytes) -> Path:
        tmp = write_temp(path, data)
        temp_written.set()  # the put is about to take the lock
        return tmp

    monkeypatch.setattr(local_module, "_write_temp", gated)
    sink = LocalSink(str(tmp_path))
    lock = tmp_path / "_harvest" / LOCK_NAME
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        put = asyncio.create_task(sink.put(KEY, b"ours", if_none_match=True))
        await asyncio.to_thread(temp_written.wait)
        (tmp_path / KEY).write_bytes(b"theirs")
    finally:
        os.close(fd)
    with pytest.raises(PreconditionFailed, match="exists already"):
        await put
    assert (tmp_path / KEY).read_bytes() == b"theirs"
    assert await sink.list_keys("") == [KEY]  # and the refused put's temp file is gone
    assert await sink.abort_uploads("") == 0


_CREATE_IN_A_PROCESS = """
import asyncio, sys
from harvester.errors import PreconditionFailed
from harvester.lake.sink.local import LocalSink

async def main() -> None:
    print("ready", flush=True)
    sys.stdin.readline()  # go
    try:
        await LocalSink(sys.argv[1]).put(sys.argv[2], sys.argv[3].encode(), if_none_match=True)
    except PreconditionFailed:
        print("refused", flush=True)
    else:
        print("created", flush=True)

asyncio.run(main())
"""


def test_local_conditional_create_across_processes(tmp_path: Path) -> None:
    # The processes queue on the lock the test holds, then all try at once when it lets go.
    lock = tmp_path / "_harvest" / LOCK_NAME
    lock.parent.mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE_IN_A_PROCESS, str(tmp_path), KEY, f"p{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            assert p.stdout.readline() == "ready\n"
            p.stdin.write("go\n")
            p.stdin.flush()
        assert not (tmp_path / KEY).exists()  # nobody got past the lock
    finally:
        os.close(fd)
    outcomes = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(outcomes) == ["created", "refused", "refused"]
    assert (tmp_path / KEY).read_text() == f"p{outcomes.index('created')}"
