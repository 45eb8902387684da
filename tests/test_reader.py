"""The input readers: local files identified by content; S3 objects read in ranged GETs pinned to
their ETag, resumed where a body broke (moto's server, through tests/s3_partial_store.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from fixtures_s3 import s3_client
from s3_partial_store import PartialStore

from harvester.errors import InputUnavailable, SourceError
from harvester.source import reader
from harvester.source.reader import LocalReader, S3Reader

KiB = 1024
KEY = "in/movies.csv"


async def _read(r: S3Reader | LocalReader) -> list[bytes]:
    return [block async for block in r.blocks()]


async def _put(endpoint: str, bucket: str, data: bytes) -> str:
    async with s3_client(endpoint) as client:
        resp = await client.put_object(Bucket=bucket, Key=KEY, Body=data)
    return str(resp["ETag"])


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of 32 KiB read in blocks of 10 KiB: a 100 KiB object takes four GETs."""
    monkeypatch.setattr(reader, "RANGE_SIZE", 32 * KiB)
    monkeypatch.setattr(reader, "BLOCK_SIZE", 10 * KiB)


@pytest.fixture
async def store(s3_bucket: tuple[str, str]) -> AsyncIterator[PartialStore]:
    """A proxy in front of moto that records the requests (and can break answers)."""
    async with PartialStore(s3_bucket[0]) as proxy:
        yield proxy


# ---------------------------------------------------------------------------------------------
# Local


async def test_local_identity_is_the_content_wherever_the_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300 * KiB)
    here = tmp_path / "a" / "movies.csv"
    here.parent.mkdir()
    here.write_bytes(data)
    there = tmp_path / "copy.csv"
    shutil.copyfile(here, there)
    os.utime(there, (0, 0))  # another machine's copy: another mtime

    identity = await LocalReader(str(here)).identity()
    assert identity == f"size={len(data)}|sha256={hashlib.sha256(data).hexdigest()}"
    assert await LocalReader(str(there)).identity() == identity
    monkeypatch.setattr(reader, "HASH_READ_SIZE", 7)  # streamed: any read size gives the same digest
    assert await LocalReader(str(there)).identity() == identity

    there.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit, same size
    assert await LocalReader(str(there)).identity() != identity


async def test_local_identity_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SourceError, match=f"^cannot read source {re.escape(str(missing))}: no such file$"):
        await LocalReader(str(missing)).identity()
    with pytest.raises(SourceError, match="is a directory"):
        await LocalReader(str(tmp_path)).identity()


# ---------------------------------------------------------------------------------------------
# S3


async def test_s3_ranged_read_equals_the_object(
    s3_bucket: tuple[str, str], store: PartialStore, small_ranges: None
) -> None:
    _, bucket = s3_bucket
    data = os.urandom(100 * KiB)
    etag = await _put(s3_bucket[0], bucket, data)
    r = S3Reader(f"s3://{bucket}/{KEY}", store.url)

    assert re.fullmatch(rf"s3://{bucket}/{KEY}\|etag=[0-9a-f]{{32}}\|size=102400", await r.identity())
    blocks = await _read(r)
    assert b"".join(blocks) == data
    assert max(map(len, blocks)) == 10 * KiB
    gets = [(s.range, s.if_match) for s in store.seen if s.method == "GET"]
    assert gets == [
        ("bytes=0-32767", etag),
        ("bytes=32768-65535", etag),
        ("bytes=65536-98303", etag),
        ("bytes=98304-102399", etag),
    ]
    assert [s.method for s in store.seen].count("HEAD") == 1  # identity's HEAD pinned the reads


async def test_s3_blocks_first_heads_by_itself_and_an_empty_object_has_no_blocks(
    s3_bucket: tuple[str, str], store: PartialStore
) -> None:
    endpoint, bucket = s3_bucket
    await _put(endpoint, bucket, b"")
    assert await _read(S3Reader(f"s3://{bucket}/{KEY}", store.url)) == []
    assert [s.method for s in store.seen] == ["HEAD"]


async def test_s3_object_replaced_mid_read_is_refused(s3_bucket: tuple[str, str], small_ranges: None) -> None:
    endpoint, bucket = s3_bucket
    await _put(endpoint, bucket, os.urandom(100 * KiB))
    r = S3Reader(f"s3://{bucket}/{KEY}", endpoint)
    got = 0
    with pytest.raises(SourceError, match="input changed since this harvest started") as info:
        async with aclosing(r.blocks()) as blocks:
            async for block in blocks:
                if got == 0:
                    await _put(endpoint, bucket, os.urandom(100 * KiB))
                got += len(block)
    assert not isinstance(info.value, InputUnavailable)
    assert got == 32 * KiB  # the first range was read to its end; the next GET found another object


async def test_s3_object_replaced_after_identity_is_refused(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    await _put(endpoint, bucket, b"a|b\n")
    r = S3Reader(f"s3://{bucket}/{KEY}", endpoint)
    await r.identity()
    await _put(endpoint, bucket, b"a|b\nc|d\n")
    with pytest.raises(SourceError, match="input changed since this harvest started"):
        await _read(r)
    with pytest.raises(SourceError, match="input changed since this harvest started"):
        await r.identity()


async def test_s3_body_cut_mid_range_resumes_at_the_byte_reached(
    s3_bucket: tuple[str, str], store: PartialStore, small_ranges: None
) -> None:
    endpoint, bucket = s3_bucket
    data = os.urandom(100 * KiB)
    await _put(endpoint, bucket, data)
    gate = asyncio.Event()
    store.cut_gets(1, after=10 * KiB, gate=gate)  # the first GET delivers one block, then breaks
    blocks: list[bytes] = []
    async with aclosing(S3Reader(f"s3://{bucket}/{KEY}", store.url).blocks()) as stream:
        async for block in stream:
            blocks.append(block)
            gate.set()  # the client has the first 10 KiB: now the connection closes
    assert b"".join(blocks) == data
    ranges = [s.range for s in store.seen if s.method == "GET"]
    assert ranges[:2] == ["bytes=0-32767", "bytes=10240-43007"]  # resumed at the byte reached
    assert ranges[2:] == ["bytes=43008-75775", "bytes=75776-102399"]


async def test_s3_body_that_keeps_breaking_is_input_unavailable(
    s3_bucket: tuple[str, str], store: PartialStore, small_ranges: None
) -> None:
    endpoint, bucket = s3_bucket
    await _put(endpoint, bucket, os.urandom(100 * KiB))
    store.cut_gets(99, after=0)
    with pytest.raises(InputUnavailable, match="broke 5 times in a row at byte 0 of 102400") as info:
        await _read(S3Reader(f"s3://{bucket}/{KEY}", store.url))
    assert info.value.exit_code == 4 and "\n" not in str(info.value)
    assert [s.method for s in store.seen].count("GET") == reader.MAX_STALLED_READS


async def test_s3_progress_between_breaks_keeps_reading(
    s3_bucket: tuple[str, str], store: PartialStore, small_ranges: None
) -> None:
    # Six breaks in all, but each after some bytes: not stalled, so the read completes.
    endpoint, bucket = s3_bucket
    data = os.urandom(100 * KiB)
    await _put(endpoint, bucket, data)
    store.cut_gets(6, after=3 * KiB)
    assert b"".join(await _read(S3Reader(f"s3://{bucket}/{KEY}", store.url))) == data
    assert [s.method for s in store.seen].count("GET") > 6


@pytest.mark.parametrize(
    ("where", "reason"),
    [("{bucket}/in/missing.csv", "no such key"), ("no-such-bucket-here/movies.csv", "no such bucket")],
)
async def test_s3_missing_object_or_bucket(s3_bucket: tuple[str, str], where: str, reason: str) -> None:
    endpoint, bucket = s3_bucket
    url = "s3://" + where.format(bucket=bucket)
    r = S3Reader(url, endpoint)
    for attempt in (_read(r), r.identity()):
        with pytest.raises(SourceError, match=f"^cannot read source {re.escape(url)}: {reason}$") as info:
            await attempt
        assert not isinstance(info.value, InputUnavailable)  # exit 2: the user's input


async def test_s3_unreachable_endpoint_is_input_unavailable(
    moto_server: str, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto_server only for its fake credentials: without any, botocore fails before connecting.
    from harvester import aws

    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", 2.0)
    endpoint = f"http://127.0.0.1:{unused_tcp_port}"
    with pytest.raises(
        InputUnavailable, match=f"^cannot read source s3://b/movies.csv: cannot connect to {endpoint}$"
    ):
        await _read(S3Reader("s3://b/movies.csv", endpoint))
