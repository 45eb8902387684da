"""The exactly-once commit, and the clean-up of whatever a commit that did not finish left behind.

A commit is, in this order: the data object of chunk N, the seasons object of its series (a harvest
with seasons), the outcomes object of commit N (misses and final failures), then the state with N
done, saved on the condition that nobody saved it since we did.
The data and outcomes keys carry this writer's token, so a writer that lost its lease never replaces
another's object; if its conditional state save is refused, it removes what it just wrote and stops.

What a commit leaves when it dies halfway (a crash, a kill, a lost lease) is not in the state: `reconcile`
deletes it, and aborts unfinished uploads, before a run writes anything and again before it completes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from ..config import SinkSettings
from ..errors import LeaseLost, SinkError
from ..items import Failed, Miss
from .chunks import content_type, extension
from .layout import (
    data_key,
    data_prefixes,
    ids_key,
    ids_prefix,
    is_committed,
    outcomes_key,
    outcomes_prefix,
    run_dir,
    seasons_key,
)
from .lease import Lease
from .selection import ids_record
from .sink import Sink
from .state import Pending, RunCounts, RunRef, RunState, StateStore

log = logging.getLogger(__name__)


@dataclass
class Chunk:
    """What one commit makes durable: a data object (None when every title was a miss or a failure),
    the positions it settles, and the titles that did not give a record."""

    data: bytes | None
    records: int
    positions: list[int]
    outcomes: list[Miss | Failed] = field(default_factory=list)
    harvested: list[int] = field(default_factory=list)  # TMDB ids of the records, for the selection
    seasons: bytes | None = None  # the season records of the chunk's series, one object
    season_records: int = 0
    seasons_left_out: int = 0


@dataclass(frozen=True)
class Settled:
    """How a chunk's misses and failures change the state: a pure decision, see `settle`."""

    final: list[Miss | Failed]  # written to the outcomes object
    pending: dict[int, Pending]  # failures with attempts left: tried again by the next run
    cleared: list[int]  # positions that were pending and are now settled
    removed: list[int]  # TMDB ids a refresh found gone: out of the selection


def settle(chunk: Chunk, pending: dict[int, Pending], max_attempts: int) -> Settled:
    """A transient failure stays pending until it has failed in `max_attempts` runs; a miss or a
    permanent failure is final at once; a title that was pending and now gave an answer is cleared."""
    final: list[Miss | Failed] = []
    still: dict[int, Pending] = {}
    failed_positions: set[int] = set()
    for o in chunk.outcomes:
        pos = o.title.pos
        if isinstance(o, Failed) and o.transient:
            failed_positions.add(pos)
            before = pending.get(pos)
            attempts = (before.attempts if before else 0) + 1
            if attempts < max_attempts:
                t = o.title
                still[pos] = Pending(pos, t.media, t.imdb_id, t.tmdb_id, attempts, o.reason)
                continue
        final.append(o)
    cleared = [p for p in chunk.positions if p in pending and p not in still]
    removed = [
        o.title.tmdb_id for o in final if isinstance(o, Miss) and o.removed and o.title.tmdb_id is not None
    ]
    return Settled(final, still, cleared, removed)


class Committer:
    def __init__(
        self,
        *,
        sink: Sink,
        store: StateStore,
        state: RunState,
        lease: Lease,
        sink_settings: SinkSettings,
        max_title_attempts: int,
    ) -> None:
        self._sink = sink
        self._store = store
        self._state = state
        self._lease = lease
        self._fmt = sink_settings.format
        self._ext = extension(sink_settings.format, sink_settings.compression)
        self._max_attempts = max_title_attempts

    async def commit(self, chunk: Chunk) -> Settled:
        """Make `chunk` durable; what it settled tells the caller's counters which failures are final."""
        state, writer = self._state, self._lease.token
        self._lease.check()  # a writer paused past its lease must not write at all
        seq = state.next_seq
        settled = settle(chunk, state.pending, self._max_attempts)
        written: list[str] = []
        try:
            if chunk.data is not None:
                key = data_key(state, seq, writer, self._ext)
                written.append(key)
                await self._sink.put(key, chunk.data, content_type(self._fmt))
            if chunk.seasons is not None:
                key = seasons_key(state, seq, writer, self._ext)
                written.append(key)
                await self._sink.put(key, chunk.seasons, content_type(self._fmt))
            if settled.final:
                key = outcomes_key(state, seq, writer)
                written.append(key)
                await self._sink.put(
                    key, _outcome_lines(settled.final, state.pending), "application/x-ndjson"
                )
            if chunk.harvested or settled.removed:
                key = ids_key(state, seq, writer)
                written.append(key)
                await self._sink.put(key, ids_record(chunk.harvested, settled.removed), "text/plain")
            # Only now are these titles done: the state is saved after the objects it points to.
            for pos in chunk.positions:
                state.done.add(pos)
            for pos in settled.cleared:
                del state.pending[pos]
            state.pending.update(settled.pending)
            state.next_seq = seq + 1
            _count(state.counts, chunk, settled, len(state.pending))
            await self._store.save(state)
        except LeaseLost:
            # What we wrote is left to the reconcile of the run that holds the harvest now: our keys carry
            # our token, so it is not in that run's state unless our save did land (its answer lost), and
            # then deleting it here would lose the chunk.
            log.warning(
                "lease lost during commit %06d; leaving %d objects to the next reconcile", seq, len(written)
            )
            raise
        _log_commit(seq, chunk, settled, written[0] if chunk.data is not None else None)
        return settled


def _log_commit(seq: int, chunk: Chunk, settled: Settled, key: str | None) -> None:
    """One event per commit: a readable line, and its facts as fields for JSON logs."""
    misses = sum(isinstance(o, Miss) for o in settled.final)
    failures, pending, size = len(settled.final) - misses, len(settled.pending), len(chunk.data or b"")
    log.info(
        "committed %06d: %d records, %d misses, %d failures (%d pending), %d bytes%s",
        seq, chunk.records, misses, failures, pending, size, f" in {key}" if key else "",
        extra={"event": "commit", "commit": seq, "key": key, "records": chunk.records, "misses": misses,
               "failures": failures, "pending": pending, "bytes": size},
        stacklevel=2,  # `location` names the commit
    )  # fmt: skip


def _count(counts: RunCounts, chunk: Chunk, settled: Settled, pending: int) -> None:
    counts.harvested += chunk.records
    counts.objects += chunk.data is not None
    misses = sum(isinstance(o, Miss) and not o.removed for o in settled.final)
    counts.misses += misses
    counts.removed += len(settled.removed)
    counts.failed += sum(isinstance(o, Failed) for o in settled.final)
    counts.pending = pending
    counts.seasons += chunk.season_records
    counts.seasons_left_out += chunk.seasons_left_out


async def reconcile(sink: Sink, state: RunState) -> None:
    """Remove what the state does not account for: objects of commits that did not finish, or written by
    a writer that lost its lease, and unfinished uploads (data, and spool parts under the run's folder)."""
    aborted = 0
    for prefix in (*data_prefixes(state), run_dir(state)):
        aborted += await sink.abort_uploads(prefix)
    stale = [
        key
        for prefix in (*data_prefixes(state), outcomes_prefix(state), ids_prefix(state))
        for key in await sink.list_keys(prefix)
        if not is_committed(state, key)
    ]
    await _remove(sink, stale, strict=True)
    if aborted or stale:
        log.info("removed %d uncommitted objects and %d unfinished uploads", len(stale), aborted)


async def remove_runs(sink: Sink, runs: Sequence[RunRef]) -> int:
    """Delete every object of runs that a fresh start replaced (data and bookkeeping), aborting their
    unfinished uploads; return how many objects went."""
    removed = 0
    for run in runs:
        for prefix in (*data_prefixes(run), run_dir(run)):
            await sink.abort_uploads(prefix)
            keys = await sink.list_keys(prefix)
            await _remove(sink, keys, strict=True)
            removed += len(keys)
    return removed


async def _remove(sink: Sink, keys: Sequence[str], *, strict: bool = False) -> None:
    for key in keys:
        try:
            await sink.delete(key)
        except SinkError:
            if strict:
                raise
            # After a lost lease: the next reconcile of the run that holds it now removes it.
            log.warning("could not remove %s; the current writer's next reconcile will", key)


def _outcome_lines(outcomes: list[Miss | Failed], pending: dict[int, Pending]) -> bytes:
    lines = []
    for o in outcomes:
        line: dict[str, object] = {
            "imdb_id": o.title.imdb_id,
            "tmdb_id": o.title.tmdb_id,
            "media": o.title.media,
            "outcome": ("removed" if o.removed else "miss") if isinstance(o, Miss) else "failed",
            "reason": o.reason,
        }
        if isinstance(o, Failed):
            before = pending.get(o.title.pos)
            line["attempts"] = (before.attempts if before else 0) + 1 if o.transient else 1
        lines.append(orjson.dumps(line) + b"\n")
    return b"".join(lines)
