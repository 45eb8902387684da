"""Byte streams of the input file, from a local path or from S3, in blocks of about BLOCK_SIZE.

This is the I/O boundary of the source: every OS, botocore or aiohttp error is translated here into a
`SourceError` (the input is missing, denied, or changed: a person must look) or an `InputUnavailable`
(S3 could not be reached or kept failing: try again later), with one line that names the location, so
nothing above sees another library's types. CancelledError is a BaseException and passes through
untouched.

An S3 input is read in ranged GETs pinned to the ETag its identity recorded (If-Match on each), so a
harvest reads one version of the object from start to end, however long it runs: an object replaced
meanwhile is refused, never mixed. A connection that breaks in the middle of a range is resumed at
the byte reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from botocore.exceptions import ClientError

from .. import aws
from ..config import SinkSettings, is_s3_url, parse_s3_url
from ..errors import InputUnavailable, SourceError

log = logging.getLogger(__name__)

# Per-block costs vanish at this size (1 MiB measured no faster), and the parse of one block is the
# longest the loop waits for us: ~7 ms on a slow CPU, against ~16 ms for 1 MiB.
BLOCK_SIZE = 256 * 1024

# One GET per range: a broken connection costs at most the rest of one range, and no response stays
# open for the whole object. Module-level so tests can make ranges small.
RANGE_SIZE = 8 * 1024 * 1024
# A body that breaks this many times in a row without delivering a byte is given up on. The GETs
# themselves are retried by botocore (harvester/aws.py); this only resumes what it cannot: a body.
MAX_STALLED_READS = 5

HASH_READ_SIZE = 1024 * 1024


class Reader(Protocol):
    """Where the bytes come from."""

    @property
    def name(self) -> str:
        """The location as the user wrote it, for messages."""
        ...

    async def identity(self) -> str:
        """A fingerprint that changes when the content does (size + SHA-256, or S3 ETag + size)."""
        ...

    def blocks(self) -> AsyncGenerator[bytes, None]:
        """The content, in order, as non-empty blocks. Close the iterator (aclosing) if you stop early."""
        ...


def open_reader(path: str, sink: SinkSettings) -> Reader:
    """The reader for `path`; an s3:// path uses the sink's endpoint and region."""
    if is_s3_url(path):
        return S3Reader(path, sink.endpoint_url, sink.region)
    return LocalReader(path)


# ---------------------------------------------------------------------------------------------
# Local


class LocalReader:
    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def name(self) -> str:
        return self._path

    async def identity(self) -> str:
        """By content alone, so the same file copied to another machine (or path) resumes there."""
        stop = threading.Event()
        try:
            size, digest = await asyncio.to_thread(_sha256_of_file, self._path, stop)
        except OSError as exc:
            raise self._error(exc) from exc
        finally:
            stop.set()  # a cancelled await leaves the thread running: tell it to stop reading
        return f"size={size}|sha256={digest}"

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        # Reads go through a worker thread: a block read is well under 1 ms from the page cache but can take
        # far longer from a cold or network disk, and the loop has rate-limited requests to serve.
        try:
            f: BinaryIO = await asyncio.to_thread(open, self._path, "rb")
        except OSError as exc:
            raise self._error(exc) from exc
        try:
            while True:
                try:
                    block = await asyncio.to_thread(f.read, BLOCK_SIZE)
                except OSError as exc:
                    raise self._error(exc) from exc
                if not block:
                    return
                yield block
        finally:
            # A buffered file's close() takes its lock, so a read still running in the thread after a
            # cancellation finishes before the descriptor goes away.
            f.close()

    def _error(self, exc: OSError) -> SourceError:
        reason = {
            FileNotFoundError: "no such file",
            IsADirectoryError: "is a directory",
            PermissionError: "permission denied",
        }.get(type(exc), exc.strerror or exc.__class__.__name__)
        return SourceError(f"cannot read source {self._path}: {reason}")


def _sha256_of_file(path: str, stop: threading.Event) -> tuple[int, str]:
    """(size, hex SHA-256), streamed: memory stays flat whatever the file's size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while not stop.is_set():
            chunk = f.read(HASH_READ_SIZE)
            if not chunk:
                return size, h.hexdigest()
            h.update(chunk)  # releases the GIL for large buffers: the loop keeps running
            size += len(chunk)
    raise OSError("cancelled")  # only a cancelled caller sets `stop`, and it no longer listens


# ---------------------------------------------------------------------------------------------
# S3


@dataclass(frozen=True, slots=True)
class _Version:
    """The object version a reader reads: its ETag (as S3 sends it, quotes included) and size."""

    etag: str
    size: int


class S3Reader:
    def __init__(self, url: str, endpoint_url: str = "", region: str = "us-east-1") -> None:
        self._url = url
        self._bucket, self._key = parse_s3_url(url)
        self._endpoint_url = endpoint_url or None
        self._region = region
        self._pinned: _Version | None = None  # set by the first HEAD; every read is pinned to it

    @property
    def name(self) -> str:
        return self._url

    async def identity(self) -> str:
        try:
            async with aws.s3_client(self._endpoint_url, self._region) as client:
                version = await self._head(client)
        except aws.ERRORS as exc:
            raise self._error(exc) from exc
        etag = version.etag.strip('"')
        return f"s3://{self._bucket}/{self._key}|etag={etag}|size={version.size}"

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        # The client lives inside the running loop and only as long as the iteration: aiobotocore
        # clients are bound to the loop that made them (Lambda warm starts run a new loop each time).
        try:
            async with aws.s3_client(self._endpoint_url, self._region) as client:
                version = self._pinned or await self._head(client)
                stream = _PinnedStream(client, self._bucket, self._key, version, self._url)
                try:
                    while block := await stream.read(BLOCK_SIZE):
                        yield block
                finally:
                    await stream.aclose()
        except aws.ERRORS as exc:
            raise self._error(exc) from exc

    async def _head(self, client: Any) -> _Version:
        try:
            head = await client.head_object(Bucket=self._bucket, Key=self._key)
        except ClientError as exc:
            if not aws.is_missing(exc):
                raise
            missing = await self._which_is_missing(client)
            raise SourceError(f"cannot read source {self._url}: {missing}") from exc
        version = _Version(etag=str(head["ETag"]), size=int(head["ContentLength"]))
        if self._pinned is None:
            self._pinned = version
        elif version.etag != self._pinned.etag:
            raise _changed(self._url, self._pinned.etag)
        return version

    async def _which_is_missing(self, client: Any) -> str:
        """A HEAD's 404 has no body to say whether the bucket or the key is missing: ask the bucket."""
        try:
            await client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            return "no such bucket" if aws.is_missing(exc) else "no such bucket or key"
        return "no such key"

    def _error(self, exc: BaseException) -> SourceError | InputUnavailable:
        where = f"cannot read source {self._url}"
        if aws.is_precondition_failed(exc):
            return _changed(self._url, self._pinned.etag if self._pinned else "?")
        reason = aws.describe(exc, aws.endpoint_name(self._endpoint_url, self._region))
        if aws.is_transient(exc):
            return InputUnavailable(f"{where}: {reason}")
        return SourceError(f"{where}: {reason}")


class _PinnedStream:
    """The bytes of one object version, from ranged GETs (If-Match), resumed where a body broke."""

    def __init__(self, client: Any, bucket: str, key: str, version: _Version, url: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._version = version
        self._url = url
        self._offset = 0  # bytes delivered so far: where the next range starts
        self._body: Any = None
        self._body_bytes = 0  # delivered by the open body
        self._stalled = 0  # bodies in a row that broke without delivering a byte

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes (fewer at the end of a range or where a body broke); b"" at the end."""
        parts: list[bytes] = []
        got = 0
        while got < size and self._offset < self._version.size:
            if self._body is None:
                if parts:
                    break  # hand over what we have before opening the next range
                await self._open()
            try:
                chunk: bytes = await self._body.read(size - got)
            except aws.ERRORS as exc:
                if not aws.is_transient(exc):
                    raise
                await self._broken(aws.describe(exc))
                continue
            if not chunk:  # the end of this range's body
                if self._body_bytes == 0:
                    await self._broken("an empty response body")
                else:
                    await self._close_body()
                continue
            parts.append(chunk)
            got += len(chunk)
            self._offset += len(chunk)
            self._body_bytes += len(chunk)
            self._stalled = 0
        return b"".join(parts)

    async def aclose(self) -> None:
        await self._close_body()

    async def _open(self) -> None:
        start = self._offset
        end = min(start + RANGE_SIZE, self._version.size) - 1
        resp = await self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end}", IfMatch=self._version.etag
        )
        self._body, self._body_bytes = resp["Body"], 0
        if str(resp["ETag"]) != self._version.etag:  # a store that ignores If-Match
            await self._close_body()
            raise _changed(self._url, self._version.etag)

    async def _broken(self, why: str) -> None:
        await self._close_body()
        self._stalled += 1
        if self._stalled >= MAX_STALLED_READS:
            raise InputUnavailable(
                f"cannot read source {self._url}: the connection broke {self._stalled} times in a row "
                f"at byte {self._offset} of {self._version.size} ({why})"
            )
        log.info("reading %s: %s at byte %d; resuming there", self._url, why, self._offset)

    async def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            await body.aclose()


def _changed(url: str, etag: str) -> SourceError:
    return SourceError(
        f"cannot read source {url}: input changed since this harvest started (it is no longer ETag {etag}); "
        "start over with --fresh, or restore that version"
    )
