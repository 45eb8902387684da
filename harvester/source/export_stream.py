"""One TMDB export file, streamed: HTTP body -> incremental gunzip -> JSON lines -> records.

This is the export's I/O boundary: aiohttp and zlib errors are translated here, once. A file that is
not there (HTTP 404, or 403 as CDNs answer for a missing key) is `ExportMissing`, for the caller to
fall back on; a body that is not a gzip of JSON lines, or a file whose ETag is not the one pinned, is a
`SourceError` (exit 2); a download that keeps failing (5xx, 429, resets, timeouts, a body cut short) is
`TmdbUnavailable` (exit 5) after MAX_ATTEMPTS tries in a row without progress. A download that
breaks in the middle starts over from the beginning and skips the records already delivered, so the
caller sees every record once, in file order.

A body is the whole file only when it ends where the file does (`short_of`), whatever HTTP said: as
many bytes as its Content-Length, when it has one, and a gzip stream that ends with a member's trailer
(zlib's eof: the member's CRC-32 and size read and checked). After a member only another whole member
may follow (RFC 1952 files may be concatenated, as `gzip -d` reads them; TMDB's have one); anything
else after it is not gzip (a SourceError). A body that ends short of either is a download cut short
(a proxy, a reset at the end, a chunked body whose gzip stops early): tried again like any broken
download, and `TmdbUnavailable` if it stays short. The check comes after the body's last record is
delivered, so a caller must not act on a file's records as a whole (what left a listing, the count of
a selection) before the generator has ended: it raises at the end of a short file.

Lines: blank (or whitespace-only) lines are skipped, not malformed; a TV line has no `adult` (read as
not adult); titles are not decoded, so any UTF-8 or \\u escape in them is only skipped over.

Memory stays flat whatever the file's size: a chunk of at most CHUNK_SIZE compressed bytes is
decompressed (about 6x as much text), cut at its last newline, and its complete lines are decoded at
once; nothing else is kept but the partial last line. No credential goes to the export host: the
session is a plain one of its own, not the TMDB client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp
import msgspec

from ..errors import SourceError, TmdbUnavailable
from ..tmdb.backoff import backoff_delay

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024  # compressed bytes taken from the socket at a time
MAX_LINE = 1024 * 1024  # an export line is ~100 bytes; a "line" this long means it is not an export
MAX_ATTEMPTS = 5  # tries in a row without a new record before the download is given up
RETRY_BASE_S = 0.5  # back-off base; module-level so tests can make it small
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0  # the longest silence between two reads of the body
MISSING_STATUS = frozenset({403, 404})  # CDNs answer 403 for a key that is not there
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ExportLine(msgspec.Struct):
    """What the harvester needs of a line (original_title / original_name are not decoded)."""

    id: int
    adult: bool | None = None
    popularity: float | None = None
    video: bool | None = None


class ExportMissing(Exception):
    """The file is not there (404/403): not published yet, or deleted after three months. Never reaches
    the user as such: the source falls back a day or says which file is missing (a SourceError)."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url}: HTTP {status}")
        self.url = url
        self.status = status


class _Transient(Exception):
    """A try that may work when repeated: the reason, for the log and the final message."""


class _LineTooLong(Exception):
    pass


@dataclass
class DownloadCounts:
    """What the downloads of one pass took in: compressed bytes and chunks, tries, records."""

    bytes: int = 0
    chunks: int = 0
    attempts: int = 0
    records: int = 0
    malformed: int = 0


@dataclass(frozen=True, slots=True)
class Head:
    """What the server says about a file before its body: its ETag, if any."""

    etag: str | None


# ---------------------------------------------------------------------------------------------
# Pure: gzip members and lines


class Gunzip:
    """Incremental gzip decoding; a file may hold several members one after another."""

    __slots__ = ("_d", "_inside", "_seen")

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self._inside = False  # in the middle of a member
        self._seen = False  # any byte at all

    def feed(self, data: bytes) -> bytes:
        """The text these bytes complete; raises zlib.error on bytes that are not gzip."""
        out = []
        while data:
            self._seen = self._inside = True
            out.append(self._d.decompress(data))
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = zlib.decompressobj(wbits=31)
            self._inside = False
        return b"".join(out)

    @property
    def complete(self) -> bool:
        """Whether what was fed ends at the end of a member (a body cut short does not)."""
        return self._seen and not self._inside


class LineBlocks:
    """Bytes -> blocks of complete lines (each block ends with a newline); the rest waits."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, text: bytes) -> bytes:
        data = self._rest + text if self._rest else text
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if len(self._rest) > MAX_LINE:
            raise _LineTooLong(f"a line longer than {MAX_LINE} bytes")
        return data[:cut]

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        return rest


_DECODER = msgspec.json.Decoder(ExportLine)


def decode_block(block: bytes, counts: DownloadCounts) -> list[ExportLine]:
    """The records of a block of lines; a line that is not a record is counted as malformed, a blank
    line is nothing (msgspec's decode_lines skips blank lines too)."""
    try:
        return _DECODER.decode_lines(block)
    except msgspec.DecodeError:
        pass
    found = []
    for line in block.splitlines():  # something in the block is wrong: find the line, keep the rest
        if not line.strip():
            continue
        try:
            found.append(_DECODER.decode(line))
        except msgspec.DecodeError:
            counts.malformed += 1
            if counts.malformed <= 5:
                log.warning("export: not a record: %r", line[:80])
    return found


def short_of(gunzip: Gunzip, received: int, length: int | None) -> str | None:
    """Why a body that has ended is not the whole file (a download cut short), or None if it is:
    fewer bytes than its Content-Length (`length`, None without one), or a gzip stream that stops
    before a member's trailer."""
    if length is not None and received != length:
        return f"the body ended after {received} of its {length} bytes"
    if not gunzip.complete:
        return "the body ended inside the gzip stream (no trailer)"
    return None


# ---------------------------------------------------------------------------------------------
# I/O


def _session() -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
    # auto_decompress off: the body is the .gz file itself, whatever Content-Encoding a CDN puts on it.
    return aiohttp.ClientSession(timeout=timeout, auto_decompress=False)


def _check(response: aiohttp.ClientResponse, url: str, etag: str | None) -> Head:
    status = response.status
    if status in MISSING_STATUS:
        raise ExportMissing(url, status)
    if status in RETRYABLE_STATUS:
        raise _Transient(f"HTTP {status}")
    if status != 200:
        raise SourceError(f"{url}: unexpected answer HTTP {status}")
    found = response.headers.get("ETag")
    if etag is not None and found is not None and found != etag:
        raise SourceError(
            f"{url} changed since this harvest started (ETag {found}, was {etag}); run with --fresh"
        )
    return Head(found)


_TRANSIENT = (aiohttp.ClientError, TimeoutError, _Transient)


def _reason(exc: BaseException) -> str:
    # aiohttp's messages may carry the URL; ours never carries a credential, but keep them short.
    return str(exc) if isinstance(exc, _Transient) else exc.__class__.__name__


async def head(url: str) -> Head:
    """Whether the file is there, and its ETag, without its body (HTTP HEAD).
    Raises ExportMissing, SourceError or TmdbUnavailable."""
    rng = random.Random()
    attempt = 0
    while True:
        try:
            async with _session() as session, session.head(url) as response:
                return _check(response, url, None)
        except _TRANSIENT as exc:
            attempt += 1
            if attempt >= MAX_ATTEMPTS:
                raise TmdbUnavailable(
                    f"export {url}: {_reason(exc)}, {attempt} tries in a row; run again later"
                ) from None
            log.warning("export %s: %s; trying again", url, _reason(exc))
            await asyncio.sleep(backoff_delay(attempt - 1, rng, base=RETRY_BASE_S))


async def blocks(
    url: str, etag: str | None, counts: DownloadCounts
) -> AsyncGenerator[list[ExportLine], None]:
    """Every record of the file, in order, once, in blocks (one a chunk read), however often the
    download has to start over. `etag`: the ETag pinned for this file (None: take whatever is there).
    """
    rng = random.Random()
    delivered = 0  # records yielded so far: a new try skips as many
    failures = 0
    async with _session() as session:
        while True:
            counts.attempts += 1
            seen = received = 0
            tally = DownloadCounts()  # this try's malformed lines: a try starts over, so the most any try saw
            try:
                async with session.get(url) as response:
                    _check(response, url, etag)
                    length = response.content_length
                    gunzip, lines = Gunzip(), LineBlocks()
                    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                        received += len(chunk)
                        counts.bytes += len(chunk)
                        counts.chunks += 1
                        block = decode_block(lines.feed(gunzip.feed(chunk)), tally)
                        counts.malformed = max(counts.malformed, tally.malformed)
                        seen += len(block)
                        if seen > delivered:
                            fresh = block[len(block) - (seen - delivered) :]
                            delivered, failures = seen, 0
                            counts.records += len(fresh)
                            yield fresh
                    reason = short_of(gunzip, received, length)
                    if reason is not None:
                        raise _Transient(reason)
                    block = decode_block(lines.finish(), tally)
                    counts.malformed = max(counts.malformed, tally.malformed)
                    seen += len(block)
                    if seen > delivered:
                        fresh = block[len(block) - (seen - delivered) :]
                        delivered = seen
                        counts.records += len(fresh)
                        yield fresh
                return
            except _TRANSIENT as exc:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise TmdbUnavailable(
                        f"export {url}: {_reason(exc)}, {failures} tries in a row; run again later"
                    ) from None
                log.warning("export %s: %s after %d records; starting over", url, _reason(exc), seen)
                await asyncio.sleep(backoff_delay(failures - 1, rng, base=RETRY_BASE_S))
            except zlib.error as exc:
                raise SourceError(f"{url} is not a gzip of JSON lines ({exc})") from None
            except _LineTooLong as exc:
                raise SourceError(f"{url} is not an export of JSON lines ({exc})") from None
