"""What the pipeline needs from an output location, whatever it is (S3 or a local directory).

Keys are relative to the sink's root (the prefix of `sink.url`) and use '/' separators.
Every method raises `SinkError` (never a botocore/OS exception) with one line that names the location.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Where everything but data goes (state, outcomes, spools, summaries, preflight probes): Spark, Glue
# and Athena skip paths starting with '_', so none of it is read as part of the table.
HARVEST_DIR = "_harvest"
MULTIPART_PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store proved it does, found by `preflight()` (S3-compatible stores vary)."""

    conditional_writes: bool  # if_match / if_none_match honoured: a failed condition is refused
    list_uploads: bool  # unfinished multipart uploads can be listed (and so aborted after a crash)


@dataclass(frozen=True, slots=True)
class Versioned:
    data: bytes
    etag: str  # opaque: pass it back as `if_match` as it is


class Sink(Protocol):
    @property
    def url(self) -> str:
        """Where this sink writes, for messages (e.g. 's3://bucket/Raw/TMDB/JSON' or a path)."""
        ...

    async def connect(self) -> None:
        """Build what the sink talks through, writing nothing. Done before TMDB's first request: a
        botocore client costs seconds of CPU on a small Lambda, which would otherwise fall inside the
        paced stretch of requests."""
        ...

    async def preflight(self) -> Capabilities:
        """Prove the location exists and is writable (write then delete a probe), and find what the
        store supports; raise SinkError when it is unusable."""
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/json",
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Store `data` under `key`, replacing atomically: a reader sees the old object or the new one.
        Returns the new object's ETag.

        `if_none_match`: only if no object has the key; `if_match`: only if the object's ETag is that
        one. A condition that does not hold raises PreconditionFailed and changes nothing.
        Small bodies go in one PUT; bodies of MULTIPART_PART_SIZE or more go as a multipart upload,
        aborted (no orphaned parts) when it cannot complete.
        """
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def get_versioned(self, key: str) -> Versioned | None:
        """The object's bytes and ETag, or None when there is no such key."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """All keys that start with `prefix` (relative, sorted)."""
        ...

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove `key`; no error when it does not exist. With `if_match`, only if the object's ETag
        is that one (PreconditionFailed otherwise)."""
        ...

    async def abort_uploads(self, prefix: str) -> int:
        """Abort unfinished multipart uploads under `prefix` (left by a crash); return how many.
        A store that cannot list uploads returns 0 (and says so once, in a warning)."""
        ...

    async def list_uploads(self, prefix: str) -> list[str]:
        """The keys of unfinished uploads under `prefix` (relative, sorted), changing nothing: S3's
        open multipart uploads, a directory's temp files. A store that cannot list uploads returns
        [] (and says so once, in a warning)."""
        ...

    async def aclose(self) -> None: ...
