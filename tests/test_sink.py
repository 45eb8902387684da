"""Both sinks against real storage: a moto S3 server over sockets, and a temporary directory."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from botocore.exceptions import ConnectionClosedError
from fixtures_s3 import open_uploads, s3_client, s3_objects

from harvester import aws
from harvester.config import SinkSettings
from harvester.errors import SinkError
from harvester.lake.sink import Sink
from harvester.lake.sink import s3 as s3_module
from harvester.lake.sink.local import LOCK_SUFFIX, TMP_SUFFIX, LocalSink
from harvester.lake.sink.s3 import S3Sink

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part real S3 accepts, so these uploads would also pass on AWS
PREFIX = "Raw/TMDB/JSON"


def _s3(endpoint: str, bucket: str, prefix: str = PREFIX, **kwargs: Any) -> S3Sink:
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return S3Sink(SinkSettings(url=url, endpoint_url=endpoint), **kwargs)


def _body(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


async def _etag(endpoint: str, bucket: str, key: str) -> str:
    async with s3_client(endpoint) as client:
        head = await client.head_object(Bucket=bucket, Key=key)
    return str(head["ETag"]).strip('"')


def _on_upload_part(client: Any, handler: Any) -> None:
    """Run `handler(part_number)` before each UploadPart request goes on the wire."""

    async def hook(request: Any, **_: Any) -> None:
        number = int(request.url.split("partNumber=")[1].split("&")[0])
        await handler(number)

    client.meta.events.register("before-send.s3.UploadPart", hook)


# ---------------------------------------------------------------------------------------------
# Both sinks


async def test_round_trip(sink: Sink) -> None:
    await sink.preflight()
    assert await sink.list_keys("") == []
    await sink.put("2024/01/02/chunk-0001.json", b'[{"id": 1}]')
    await sink.put("2024/01/02/chunk-0000.json", b"[]")
    await sink.put("2024/01/03/chunk-0000.json", b"[3]")
    await sink.put("_harvest/state.json", b"{}", content_type="application/json")

    assert await sink.get("2024/01/02/chunk-0001.json") == b'[{"id": 1}]'
    assert await sink.get("2024/01/02/nope.json") is None
    assert await sink.get("2024/01") is None  # a "directory" is not a key
    assert await sink.list_keys("") == [
        "2024/01/02/chunk-0000.json",
        "2024/01/02/chunk-0001.json",
        "2024/01/03/chunk-0000.json",
        "_harvest/state.json",
    ]
    assert await sink.list_keys("2024/01/02/") == ["2024/01/02/chunk-0000.json", "2024/01/02/chunk-0001.json"]
    assert await sink.list_keys("2024/01/0") == [
        "2024/01/02/chunk-0000.json",
        "2024/01/02/chunk-0001.json",
        "2024/01/03/chunk-0000.json",
    ]
    assert await sink.list_keys("2025/") == []

    await sink.put("2024/01/02/chunk-0000.json", b"[0]")  # replace
    assert await sink.get("2024/01/02/chunk-0000.json") == b"[0]"

    await sink.delete("2024/01/02/chunk-0000.json")
    await sink.delete("2024/01/02/chunk-0000.json")  # already gone: no error
    assert await sink.get("2024/01/02/chunk-0000.json") is None
    assert "2024/01/02/chunk-0000.json" not in await sink.list_keys("")
    assert await sink.abort_uploads("") == 0


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "", "a//b", "./a", "a/"])
async def test_keys_outside_the_root_are_refused(sink: Sink, key: str) -> None:
    with pytest.raises(SinkError, match=r"^invalid key"):
        await sink.put(key, b"x")
    with pytest.raises(SinkError, match=r"^invalid key"):
        await sink.get(key)
    with pytest.raises(SinkError, match=r"^invalid key"):
        await sink.delete(key)
    assert await sink.list_keys("") == []


async def test_concurrent_puts_on_a_fresh_sink(sink: Sink) -> None:
    # The first uses race to create the S3 client; all must share one and succeed.
    await asyncio.gather(*(sink.put(f"k/{i}.json", str(i).encode()) for i in range(8)))
    assert await sink.list_keys("k/") == sorted(f"k/{i}.json" for i in range(8))


# ---------------------------------------------------------------------------------------------
# S3


async def test_s3_keys_live_under_the_prefix(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)
    try:
        await sink.put("a/b.json", b"1")
        assert sink.url == f"s3://{bucket}/{PREFIX}"
    finally:
        await sink.aclose()
    assert await s3_objects(endpoint, bucket) == {f"{PREFIX}/a/b.json": b"1"}


async def test_s3_bucket_root_without_prefix(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket, prefix="")
    try:
        await sink.preflight()
        await sink.put("x.json", b"1")
        assert await sink.list_keys("") == ["x.json"]
        assert sink.url == f"s3://{bucket}"
    finally:
        await sink.aclose()
    assert await s3_objects(endpoint, bucket) == {"x.json": b"1"}


async def test_s3_preflight_leaves_nothing(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)
    try:
        await sink.preflight()
    finally:
        await sink.aclose()
    assert await s3_objects(endpoint, bucket) == {}


async def test_s3_list_keys_paginates(s3_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, bucket = s3_bucket
    monkeypatch.setattr(s3_module, "LIST_PAGE_SIZE", 2)
    sink = _s3(endpoint, bucket)
    try:
        keys = [f"p/{i:02d}.json" for i in range(7)]
        for k in keys:
            await sink.put(k, b"x")
        await sink.put("q/other.json", b"x")
        assert await sink.list_keys("p/") == keys
    finally:
        await sink.aclose()


async def test_s3_small_body_is_one_put(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket, part_size=PART)
    try:
        await sink.put("small.json", _body(PART - 1))
    finally:
        await sink.aclose()
    assert "-" not in await _etag(endpoint, bucket, f"{PREFIX}/small.json")  # multipart ETags end in -N


async def test_s3_large_body_goes_multipart(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    data = _body(2 * PART + 123)
    sink = _s3(endpoint, bucket, part_size=PART)
    try:
        await sink.put("big.json", data)
        assert await sink.get("big.json") == data
    finally:
        await sink.aclose()
    assert (await _etag(endpoint, bucket, f"{PREFIX}/big.json")).endswith("-3")
    assert await open_uploads(endpoint, bucket) == []


async def test_s3_part_retried_by_botocore_alone(s3_bucket: tuple[str, str]) -> None:
    # botocore's retries (harvester/aws.py) are the only ones: a part that fails once is sent again
    # by botocore, and nothing above it tries again.
    endpoint, bucket = s3_bucket
    data = _body(2 * PART + 1)
    sink = _s3(endpoint, bucket, part_size=PART)
    tries: list[int] = []

    async def flaky(number: int) -> None:
        tries.append(number)
        if number == 2 and tries.count(2) == 1:
            raise ConnectionClosedError(endpoint_url=endpoint)

    try:
        _on_upload_part(await sink._get_client(), flaky)
        await sink.put("big.json", data)
    finally:
        await sink.aclose()
    assert tries == [1, 2, 2, 3]
    assert await s3_objects(endpoint, bucket) == {f"{PREFIX}/big.json": data}


async def test_s3_failed_multipart_is_aborted(
    s3_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, bucket = s3_bucket
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    sink = _s3(endpoint, bucket, part_size=PART)
    tries: list[int] = []

    async def part_2_always_fails(number: int) -> None:
        tries.append(number)
        if number == 2:
            raise ConnectionClosedError(endpoint_url=endpoint)

    try:
        await sink.put("big.json", b"old")
        _on_upload_part(await sink._get_client(), part_2_always_fails)
        with pytest.raises(SinkError, match=rf"^cannot put s3://{bucket}/{PREFIX}/big.json: ") as info:
            await sink.put("big.json", _body(3 * PART))
        assert "\n" not in str(info.value)
        assert tries == [1, 2]  # one attempt: nothing retries behind botocore
        assert await sink.get("big.json") == b"old"  # the old object survives a failed replace
    finally:
        await sink.aclose()
    assert await open_uploads(endpoint, bucket) == []


async def test_s3_cancelled_multipart_is_aborted(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket, part_size=PART)
    reached_part_2 = asyncio.Event()

    async def hang_on_part_2(number: int) -> None:
        if number == 2:
            reached_part_2.set()
            await asyncio.get_running_loop().create_future()  # never resolves

    try:
        _on_upload_part(await sink._get_client(), hang_on_part_2)
        task = asyncio.create_task(sink.put("big.json", _body(2 * PART)))
        await reached_part_2.wait()
        assert await open_uploads(endpoint, bucket) == [f"{PREFIX}/big.json"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await sink.aclose()
    assert await open_uploads(endpoint, bucket) == []
    assert await s3_objects(endpoint, bucket) == {}


async def test_s3_abort_uploads_left_by_a_crash(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    async with s3_client(endpoint) as client:
        for key in (
            f"{PREFIX}/2024/a.json",
            f"{PREFIX}/2024/b.json",
            f"{PREFIX}/2025/c.json",
            "Other/d.json",
        ):
            await client.create_multipart_upload(Bucket=bucket, Key=key)
    sink = _s3(endpoint, bucket)
    try:
        assert await sink.abort_uploads("2024/") == 2
        assert await open_uploads(endpoint, bucket) == ["Other/d.json", f"{PREFIX}/2025/c.json"]
        assert await sink.abort_uploads("") == 1
        assert await sink.abort_uploads("") == 0
    finally:
        await sink.aclose()
    assert await open_uploads(endpoint, bucket) == ["Other/d.json"]  # outside the sink's prefix


async def test_s3_preflight_missing_bucket(s3_bucket: tuple[str, str]) -> None:
    endpoint, _ = s3_bucket
    sink = _s3(endpoint, "no-such-bucket")
    try:
        with pytest.raises(SinkError, match=r"^bucket no-such-bucket does not exist"):
            await sink.preflight()
    finally:
        await sink.aclose()


async def test_s3_preflight_forbidden_bucket(s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)

    class EmptyBody:
        async def read(self) -> bytes:
            return b""

    def forbidden(request: Any, **_: Any) -> AioAWSResponse:
        # What S3 answers a HEAD on a bucket owned by someone else (moto does not enforce IAM).
        return AioAWSResponse(request.url, 403, {}, EmptyBody())

    try:
        (await sink._get_client()).meta.events.register("before-send.s3.HeadBucket", forbidden)
        with pytest.raises(SinkError, match=rf"^no access to bucket {bucket} "):
            await sink.preflight()
    finally:
        await sink.aclose()


async def test_s3_missing_bucket_on_put(s3_bucket: tuple[str, str]) -> None:
    endpoint, _ = s3_bucket
    sink = _s3(endpoint, "no-such-bucket")
    try:
        with pytest.raises(SinkError, match=r"^cannot put s3://no-such-bucket/\S+: no such bucket$"):
            await sink.put("a.json", b"1")
    finally:
        await sink.aclose()


async def test_s3_preflight_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", 1.0)
    with socket.socket() as s:  # a port that was just free: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    sink = _s3(endpoint, "bucket")
    started = time.monotonic()
    try:
        with pytest.raises(
            SinkError, match=f"^cannot use s3://bucket/{PREFIX}: cannot connect to {endpoint}$"
        ):
            await sink.preflight()
    finally:
        await sink.aclose()
    assert time.monotonic() - started < 3


async def test_s3_preflight_without_credentials(
    s3_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, bucket = s3_bucket
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    sink = _s3(endpoint, bucket)
    try:
        with pytest.raises(SinkError, match="no AWS credentials found"):
            await sink.preflight()
    finally:
        await sink.aclose()


async def test_s3_client_recreated_after_aclose(s3_bucket: tuple[str, str]) -> None:
    # A Lambda warm start closes the sink at the end of one run and may use a new one in the next.
    endpoint, bucket = s3_bucket
    sink = _s3(endpoint, bucket)
    await sink.put("a.json", b"1")
    await sink.aclose()
    await sink.aclose()  # twice is harmless
    try:
        assert await sink.get("a.json") == b"1"
    finally:
        await sink.aclose()


# ---------------------------------------------------------------------------------------------
# Local


def _all_files(root: Path) -> list[str]:
    """Every file but the writers' lock file, which stays once made."""
    files = (p for p in root.rglob("*") if p.is_file() and not p.name.endswith(LOCK_SUFFIX))
    return sorted(p.relative_to(root).as_posix() for p in files)


async def test_local_preflight_creates_root_and_leaves_no_probe(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    await LocalSink(str(root)).preflight()
    assert root.is_dir()
    assert _all_files(root) == []


async def test_local_put_leaves_no_temp_files(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path))
    await sink.put("x/y/z.json", _body(3 * MiB))
    await sink.put("x/y/z.json", b"new")
    assert _all_files(tmp_path) == ["x/y/z.json"]
    assert (tmp_path / "x/y/z.json").read_bytes() == b"new"


async def test_local_failed_put_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = LocalSink(str(tmp_path))
    await sink.put("k.json", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SinkError, match=r"^cannot write .*k\.json: No space left on device$"):
        await sink.put("k.json", b"new")
    assert _all_files(tmp_path) == ["k.json"]
    assert (tmp_path / "k.json").read_bytes() == b"old"


async def test_local_refuses_backslashes(tmp_path: Path) -> None:
    # A separator on Windows: 'a\\..\\..\\x' would climb out of the root there.
    with pytest.raises(SinkError, match=r"^invalid key"):
        await LocalSink(str(tmp_path)).put("a\\..\\..\\x", b"x")
    assert _all_files(tmp_path) == []


async def test_local_rejects_prefix_outside_root(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path / "root"))
    with pytest.raises(SinkError, match="invalid prefix"):
        await sink.list_keys("../")
    with pytest.raises(SinkError, match="invalid prefix"):
        await sink.abort_uploads("../x")


async def test_local_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    sink = LocalSink(str(blocker / "out"))
    with pytest.raises(SinkError, match=r"^local output .*/file/out is not writable: "):
        await sink.preflight()
    with pytest.raises(SinkError, match=r"^cannot write "):
        await sink.put("a.json", b"1")
    assert await sink.list_keys("") == []  # nothing there is still an answer


async def test_local_abort_uploads_removes_stale_temp_files(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path))
    await sink.put("2024/a.json", b"1")
    stale = [f"2024/.b.json.0123456789ab{TMP_SUFFIX}", f"2025/.c.json.0123456789ab{TMP_SUFFIX}"]
    for rel in stale:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"half")
    assert await sink.list_keys("") == ["2024/a.json"]  # temp files are not keys
    assert await sink.abort_uploads("2024/b") == 1
    assert await sink.abort_uploads("2024/") == 0
    assert await sink.abort_uploads("") == 1
    assert _all_files(tmp_path) == ["2024/a.json"]
