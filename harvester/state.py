"""The harvest's saved state: which source positions are done, and the next commit number.

It lives in the sink under `_harvest/` (Spark, Glue and Athena skip `_` paths), so a Lambda or a new
container finds it where the data is. It is rewritten, atomically, after each commit, and stays small
whatever the input size: the done positions are kept as a watermark (every position below it is done)
plus the few done positions above it (titles complete out of order by at most the work in flight).

A commit is: the data object of chunk N (deterministic key), then the outcomes object of commit N
(misses and failures), then this state with N done. Anything the sink holds for commit N or later that
the state does not record was written by a run that died before saving: it is deleted on resume and
its titles are fetched again, so every title ends up in exactly one data object.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .errors import StateError
from .sink import Sink
from .sink.base import HARVEST_DIR

STATE_VERSION = 1


def state_key(source_type: str, media: str) -> str:
    """One state per kind of harvest, so one prefix can hold a movies and a series harvest."""
    return f"{HARVEST_DIR}/state-{source_type}-{media}.json"


class DoneSet:
    """Positions 0, 1, 2, ... that are done: a watermark plus a sorted list of positions above it."""

    def __init__(self, below: int = 0, extra: Iterable[int] = ()) -> None:
        self.below = below
        self._extra: list[int] = sorted(p for p in set(extra) if p >= below)
        self._compact()

    def __contains__(self, pos: int) -> bool:
        if pos < self.below:
            return True
        i = bisect.bisect_left(self._extra, pos)
        return i < len(self._extra) and self._extra[i] == pos

    def __len__(self) -> int:
        return self.below + len(self._extra)

    def add(self, pos: int) -> None:
        if pos in self:
            return
        bisect.insort(self._extra, pos)
        self._compact()

    def _compact(self) -> None:
        n = 0
        while n < len(self._extra) and self._extra[n] == self.below:
            self.below += 1
            n += 1
        if n:
            del self._extra[:n]

    @property
    def extra(self) -> list[int]:
        return list(self._extra)


def run_id_for(identity: Mapping[str, Any]) -> str:
    """A stable id for 'this input, harvested with these settings'."""
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class RunState:
    run_id: str
    identity: dict[str, Any]
    created: str  # ISO 8601, UTC
    tag: str  # names this run's objects: creation time + run id
    partition: str  # e.g. "2026/11/23": where every data object of this run goes (its start date)
    name: str  # first word of data object names: "movies" or "series"
    next_seq: int = 0
    done: DoneSet = field(default_factory=DoneSet)
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "running"  # or "complete"
    source: dict[str, Any] = field(default_factory=dict)  # what a source needs to resume (discover)

    @classmethod
    def new(
        cls,
        identity: Mapping[str, Any],
        *,
        partition: str = "{yyyy}/{mm}/{dd}",
        name: str = "movies",
        now: datetime | None = None,
    ) -> RunState:
        now = now or datetime.now(UTC)
        run_id = run_id_for(identity)
        return cls(
            run_id=run_id,
            identity=dict(identity),
            created=now.isoformat(timespec="seconds"),
            tag=f"{now:%Y%m%dT%H%M%SZ}-{run_id[:8]}",
            partition=render_partition(partition, now, name),
            name=name,
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "version": STATE_VERSION,
                "run_id": self.run_id,
                "identity": self.identity,
                "created": self.created,
                "tag": self.tag,
                "partition": self.partition,
                "name": self.name,
                "next_seq": self.next_seq,
                "done": {"below": self.done.below, "extra": self.done.extra},
                "counts": self.counts,
                "status": self.status,
                "source": self.source,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> RunState:
        try:
            d = orjson.loads(raw)
            if d["version"] != STATE_VERSION:
                raise StateError(f"{where}: state version {d['version']} is not supported")
            state = cls(
                run_id=_typed(d["run_id"], str),
                identity=_typed(d["identity"], dict),
                created=_typed(d["created"], str),
                tag=_typed(d["tag"], str),
                partition=_typed(d["partition"], str),
                name=_typed(d["name"], str),
                next_seq=_typed(d["next_seq"], int),
                done=DoneSet(_typed(d["done"]["below"], int), _int_list(d["done"]["extra"])),
                counts={str(k): _typed(v, int) for k, v in _typed(d["counts"], dict).items()},
                status=_typed(d["status"], str),
                source=_typed(d.get("source", {}), dict),
            )
        except StateError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"{where} is corrupt ({exc.__class__.__name__}); move it away or use --fresh"
            ) from None
        if state.status not in ("running", "complete") or state.next_seq < 0 or state.run_id_mismatch():
            raise StateError(f"{where} is corrupt (inconsistent fields); move it away or use --fresh")
        return state

    def run_id_mismatch(self) -> bool:
        return run_id_for(self.identity) != self.run_id


def render_partition(template: str, when: datetime, name: str) -> str:
    """'{media}/{yyyy}/{mm}/{dd}' -> 'movies/2026/11/23'."""
    return template.format(yyyy=f"{when:%Y}", mm=f"{when:%m}", dd=f"{when:%d}", media=name).strip("/")


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}")
    return value


def _int_list(value: Any) -> list[int]:
    return [_typed(v, int) for v in _typed(value, list)]


class StateStore:
    """Reads and writes the state object in a sink."""

    def __init__(self, sink: Sink, key: str) -> None:
        self._sink = sink
        self.key = key

    @property
    def where(self) -> str:
        return f"{self._sink.url.rstrip('/')}/{self.key}"

    async def load(self) -> RunState | None:
        raw = await self._sink.get(self.key)
        return None if raw is None else RunState.from_bytes(raw, self.where)

    async def save(self, state: RunState) -> None:
        await self._sink.put(self.key, state.to_bytes())
