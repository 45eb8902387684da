"""Encoding records into chunk objects. Pure: bytes in, bytes out; the sink does the I/O.

Records are TMDB's bodies as returned, kept as raw bytes and embedded verbatim: no parse and
re-serialise on the hot path (the lookup already validated them as JSON).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from ..config import Compression, OutputFormat

_EXTENSIONS = {"json": ".json", "jsonl": ".jsonl"}
MB = 1_000_000  # sink.max_object_mb's unit: the smaller reading of "MB", so either reader's limit holds
# After a sync flush the stream is byte-aligned and empty: finishing costs a final block holding at most
# the "]" (a fixed-Huffman block of 3 bytes, a stored one of 6) and the 8-byte gzip trailer.
GZIP_END = 16


def extension(fmt: OutputFormat, compression: Compression) -> str:
    return _EXTENSIONS[fmt] + (".gz" if compression == "gzip" else "")


def byte_limit(max_object_mb: float) -> int:
    """sink.max_object_mb in bytes, rounded down; 0 stays "no limit", any other limit is >= 1 byte."""
    return max(1, int(max_object_mb * MB)) if max_object_mb > 0 else 0


def content_type(fmt: OutputFormat) -> str:
    return "application/json" if fmt == "json" else "application/x-ndjson"


class ChunkEncoder:
    """Serialises records as they arrive, into a JSON array or JSON Lines, optionally gzipped, and keeps
    the finished object within `max_bytes` (0: no limit).

    With a limit, `size` must be exact at every record, which a compressor holding input back does not
    allow: each gzipped record then ends with a sync flush (everything given so far is in the output;
    about 0.3% larger for TV bodies), and is compressed on a copy of the compressor first, kept only if
    it fits. What the end adds after a sync flush (the "]", the final block, the 8-byte trailer) is at
    most GZIP_END bytes.
    """

    def __init__(self, fmt: OutputFormat, compression: Compression, max_bytes: int = 0) -> None:
        self._jsonl = fmt == "jsonl"
        # wbits=31: a gzip container, so `gunzip` and Spark read the objects as they are.
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if compression == "gzip" else None
        self._max_bytes = max_bytes
        self._end = GZIP_END if self._zip is not None else (0 if self._jsonl else 1)
        self._parts: list[bytes] = []
        self.count = 0
        self.size = 0  # bytes encoded so far (compressed when gzipping)

    def _emit(self, data: bytes) -> None:
        if self._zip is not None:
            data = self._zip.compress(data)
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self.size += len(data)

    def add(self, record: bytes, force: bool = False) -> bool:
        """Add `record`, unless the finished object would then be over `max_bytes`: then nothing changes
        and the answer is False (finish this object; the record starts the next). An empty object
        takes any record, so one bigger than the limit is an object of its own; `force` takes it
        whatever the limit (the rest of a group an empty object took, see `add_all`)."""
        if self._jsonl:
            if b"\n" in record:  # legal whitespace inside JSON, fatal to JSON Lines
                record = record.replace(b"\r", b"").replace(b"\n", b"")
            piece = record + b"\n"
        else:
            piece = (b"[" if self.count == 0 else b",") + record
        if not self._max_bytes:
            self._emit(piece)
        elif self._zip is None:
            if not (force or self._fits(len(piece))):
                return False
            self._keep(piece)
        else:
            trial = self._zip.copy()
            out = trial.compress(piece) + trial.flush(zlib.Z_SYNC_FLUSH)
            if not (force or self._fits(len(out))):
                return False
            self._zip = trial
            self._keep(out)
        self.count += 1
        return True

    def add_all(self, records: Sequence[bytes]) -> bool:
        """Add every record or none (the seasons of one series stay in one object); an empty object
        takes them all, whatever the limit."""
        if not self._max_bytes or not records:
            for record in records:
                self.add(record)
            return True
        empty, mark = self.count == 0, self.mark()
        for record in records:
            if not self.add(record, force=empty):
                self.restore(mark)
                return False
        return True

    def mark(self) -> tuple[Any, ...]:
        """Where the object stands now, for `restore` (a copy of the compressor when gzipping)."""
        return (len(self._parts), self.size, self.count, self._zip.copy() if self._zip else None)

    def restore(self, mark: tuple[Any, ...]) -> None:
        """Back to `mark`: what was added since is gone."""
        parts, self.size, self.count, zipper = mark
        del self._parts[parts:]
        if zipper is not None:
            self._zip = zipper

    def _fits(self, added: int) -> bool:
        return self.count == 0 or self.size + added + self._end <= self._max_bytes

    def finish(self) -> bytes:
        if not self._jsonl:
            self._emit(b"[]" if self.count == 0 else b"]")
        if self._zip is not None:
            self._keep(self._zip.flush())
        data = b"".join(self._parts)
        self._parts = []
        return data
