"""The S3 sink (AWS, or any S3-compatible endpoint) on aiobotocore.

This is the sink's I/O boundary: every botocore, aiohttp or OS error is translated here into a
`SinkError` with one line that names the s3:// location, so nothing above sees another library's
types. CancelledError is a BaseException and passes through untouched.

The client is created on first use, inside the running loop, and lives until `aclose()`: aiobotocore
clients are bound to the loop that made them, and a Lambda warm start reuses this module with a new loop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeVar

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..config import SinkSettings, parse_s3_url
from ..errors import SinkError
from .base import HARVEST_DIR, MULTIPART_PART_SIZE

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 4  # per request, first try included; botocore's standard mode backs off with jitter
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0  # a part of 8 MiB must be written and answered within this
MAX_POOL_CONNECTIONS = 16

# A part that still fails after botocore's retries is tried again as a whole (a fresh request with a
# fresh connection), so one bad moment does not throw away the parts already uploaded. Module-level so
# tests can shorten the delays.
PART_ATTEMPTS = 3
PART_RETRY_DELAYS_S: tuple[float, ...] = (1.0, 4.0)

LIST_PAGE_SIZE = 1000  # S3's own maximum; module-level so tests can make pagination happen
ABORT_TIMEOUT_S = 30.0  # bounds how long a cancelled put keeps the loop busy cleaning up

# CRC32 is what botocore sends by default on a single PUT. A multipart upload must declare it when it is
# created and list every part's checksum when it completes, or S3 rejects the parts' checksums.
CHECKSUM_ALGORITHM = "CRC32"

_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)
_TRANSIENT_CODES = frozenset({"RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable"})


class S3Sink:
    """The Sink protocol over `s3://bucket/prefix`; keys are relative to the prefix."""

    def __init__(
        self,
        settings: SinkSettings,
        *,
        part_size: int = MULTIPART_PART_SIZE,
        max_attempts: int = MAX_ATTEMPTS,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        if part_size < 1:
            raise ValueError(f"part_size must be >= 1, not {part_size}")
        self._bucket, self._prefix = parse_s3_url(settings.url)
        self._endpoint_url = settings.endpoint_url or None  # None: AWS's own endpoint for the region
        self._region = settings.region
        self._part_size = part_size
        self._config = AioConfig(
            # total_max_attempts counts the first try; botocore's "max_attempts" would count only retries.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()  # binds to a loop only when contended, i.e. inside the running one

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    # -----------------------------------------------------------------------------------------
    # The protocol

    async def preflight(self) -> None:
        with self._boundary("use", ""):
            client = await self._get_client()
            try:
                await client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                code = _code(exc)
                if code in ("404", "NoSuchBucket", "NotFound"):
                    raise SinkError(f"bucket {self._bucket} does not exist (sink {self.url})") from None
                if code in ("403", "AccessDenied", "Forbidden"):
                    raise SinkError(f"no access to bucket {self._bucket} (sink {self.url})") from None
                raise
        probe = f"{HARVEST_DIR}/preflight-{uuid.uuid4().hex}"
        with self._boundary("write a probe to", probe):
            await client.put_object(
                Bucket=self._bucket, Key=self._full_key(probe), Body=b"", ContentType="text/plain"
            )
        with self._boundary("delete the probe", probe):
            await client.delete_object(Bucket=self._bucket, Key=self._full_key(probe))

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        with self._boundary("put", key):
            client = await self._get_client()
            full_key = self._object_key(key)
            if len(data) < self._part_size:
                await client.put_object(
                    Bucket=self._bucket, Key=full_key, Body=data, ContentType=content_type
                )
            else:
                await self._put_multipart(client, full_key, data, content_type)

    async def get(self, key: str) -> bytes | None:
        with self._boundary("get", key):
            client = await self._get_client()
            try:
                resp = await client.get_object(Bucket=self._bucket, Key=self._object_key(key))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            async with resp["Body"] as body:  # releases the connection even if the read fails
                data: bytes = await body.read()
            return data

    async def list_keys(self, prefix: str) -> list[str]:
        with self._boundary("list", prefix):
            client = await self._get_client()
            root = self._full_key("")
            keys: list[str] = []
            paginator = client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self._bucket, Prefix=root + prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
            )
            async for page in pages:
                keys.extend(item["Key"][len(root) :] for item in page.get("Contents", []))
        return sorted(keys)

    async def delete(self, key: str) -> None:
        with self._boundary("delete", key):
            client = await self._get_client()
            # S3 answers 204 for a key that does not exist, which is the "no error" the protocol asks.
            await client.delete_object(Bucket=self._bucket, Key=self._object_key(key))

    async def abort_uploads(self, prefix: str) -> int:
        aborted = 0
        with self._boundary("abort uploads under", prefix):
            client = await self._get_client()
            paginator = client.get_paginator("list_multipart_uploads")
            uploads: list[tuple[str, str]] = []
            pages = paginator.paginate(
                Bucket=self._bucket,
                Prefix=self._full_key("") + prefix,
                PaginationConfig={"PageSize": LIST_PAGE_SIZE},
            )
            async for page in pages:
                uploads.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
            for full_key, upload_id in uploads:
                try:
                    await client.abort_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id)
                except ClientError as exc:
                    if _code(exc) == "NoSuchUpload":  # finished or aborted since the listing
                        continue
                    raise
                aborted += 1
        if aborted:
            log.info("aborted %d unfinished multipart upload(s) under %s", aborted, self._location(prefix))
        return aborted

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with self._boundary("close the client for", ""):
                await stack.aclose()

    # -----------------------------------------------------------------------------------------
    # Multipart

    async def _put_multipart(self, client: Any, full_key: str, data: bytes, content_type: str) -> None:
        created = await client.create_multipart_upload(
            Bucket=self._bucket, Key=full_key, ContentType=content_type, ChecksumAlgorithm=CHECKSUM_ALGORITHM
        )
        upload_id: str = created["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            for number, start in enumerate(range(0, len(data), self._part_size), start=1):
                body = data[start : start + self._part_size]
                parts.append(await self._upload_part(client, full_key, upload_id, number, body))
            await client.complete_multipart_upload(
                Bucket=self._bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Aborting is what keeps failed or cancelled puts from leaving parts that are billed forever;
            # the original error (or the cancellation) is what the caller hears about.
            await _uncancellable(self._abort_quietly(client, full_key, upload_id))
            raise

    async def _upload_part(
        self, client: Any, full_key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                resp = await client.upload_part(
                    Bucket=self._bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                )
            except _ERRORS as exc:
                if attempt == PART_ATTEMPTS or not _is_transient(exc):
                    raise
                delay = PART_RETRY_DELAYS_S[min(attempt, len(PART_RETRY_DELAYS_S)) - 1]
                log.warning(
                    "part %d of s3://%s/%s failed (%s); retrying in %.1f s",
                    number, self._bucket, full_key, _describe(exc), delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            part: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
            if "ChecksumCRC32" in resp:  # S3-compatible stores may not echo it; AWS always does
                part["ChecksumCRC32"] = resp["ChecksumCRC32"]
            return part
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _abort_quietly(self, client: Any, full_key: str, upload_id: str) -> None:
        try:
            async with asyncio.timeout(ABORT_TIMEOUT_S):
                await client.abort_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id)
        except (*_ERRORS, TimeoutError) as exc:
            # Not raised: it would hide why the put failed. abort_uploads() at the next start cleans up.
            log.warning(
                "could not abort multipart upload %s of s3://%s/%s: %s",
                upload_id, self._bucket, full_key, _describe(exc),
            )  # fmt: skip

    # -----------------------------------------------------------------------------------------
    # Helpers

    async def _get_client(self) -> Any:
        if self._client is None:
            async with self._lock:  # two first users at once must not build two clients
                if self._client is None:
                    stack = AsyncExitStack()
                    try:
                        self._client = await stack.enter_async_context(
                            get_session().create_client(
                                "s3",
                                endpoint_url=self._endpoint_url,
                                region_name=self._region,
                                config=self._config,
                            )
                        )
                    except BaseException:
                        await stack.aclose()
                        raise
                    self._stack = stack
        return self._client

    def _full_key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    def _object_key(self, key: str) -> str:
        """The full key of an object, refusing the keys LocalSink refuses, so both sinks agree."""
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise SinkError(f"invalid key {key!r} for {self.url}: must be a relative path inside it")
        return self._full_key(key)

    def _location(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._full_key(key)}" if key else self.url

    @contextmanager
    def _boundary(self, action: str, key: str) -> Iterator[None]:
        """Translate a lower layer's error into one SinkError line naming the location."""
        try:
            yield
        except _ERRORS as exc:
            endpoint = self._endpoint_url or f"AWS S3 in {self._region}"
            raise SinkError(f"cannot {action} {self._location(key)}: {_describe(exc, endpoint)}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _code(exc) in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
    # Connection resets, timeouts and broken bodies; a credential or parameter error is not transient.
    return isinstance(exc, (BotoConnectionError, HTTPClientError, aiohttp.ClientError, OSError))


def _describe(exc: BaseException, endpoint: str = "the S3 endpoint") -> str:
    """The cause in a few words, for the end of a one-line message."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = _code(exc), str(err.get("Message", "")).strip()
        if code in ("403", "AccessDenied", "Forbidden"):
            return f"access denied{f' ({message})' if message and message != 'Forbidden' else ''}"
        return f"{code}: {message}" if message else code
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)"
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
        return f"cannot connect to {endpoint}"
    if isinstance(exc, ConnectionClosedError):
        return f"the connection to {endpoint} closed before S3 answered"
    if isinstance(exc, ReadTimeoutError):
        return "S3 did not answer in time"
    return f"{exc.__class__.__name__}: {exc}"


async def _uncancellable(aw: Awaitable[T]) -> T:
    """Run `aw` to the end even if the caller is cancelled meanwhile, then re-raise the cancellation.

    A bare `asyncio.shield` only protects the inner task: the awaiting code would still move on (and a
    closing loop could drop the task). Waiting it out keeps the cleanup ordered before the cancellation.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise  # the task itself was cancelled, not us
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
