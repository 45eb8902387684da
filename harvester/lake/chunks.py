"""Encoding records into chunk objects. Pure: bytes in, bytes out; the sink does the I/O.

Records are TMDB's bodies as returned, kept as raw bytes and embedded verbatim: no parse and
re-serialise on the hot path (the lookup already validated them as JSON).
"""

from __future__ import annotations

import zlib

from ..config import Compression, OutputFormat

_EXTENSIONS = {"json": ".json", "jsonl": ".jsonl"}


def extension(fmt: OutputFormat, compression: Compression) -> str:
    return _EXTENSIONS[fmt] + (".gz" if compression == "gzip" else "")


def content_type(fmt: OutputFormat) -> str:
    return "application/json" if fmt == "json" else "application/x-ndjson"


class ChunkEncoder:
    """Serialises records as they arrive, into a JSON array or JSON Lines, optionally gzipped."""

    def __init__(self, fmt: OutputFormat, compression: Compression) -> None:
        self._jsonl = fmt == "jsonl"
        # wbits=31: a gzip container, so `gunzip` and Spark read the objects as they are.
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if compression == "gzip" else None
        self._parts: list[bytes] = []
        self.count = 0
        self.size = 0  # bytes encoded so far (compressed when gzipping)

    def _emit(self, data: bytes) -> None:
        if self._zip is not None:
            data = self._zip.compress(data)
        if data:
            self._parts.append(data)
            self.size += len(data)

    def add(self, record: bytes) -> None:
        if self._jsonl:
            if b"\n" in record:  # legal whitespace inside JSON, fatal to JSON Lines
                record = record.replace(b"\r", b"").replace(b"\n", b"")
            self._emit(record + b"\n")
        else:
            self._emit((b"[" if self.count == 0 else b",") + record)
        self.count += 1

    def finish(self) -> bytes:
        if not self._jsonl:
            self._emit(b"[]" if self.count == 0 else b"]")
        if self._zip is not None:
            tail = self._zip.flush()
            self._parts.append(tail)
            self.size += len(tail)
        data = b"".join(self._parts)
        self._parts = []
        return data
