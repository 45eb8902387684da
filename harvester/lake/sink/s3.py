"""The S3 sink (AWS, or any S3-compatible endpoint) on aiobotocore.

This is the sink's I/O boundary: every botocore, aiohttp or OS error is translated here into a
`SinkError` with one line that names the s3:// location (a condition that does not hold into a
`PreconditionFailed`), so nothing above sees another library's types. CancelledError is a BaseException
and passes through untouched. Retries are botocore's alone (see harvester/aws.py): none are added here.

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

from botocore.exceptions import ClientError

from ... import aws
from ...config import SinkSettings, parse_s3_url
from ...errors import PreconditionFailed, SinkError
from .base import HARVEST_DIR, MULTIPART_PART_SIZE, Capabilities, Versioned

log = logging.getLogger(__name__)

T = TypeVar("T")

LIST_PAGE_SIZE = 1000  # S3's own maximum; module-level so tests can make pagination happen
ABORT_TIMEOUT_S = 30.0  # bounds how long a cancelled put keeps the loop busy cleaning up

# CRC32 is what botocore sends by default on a single PUT. A multipart upload must declare it when it is
# created and list every part's checksum when it completes, or S3 rejects the parts' checksums.
CHECKSUM_ALGORITHM = "CRC32"

# Never the ETag of the (empty) preflight probe, whose ETag is the MD5 of nothing.
_WRONG_ETAG = '"00000000000000000000000000000000"'


class S3Sink:
    """The Sink protocol over `s3://bucket/prefix`; keys are relative to the prefix."""

    def __init__(self, settings: SinkSettings, *, part_size: int = MULTIPART_PART_SIZE) -> None:
        if part_size < 1:
            raise ValueError(f"part_size must be >= 1, not {part_size}")
        self._bucket, self._prefix = parse_s3_url(settings.url)
        self._endpoint_url = settings.endpoint_url or None  # None: AWS's own endpoint for the region
        self._region = settings.region
        self._part_size = part_size
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()  # binds to a loop only when contended, i.e. inside the running one
        self._capabilities: Capabilities | None = None
        self._lists_uploads = True  # until preflight or a listing proves otherwise
        self._warned_no_listing = False

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    @property
    def capabilities(self) -> Capabilities | None:
        """What the last `preflight()` found; None before it ran."""
        return self._capabilities

    # -----------------------------------------------------------------------------------------
    # The protocol

    async def connect(self) -> None:
        with self._boundary("reach", ""):
            await self._get_client()

    async def preflight(self) -> Capabilities:
        """At most 7 requests: HEAD the bucket; 3 PUTs and 2 DELETEs of an empty probe key (create,
        create again, replace and delete with a wrong ETag: the last three must be refused); one
        ListMultipartUploads limited to the probe's key. A store without conditional writes stops
        after the first refusal that did not come."""
        with self._boundary("use", ""):
            client = await self._get_client()
            try:
                await client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                code = aws.error_code(exc)
                if code in ("404", "NoSuchBucket", "NotFound"):
                    raise SinkError(f"bucket {self._bucket} does not exist (sink {self.url})") from None
                if code in ("403", "AccessDenied", "Forbidden"):
                    raise SinkError(f"no access to bucket {self._bucket} (sink {self.url})") from None
                raise
        probe = f"{HARVEST_DIR}/preflight-{uuid.uuid4().hex}"
        full_key = self._full_key(probe)
        with self._boundary("write a probe to", probe):
            conditional = await self._probe_conditions(client, full_key)
        with self._boundary("delete the probe", probe):
            await client.delete_object(Bucket=self._bucket, Key=full_key)
        with self._boundary("list multipart uploads under", probe):
            try:
                await client.list_multipart_uploads(Bucket=self._bucket, Prefix=full_key, MaxUploads=1)
                lists_uploads = True
            except ClientError as exc:
                if not aws.is_not_implemented(exc):
                    raise
                lists_uploads = False
        self._capabilities = Capabilities(conditional_writes=conditional, list_uploads=lists_uploads)
        self._lists_uploads = lists_uploads
        log.debug("%s: %s", self.url, self._capabilities)
        return self._capabilities

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/json",
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        conditions = _conditions(if_match, if_none_match)
        multipart = len(data) >= self._part_size
        if multipart and if_match is not None:
            # CompleteMultipartUpload takes IfMatch on AWS, but moto ignores it there, so it could not
            # be tested; nothing written conditionally (state, lease) is anywhere near this size.
            raise ValueError(f"if_match is not supported on a multipart put ({len(data)} bytes)")
        try:
            with self._boundary("put", key), self._conditional("put", key, if_match, if_none_match):
                client = await self._get_client()
                full_key = self._object_key(key)
                if multipart:
                    etag = await self._put_multipart(client, full_key, data, content_type, conditions)
                else:
                    resp = await client.put_object(
                        Bucket=self._bucket, Key=full_key, Body=data, ContentType=content_type, **conditions
                    )
                    etag = resp["ETag"]
                return str(etag)
        except PreconditionFailed:
            # The answer to a write S3 applied can be lost (a reset); botocore (or aiohttp, on a reused
            # connection) then sends it again and the condition, checked against our own write, fails.
            # Every conditional body is unique to its writer (token, counts, expiry): finding our exact
            # bytes there means the write was ours.
            current = await self._get("get", key)
            if current is not None and current.data == data:
                return current.etag
            raise

    async def get(self, key: str) -> bytes | None:
        found = await self._get("get", key)
        return None if found is None else found.data

    async def get_versioned(self, key: str) -> Versioned | None:
        return await self._get("get", key)

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

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        with self._boundary("delete", key), self._conditional("delete", key, if_match, False):
            client = await self._get_client()
            # S3 answers 204 for a key that does not exist, which is the "no error" the protocol asks;
            # with IfMatch it answers 404, a condition that does not hold.
            await client.delete_object(
                Bucket=self._bucket, Key=self._object_key(key), **_conditions(if_match, False)
            )

    async def abort_uploads(self, prefix: str) -> int:
        aborted = 0
        with self._boundary("abort uploads under", prefix):
            client = await self._get_client()
            for full_key, upload_id in await self._uploads(client, prefix):
                try:
                    await client.abort_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id)
                except ClientError as exc:
                    if aws.error_code(exc) == "NoSuchUpload":  # finished or aborted since the listing
                        continue
                    raise
                aborted += 1
        if aborted:
            log.info("aborted %d unfinished multipart upload(s) under %s", aborted, self._location(prefix))
        return aborted

    async def list_uploads(self, prefix: str) -> list[str]:
        with self._boundary("list uploads under", prefix):
            client = await self._get_client()
            uploads = await self._uploads(client, prefix)
        root = len(self._full_key(""))
        return sorted(full_key[root:] for full_key, _ in uploads)

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with self._boundary("close the client for", ""):
                await stack.aclose()

    # -----------------------------------------------------------------------------------------
    # Preflight probes

    async def _probe_conditions(self, client: Any, full_key: str) -> bool:
        """Whether the store refuses writes whose condition does not hold; leaves the probe written."""
        put: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": full_key,
            "Body": b"",
            "ContentType": "text/plain",
        }
        try:
            await client.put_object(**put, IfNoneMatch="*")
        except ClientError as exc:
            if not _refuses_the_header(exc):
                raise
            await client.put_object(**put)  # still prove the location writable
            return False
        return (
            await _is_refused(client.put_object(**put, IfNoneMatch="*"))
            and await _is_refused(client.put_object(**put, IfMatch=_WRONG_ETAG))
            and await _is_refused(
                client.delete_object(Bucket=self._bucket, Key=full_key, IfMatch=_WRONG_ETAG)
            )
        )

    async def _uploads(self, client: Any, prefix: str) -> list[tuple[str, str]]:
        """(full key, upload id) of the unfinished multipart uploads under `prefix`; none from a store
        that cannot list them."""
        if not self._lists_uploads:
            self._cannot_list_uploads()
            return []
        uploads: list[tuple[str, str]] = []
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket,
            Prefix=self._full_key("") + prefix,
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        try:
            async for page in pages:
                uploads.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
        except ClientError as exc:
            if not aws.is_not_implemented(exc):
                raise
            self._lists_uploads = False
            self._cannot_list_uploads()
            return []
        return uploads

    def _cannot_list_uploads(self) -> None:
        if not self._warned_no_listing:
            self._warned_no_listing = True
            log.warning(
                "%s cannot list unfinished multipart uploads, so those left by a crash are not aborted; "
                "add an AbortIncompleteMultipartUpload lifecycle rule to the bucket",
                self.url,
            )

    # -----------------------------------------------------------------------------------------
    # Multipart

    async def _put_multipart(
        self, client: Any, full_key: str, data: bytes, content_type: str, conditions: dict[str, str]
    ) -> str:
        created = await client.create_multipart_upload(
            Bucket=self._bucket, Key=full_key, ContentType=content_type, ChecksumAlgorithm=CHECKSUM_ALGORITHM
        )
        upload_id: str = created["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            for number, start in enumerate(range(0, len(data), self._part_size), start=1):
                body = data[start : start + self._part_size]
                parts.append(await self._upload_part(client, full_key, upload_id, number, body))
            # The condition is checked at completion: until then the key is untouched.
            done = await client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **conditions,
            )
        except BaseException:
            # Aborting is what keeps failed or cancelled puts from leaving parts that are billed forever;
            # the original error (or the cancellation) is what the caller hears about.
            await _uncancellable(self._abort_quietly(client, full_key, upload_id))
            raise
        return str(done["ETag"])

    async def _upload_part(
        self, client: Any, full_key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        resp = await client.upload_part(
            Bucket=self._bucket,
            Key=full_key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": resp["ETag"]}
        if "ChecksumCRC32" in resp:  # S3-compatible stores may not echo it; AWS always does
            part["ChecksumCRC32"] = resp["ChecksumCRC32"]
        return part

    async def _abort_quietly(self, client: Any, full_key: str, upload_id: str) -> None:
        try:
            async with asyncio.timeout(ABORT_TIMEOUT_S):
                await client.abort_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id)
        except aws.ERRORS as exc:  # TimeoutError is an OSError
            # Not raised: it would hide why the put failed. abort_uploads() at the next start cleans up.
            log.warning(
                "could not abort multipart upload %s of s3://%s/%s: %s",
                upload_id, self._bucket, full_key, aws.describe(exc, self._endpoint()),
            )  # fmt: skip

    # -----------------------------------------------------------------------------------------
    # Helpers

    async def _get(self, action: str, key: str) -> Versioned | None:
        with self._boundary(action, key):
            client = await self._get_client()
            # botocore retries a GET that fails before its answer, not one whose body breaks on the way
            # (nor the body of its error answer): that is retried here, as often as botocore would.
            for attempt in range(1, aws.MAX_ATTEMPTS + 1):
                try:
                    return await self._get_once(client, key)
                except aws.ERRORS as exc:
                    if attempt == aws.MAX_ATTEMPTS or not aws.is_transient(exc):
                        raise
                    log.debug(
                        "get of %s broke (%s); reading it again", self._location(key), aws.describe(exc)
                    )
            raise AssertionError("unreachable: the last attempt returns or raises")

    async def _get_once(self, client: Any, key: str) -> Versioned | None:
        try:
            resp = await client.get_object(Bucket=self._bucket, Key=self._object_key(key))
        except ClientError as exc:
            if aws.is_missing(exc):
                return None
            raise
        async with resp["Body"] as body:  # releases the connection even if the read fails
            data: bytes = await body.read()
        return Versioned(data=data, etag=str(resp["ETag"]))

    async def _get_client(self) -> Any:
        if self._client is None:
            async with self._lock:  # two first users at once must not build two clients
                if self._client is None:
                    stack = AsyncExitStack()
                    try:
                        self._client = await stack.enter_async_context(
                            aws.s3_client(self._endpoint_url, self._region)
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

    def _endpoint(self) -> str:
        return aws.endpoint_name(self._endpoint_url, self._region)

    @contextmanager
    def _boundary(self, action: str, key: str) -> Iterator[None]:
        """Translate a lower layer's error into one SinkError line naming the location."""
        try:
            yield
        except aws.ERRORS as exc:
            raise SinkError(
                f"cannot {action} {self._location(key)}: {aws.describe(exc, self._endpoint())}"
            ) from exc

    @contextmanager
    def _conditional(
        self, action: str, key: str, if_match: str | None, if_none_match: bool
    ) -> Iterator[None]:
        """Turn a condition that did not hold into PreconditionFailed (inside `_boundary`)."""
        try:
            yield
        except ClientError as exc:
            if if_match is None and not if_none_match:
                raise
            if aws.error_code(exc) == "ConditionalRequestConflict":
                why = "another conditional write to it was in progress"
            elif aws.is_precondition_failed(exc):
                why = "it exists already" if if_none_match else f"its ETag is no longer {if_match}"
            elif if_match is not None and aws.is_missing(exc):
                why = f"it no longer exists (expected ETag {if_match})"
            else:
                raise
            raise PreconditionFailed(f"cannot {action} {self._location(key)}: {why}") from exc


def _conditions(if_match: str | None, if_none_match: bool) -> dict[str, str]:
    """The request parameters for the protocol's conditions."""
    if if_match is not None and if_none_match:
        raise ValueError("if_match and if_none_match exclude each other")
    if if_none_match:
        return {"IfNoneMatch": "*"}
    return {} if if_match is None else {"IfMatch": if_match}


def _refuses_the_header(exc: ClientError) -> bool:
    """A store that rejects a conditional header outright (rather than judging the condition)."""
    return aws.is_not_implemented(exc) or aws.http_status(exc) == 400


async def _is_refused(request: Awaitable[Any]) -> bool:
    """Whether a write whose condition does not hold was refused as it must be."""
    try:
        await request
    except ClientError as exc:
        if aws.is_precondition_failed(exc):
            return True
        if _refuses_the_header(exc):
            return False
        raise
    return False


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
