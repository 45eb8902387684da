"""Byte streams of the input file, from a local path or from S3, in blocks of about BLOCK_SIZE.

This is the I/O boundary of the source: every OS, botocore or aiohttp error is translated here into a
`SourceError` with one line that names the location, so nothing above sees another library's types.
CancelledError is a BaseException and passes through untouched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO, Protocol

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from ..config import SinkSettings, is_s3_url, parse_s3_url
from ..errors import SourceError

# Per-block costs vanish at this size (1 MiB measured no faster), and the parse of one block is the
# longest the loop waits for us: ~7 ms on a slow CPU, against ~16 ms for 1 MiB.
BLOCK_SIZE = 256 * 1024

# Few retries: a wrong endpoint or bucket should fail in seconds, not after botocore's long backoff.
# Module-level so tests can shorten it.
S3_CONFIG = AioConfig(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})

_S3_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)


class Reader(Protocol):
    """Where the bytes come from."""

    @property
    def name(self) -> str:
        """The location as the user wrote it, for messages."""
        ...

    async def identity(self) -> str:
        """A fingerprint that changes when the content does (path + size + mtime, or S3 ETag)."""
        ...

    def blocks(self) -> AsyncGenerator[bytes, None]:
        """The content, in order, as non-empty blocks. Close the iterator (aclosing) if you stop early."""
        ...


def open_reader(path: str, sink: SinkSettings) -> Reader:
    """The reader for `path`; an s3:// path uses the sink's endpoint and region."""
    if is_s3_url(path):
        return S3Reader(path, sink.endpoint_url, sink.region)
    return LocalReader(path)


class LocalReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._abspath = os.path.abspath(path)  # now: the fingerprint must not depend on a later chdir

    @property
    def name(self) -> str:
        return self._path

    async def identity(self) -> str:
        try:
            st = await asyncio.to_thread(os.stat, self._path)
        except OSError as exc:
            raise self._error(exc) from exc
        return f"{self._abspath}|size={st.st_size}|mtime_ns={st.st_mtime_ns}"

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


class S3Reader:
    def __init__(self, url: str, endpoint_url: str = "", region: str = "us-east-1") -> None:
        self._url = url
        self._bucket, self._key = parse_s3_url(url)
        self._endpoint_url = endpoint_url or None
        self._region = region

    @property
    def name(self) -> str:
        return self._url

    async def identity(self) -> str:
        try:
            async with self._client() as client:
                head = await client.head_object(Bucket=self._bucket, Key=self._key)
        except _S3_ERRORS as exc:
            raise self._error(exc) from exc
        etag = str(head.get("ETag", "")).strip('"')
        return f"s3://{self._bucket}/{self._key}|etag={etag}|size={head.get('ContentLength', '')}"

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        # The client lives inside the running loop and only as long as the iteration: aiobotocore
        # clients are bound to the loop that made them (Lambda warm starts run a new loop each time).
        try:
            async with self._client() as client:
                resp = await client.get_object(Bucket=self._bucket, Key=self._key)
                async with resp["Body"] as body:
                    while True:
                        block = await _read_block(body)
                        if not block:
                            return
                        yield block
        except _S3_ERRORS as exc:
            raise self._error(exc) from exc

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        session = get_session()
        async with session.create_client(
            "s3", endpoint_url=self._endpoint_url, region_name=self._region, config=S3_CONFIG
        ) as client:
            yield client

    def _error(self, exc: BaseException) -> SourceError:
        where = f"cannot read source {self._url}"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            reason = {
                "NoSuchKey": "no such key",
                "404": "no such bucket or key",  # HEAD has no body to say which
                "NotFound": "no such bucket or key",
                "NoSuchBucket": "no such bucket",
                "AccessDenied": "access denied",
                "403": "access denied",
                "Forbidden": "access denied",
            }.get(code, f"{code} {err.get('Message', '')}".strip())
            return SourceError(f"{where}: {reason}")
        if isinstance(exc, EndpointConnectionError):
            return SourceError(f"{where}: cannot reach the S3 endpoint {exc.kwargs.get('endpoint_url', '')}")
        if isinstance(exc, NoCredentialsError):
            return SourceError(f"{where}: no AWS credentials found")
        return SourceError(f"{where}: {exc.__class__.__name__}: {exc}")


async def _read_block(body: Any) -> bytes:
    """Up to BLOCK_SIZE bytes; b"" at the end. The network hands over whatever has arrived (often
    a few KiB), so gather it into blocks: the per-block costs above stay fixed per MiB."""
    parts: list[bytes] = []
    size = 0
    while size < BLOCK_SIZE:
        chunk: bytes = await body.read(BLOCK_SIZE - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
