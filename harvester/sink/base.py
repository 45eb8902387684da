"""What the pipeline needs from an output location, whatever it is (S3 or a local directory).

Keys are relative to the sink's root (the prefix of `sink.url`) and use '/' separators.
Every method raises `SinkError` (never a botocore/OS exception) with one line that names the location.
"""

from __future__ import annotations

from typing import Protocol

# Where everything but data goes (state, outcomes, spools, summaries, preflight probes): Spark, Glue
# and Athena skip paths starting with '_', so none of it is read as part of the table.
HARVEST_DIR = "_harvest"
MULTIPART_PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB for every part but the last


class Sink(Protocol):
    @property
    def url(self) -> str:
        """Where this sink writes, for messages (e.g. 's3://bucket/Raw/TMDB/JSON' or a path)."""
        ...

    async def preflight(self) -> None:
        """Prove the location exists and is writable (write then delete a probe), or raise SinkError."""
        ...

    async def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        """Store `data` under `key`, replacing atomically: a reader sees the old object or the new one.

        Small bodies go in one PUT; bodies of MULTIPART_PART_SIZE or more go as a multipart upload,
        retried part by part, and aborted (no orphaned parts) when it cannot complete.
        """
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """All keys that start with `prefix` (relative, sorted)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; no error when it does not exist."""
        ...

    async def abort_uploads(self, prefix: str) -> int:
        """Abort unfinished multipart uploads under `prefix` (left by a crash); return how many."""
        ...

    async def aclose(self) -> None: ...
