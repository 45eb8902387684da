"""Credits: cast and crew lists pre-serialized once, and the slice of them each title shows.

A credits body is the biggest part of a details body (TMDB: typically 10 to 60 KB), and the
stand-in shares the cores with the harvester in benchmarks: so a fixed pool of entries is
serialized once, and a title's credits are a prefix of one block of it, cut to the title's size.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from harvester.items import Media

from .draws import HashDraws, image_path
from .vocabulary import CHARACTERS, CREW_JOBS, FIRST_NAMES, LAST_NAMES

_VARIANTS = 32  # distinct casts; each title slices a prefix of one of them
_BLOCK_ENTRIES = 200  # enough for the largest credits target


@dataclass(frozen=True, slots=True)
class CreditBlock:
    """Entries serialized and comma-joined; ends[i] is the byte offset just after entry i."""

    data: memoryview
    ends: tuple[int, ...]

    def prefix(self, nbytes: int) -> memoryview:
        """The longest run of whole entries from the start that fits nbytes (at least one entry)."""
        count = max(1, bisect.bisect_right(self.ends, nbytes))
        return self.data[: self.ends[count - 1]]


def _credit_block(entries: Iterable[dict[str, Any]]) -> CreditBlock:
    parts = [orjson.dumps(e) for e in entries]
    ends, pos = [], -1
    for p in parts:
        pos += len(p) + 1  # the comma before every entry but the first
        ends.append(pos)
    return CreditBlock(memoryview(b",".join(parts)), tuple(ends))


@dataclass(frozen=True, slots=True)
class CreditPools:
    """The blocks every title's credits are cut from: `credits` cast and crew, TV's `aggregate_credits`."""

    movie_cast: tuple[CreditBlock, ...]
    tv_cast: tuple[CreditBlock, ...]
    crew: tuple[CreditBlock, ...]
    agg_cast: tuple[CreditBlock, ...]
    agg_crew: tuple[CreditBlock, ...]


def _people(rng: random.Random, n: int) -> list[dict[str, Any]]:
    people = []
    for _ in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        pid = rng.randrange(1, 5_000_000)
        people.append(
            {
                "adult": False,
                "gender": rng.choice((0, 1, 2, 2)),
                "id": pid,
                "known_for_department": "Acting",
                "name": f"{first} {last}",
                "original_name": f"{first} {last}",
                "popularity": round(0.6 + 40 * rng.random() ** 4, 3),
                "profile_path": image_path(f"person:{pid}") if rng.random() < 0.7 else None,
            }
        )
    return people


def _character(rng: random.Random) -> str:
    return rng.choice(CHARACTERS).format(first=rng.choice(FIRST_NAMES), last=rng.choice(LAST_NAMES))


@cache
def credit_pools() -> CreditPools:
    rng = random.Random(20_240_601)  # fixed: the pools are part of the catalogue's deterministic output
    people = _people(rng, 4_000)

    def credit_id() -> str:
        return f"{rng.getrandbits(96):024x}"

    def cast(with_cast_id: bool) -> list[dict[str, Any]]:
        out = []
        for order in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            if with_cast_id:
                e["cast_id"] = order + 2 + rng.randrange(3)
            e["character"] = _character(rng)
            e["credit_id"] = credit_id()
            e["order"] = order
            out.append(e)
        return out

    def crew() -> list[dict[str, Any]]:
        out = []
        for _ in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            department, job = rng.choice(CREW_JOBS)
            e["credit_id"] = credit_id()
            e["department"] = department
            e["job"] = job
            out.append(e)
        return out

    def agg_cast() -> list[dict[str, Any]]:
        out = []
        for order in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            roles = [
                {
                    "credit_id": credit_id(),
                    "character": _character(rng),
                    "episode_count": rng.randrange(1, 60),
                }
                for _ in range(1 + (rng.random() < 0.2))
            ]
            e["roles"] = roles
            e["total_episode_count"] = sum(r["episode_count"] for r in roles)
            e["order"] = order
            out.append(e)
        return out

    def agg_crew() -> list[dict[str, Any]]:
        out = []
        for _ in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            department, job = rng.choice(CREW_JOBS)
            jobs = [{"credit_id": credit_id(), "job": job, "episode_count": rng.randrange(1, 40)}]
            e["jobs"] = jobs
            e["department"] = department
            e["total_episode_count"] = jobs[0]["episode_count"]
            out.append(e)
        return out

    # Drawn in this order (the draws are the catalogue), serialized once every person's
    # known_for_department is known: it is the person's, the same in all of their entries.
    lists = (
        [cast(True) for _ in range(_VARIANTS)],
        [cast(False) for _ in range(_VARIANTS)],
        [crew() for _ in range(_VARIANTS)],
        [agg_cast() for _ in range(_VARIANTS // 4)],
        [agg_crew() for _ in range(_VARIANTS // 4)],
    )
    known = _known_for(e for pool in lists for block in pool for e in block)
    for pool in lists:
        for block in pool:
            for e in block:
                e["known_for_department"] = known[e["id"]]
    movie_cast, tv_cast, crew_, agg_cast_, agg_crew_ = (tuple(_credit_block(b) for b in p) for p in lists)
    return CreditPools(movie_cast, tv_cast, crew_, agg_cast_, agg_crew_)


def _known_for(entries: Iterable[dict[str, Any]]) -> dict[int, str]:
    """Each person's known_for_department as TMDB derives it: the department of most of their
    credits (a cast credit is "Acting"); a tie goes to the department credited first."""
    counts: dict[int, Counter[str]] = {}
    for e in entries:
        counts.setdefault(e["id"], Counter())[e.get("department", "Acting")] += 1
    return {pid: c.most_common(1)[0][0] for pid, c in counts.items()}


@dataclass(frozen=True, slots=True)
class CreditsCut:
    """Which credits a title shows: a variant of each pool, cut to a size."""

    nbytes: int  # bytes of cast + crew in `credits` (`aggregate_credits` carries half)
    cast_share: float  # of those bytes, the cast's share
    variant: int

    @classmethod
    def draw(cls, d: HashDraws) -> CreditsCut:
        # Body with credits lands in 10.3..54 KB before other appends (TMDB: typically 10 to 60 KB).
        return cls(10_000 + d.below(42_000), 0.40 + d.below(250) / 1000, d.below(_VARIANTS))


def append_credits(
    out: list[bytes | memoryview], media: Media, tmdb_id: bytes, cut: CreditsCut, aggregate: bool
) -> None:
    """Append the `credits` (or, for TV, `aggregate_credits`) body of a title to `out`."""
    pools = credit_pools()
    size = cut.nbytes // 2 if aggregate else cut.nbytes
    cast_bytes = int(size * cut.cast_share)
    if aggregate:
        cast = pools.agg_cast[cut.variant % len(pools.agg_cast)].prefix(cast_bytes)
        crew = pools.agg_crew[cut.variant % len(pools.agg_crew)].prefix(size - cast_bytes)
    else:
        cast = (pools.movie_cast if media == "movie" else pools.tv_cast)[cut.variant].prefix(cast_bytes)
        crew = pools.crew[(cut.variant * 7 + 3) % _VARIANTS].prefix(size - cast_bytes)
    out += (b'{"id":', tmdb_id, b',"cast":[', cast, b'],"crew":[', crew, b"]}")
