"""What a finished harvest must look like, computed independently of the harvester's code."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from fixtures_s3 import s3_objects

from harvester.lake.sink.local import LOCK_SUFFIX
from tmdb_standin import kind_of

PREFIX = "Raw/TMDB/JSON"
SAMPLE_MOVIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies_sample.csv"


def distinct_ids(csv_path: Path) -> list[str]:
    """The distinct well-formed ids of a movies.csv, in file order (a reference implementation)."""
    seen: dict[str, None] = {}
    with csv_path.open(encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            first = line.split("|", 1)[0].strip()
            if first.startswith("tt") and first[2:].isdigit():
                seen.setdefault(first, None)
    return list(seen)


@dataclass
class Expected:
    found: set[str]
    misses: dict[str, str]  # imdb id -> reason


def expected_movies(ids: Iterable[str]) -> Expected:
    found: set[str] = set()
    misses: dict[str, str] = {}
    for i in ids:
        kind = kind_of(i)
        if kind in ("movie", "direct_404", "direct_wrong"):
            found.add(i)
        else:
            misses[i] = "tv" if kind == "tv" else "not_found"
    return Expected(found, misses)


@dataclass
class Lake:
    data: dict[str, list[dict[str, object]]]  # data object key -> its records
    outcomes: list[dict[str, object]]
    other: dict[str, bytes]

    def record_ids(self) -> Counter[str]:
        return Counter(str(r["imdb_id"]) for records in self.data.values() for r in records)

    def miss_reasons(self) -> dict[str, str]:
        return {str(o["imdb_id"]): str(o["reason"]) for o in self.outcomes if o["outcome"] == "miss"}


def parse_lake(objects: dict[str, bytes], prefix: str = PREFIX) -> Lake:
    lake = Lake({}, [], {})
    for key, body in objects.items():
        rel = key[len(prefix) + 1 :] if prefix else key
        if key.endswith(".gz"):
            body = gzip.decompress(body)
        if rel.startswith("_harvest/") and "/outcomes-" in rel:
            lake.outcomes.extend(orjson.loads(line) for line in body.splitlines() if line)
        elif rel.startswith(("_harvest/", "_reference/")):  # not any harvest's data (reference.py)
            lake.other[rel] = body
        elif rel.endswith((".jsonl", ".jsonl.gz")):
            lake.data[rel] = [orjson.loads(line) for line in body.splitlines() if line]
        else:
            lake.data[rel] = orjson.loads(body)
    return lake


async def read_s3_lake(endpoint: str, bucket: str, prefix: str = PREFIX) -> Lake:
    return parse_lake(await s3_objects(endpoint, bucket, prefix), prefix)


def read_local_lake(root: Path) -> Lake:
    # The lease's lock file is the local sink's own, never a key (LocalSink.list leaves it out too).
    files = (p for p in root.rglob("*") if p.is_file() and not p.name.endswith(LOCK_SUFFIX))
    objects = {p.relative_to(root).as_posix(): p.read_bytes() for p in files}
    return parse_lake(objects, "")


class StopOnCommit(logging.Handler):
    """Sets `stop` when the committer logs its n-th commit: stopping on an event, not a timer."""

    def __init__(self, stop: asyncio.Event, after: int) -> None:
        super().__init__(logging.DEBUG)
        self.stop, self.left = stop, after

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("committed"):
            self.left -= 1
            if self.left == 0:
                self.stop.set()


@contextmanager
def stop_after_commits(commits: int) -> Iterator[asyncio.Event]:
    """An event for `harvest(stop=...)` that is set once `commits` commits are logged."""
    stop = asyncio.Event()
    logger = logging.getLogger("harvester.lake.committer")
    handler, level = StopOnCommit(stop, commits), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stop
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
