"""Deterministic values drawn from hashes: the source of everything the catalogue makes up.

A keyed BLAKE2b hash (never Python's randomised `hash()`), so the same key gives the same value in
every process.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

HASH_PERSON = b"tmdb-standin"  # BLAKE2b personalisation: our hashes differ from any other use


def digest(key: str, size: int = 8) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=size, person=HASH_PERSON).digest()


class HashDraws:
    """Successive small choices taken from one hash (up to 512 bits): cheaper than seeding a Random."""

    __slots__ = ("_v",)

    def __init__(self, seed: bytes) -> None:
        self._v = int.from_bytes(seed, "big")

    @classmethod
    def of(cls, key: str) -> HashDraws:
        return cls(digest(key, 64))

    def below(self, n: int) -> int:
        self._v, r = divmod(self._v, n)
        return r

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def unit(self) -> float:
        return self.below(1_000_000) / 1_000_000


_B64_TO_ALNUM = bytes.maketrans(b"-_", b"xQ")


def image_path(key: str, seed: bytes = b"") -> str:
    """A TMDB-style image path ('/' + 27 alphanumerics + '.jpg'), from 21 bytes of seed or of a hash."""
    raw = seed or digest(key, 21)
    return "/" + base64.urlsafe_b64encode(raw).translate(_B64_TO_ALNUM)[:27].decode() + ".jpg"


def hex_id(key: str) -> str:
    return digest(key, 12).hex()
