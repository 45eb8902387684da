"""The TMDB ids a harvest holds, kept so that a refresh reads TMDB's changes instead of the whole input.

    _harvest/<tag>/ids-<writer>-<seq>.txt   per commit: "+<id>" harvested, "-<id>" removed (a line each)
    _harvest/<tag>/selection.bin            when the run completes: the whole harvest's ids, a bitmap

The per-commit records are part of the commit (committer.py), so they are exactly as durable as the data
they describe; a completing run folds its records into the selection of the run before it. The bitmap is
indexed by the id (one bit per id below the largest): TMDB's ~1.5 million ids take 190 KB, zlib makes it
smaller still, and membership and set differences cost no per-id objects, whatever the size of the input.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator

from ..errors import StateError
from .layout import run_dir
from .reads import in_order
from .sink import Sink
from .state import RunRef

MAGIC = b"HSEL1"
_NONZERO = re.compile(rb"[^\x00]")
READ_AHEAD = 8  # per-commit records read at once when a run completes
# Bytes per step of a whole-bitmap operation: whole-integer speed, with memory flat in the bitmap's size
# (the stand-in's ids reach 10^8, a 12.5 MB bitmap, and a 128 MB Lambda cannot hold a few copies).
BLOCK = 1 << 16
_ZEROS = bytes(BLOCK)


class Selection:
    """A set of non-negative ints as a growable bitmap."""

    __slots__ = ("_bits",)

    def __init__(self, bits: bytes | bytearray = b"") -> None:
        self._bits = bytearray(bits)

    def add(self, n: int) -> None:
        i = n >> 3
        while i >= len(self._bits):
            self._bits += _ZEROS  # a block at a time: no zeroed temporary as large as the growth
        self._bits[i] |= 1 << (n & 7)

    def discard(self, n: int) -> None:
        i = n >> 3
        if i < len(self._bits):
            self._bits[i] &= ~(1 << (n & 7)) & 0xFF

    def __contains__(self, n: int) -> bool:
        i = n >> 3
        return i < len(self._bits) and bool(self._bits[i] & (1 << (n & 7)))

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self._bits), BLOCK):
            yield from _ids_in(self._bits[start : start + BLOCK], start)

    def __len__(self) -> int:
        bits = self._bits
        return sum(
            int.from_bytes(bits[start : start + BLOCK], "little").bit_count()
            for start in range(0, len(bits), BLOCK)
        )

    def minus(self, other: Selection) -> Iterator[int]:
        """The ids here and not in `other`, ascending."""
        for start in range(0, len(self._bits), BLOCK):
            block = self._bits[start : start + BLOCK]
            mine = int.from_bytes(block, "little")
            theirs = int.from_bytes(other._bits[start : start + BLOCK], "little")
            if diff := mine & ~theirs:
                yield from _ids_in(diff.to_bytes(len(block), "little"), start)

    def to_bytes(self) -> bytes:
        # Straight from the buffer, no copy (see BLOCK); the spare capacity is zeros, nearly free to zlib.
        return MAGIC + zlib.compress(self._bits, 6)

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> Selection:
        if not raw.startswith(MAGIC):
            raise StateError(f"{where} is not a selection; run with --fresh")
        try:
            return cls(zlib.decompress(raw[len(MAGIC) :]))
        except zlib.error:
            raise StateError(f"{where} is corrupt; run with --fresh") from None


def _ids_in(bits: bytes | bytearray, offset: int) -> Iterator[int]:
    """The set bits' numbers, ascending, for a block that starts at byte `offset` of the bitmap. TMDB's
    ids are sparse in places: whole-integer operations and a C-level scan for non-zero bytes keep a 2 MB
    bitmap to milliseconds instead of a Python loop per byte."""
    for match in _NONZERO.finditer(bits):
        i = match.start()
        byte, base = bits[i], (offset + i) << 3
        for bit in range(8):
            if byte & (1 << bit):
                yield base + bit


def ids_record(harvested: Iterable[int], removed: Iterable[int]) -> bytes:
    return b"".join([*(b"+%d\n" % n for n in harvested), *(b"-%d\n" % n for n in removed)])


def apply_record(selection: Selection, raw: bytes) -> None:
    for line in raw.split(b"\n"):
        if line[:1] == b"+":
            selection.add(int(line[1:]))
        elif line[:1] == b"-":
            selection.discard(int(line[1:]))


def selection_key(run: RunRef) -> str:
    return f"{run_dir(run)}selection.bin"


async def load_selection(sink: Sink, run: RunRef) -> Selection | None:
    key = selection_key(run)
    raw = await sink.get(key)
    return None if raw is None else Selection.from_bytes(raw, f"{sink.url.rstrip('/')}/{key}")


async def fold_records(sink: Sink, selection: Selection, keys: list[str]) -> None:
    """Apply the per-commit records in commit order (a later commit may remove what an earlier added).

    A window of READ_AHEAD reads is in flight, applied in order as they arrive: a harvest of TMDB's
    whole export has ~15,000 records, and holding them all (with a task each) would not fit a small
    Lambda at the moment it completes."""

    async def fetch(key: str) -> bytes:
        raw = await sink.get(key)
        if raw is None:
            raise StateError(f"{sink.url.rstrip('/')}/{key} vanished; run with --fresh")
        return raw

    async def apply(_key: str, raw: bytes) -> bool:
        apply_record(selection, raw)
        return True

    await in_order(keys, fetch, apply, READ_AHEAD)
