"""The audit of one harvest in its sink: GET and LIST only (no write, no lease, no probe).

It lists the table's folder (every object readers of it read) and the run's own, reads the other
harvests' states (those sharing the folder account for objects in it), the lease and every object to
judge, and hands what it read to audit_checks.py, which decides what is wrong.

Memory stays flat in the number of objects: bodies are read a few at a time and dropped once their ids
are taken; what is kept is one dict entry per title.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from ..errors import Interrupted, StateError, first_known
from .audit_checks import (
    DataJob,
    DataScan,
    Findings,
    Holder,
    OutcomeScan,
    Report,
    RunTally,
    Seasons,
    SeasonScan,
    Titles,
    check_counts,
    note_sections,
    run_folder,
    scan_data,
    scan_outcomes,
    scan_seasons,
    season_objects,
    sharing,
    table_jobs,
)
from .layout import run_dir, seasons_prefix
from .lease import LeaseDoc, is_live, lease_key
from .reads import in_order
from .sink import Sink
from .sink.base import HARVEST_DIR
from .state import RunState, state_key

CONCURRENCY = 16  # GETs at once: enough to hide the store's latency, few enough bodies in memory

J = TypeVar("J")
R = TypeVar("R")


async def audit(sink: Sink, harvest: str, state: RunState, stop: asyncio.Event | None = None) -> Report:
    """Audit the harvest `harvest` (config.harvest_id) that `state` describes in `sink`. Raises SinkError
    when the store fails and Interrupted when `stop` is set before the end; either way nothing was
    written."""
    try:
        return await _audit(sink, harvest, state, stop or asyncio.Event())
    except BaseExceptionGroup as group:  # the readers' TaskGroup wraps what one of them raised
        known = first_known(group)
        if known is None:
            raise
        raise known from None


async def _audit(sink: Sink, harvest: str, state: RunState, stop: asyncio.Event) -> Report:
    findings = Findings()
    holders = [Holder(harvest, state), *await _other_states(sink, harvest, findings)]
    root = holders[0].table
    jobs, superseded = table_jobs(await sink.list_keys(root), root, holders, findings)
    outcome_keys = run_folder(await sink.list_keys(run_dir(state)), state, findings)
    # The table's folder and the run's own; the whole prefix holds both when it is the table.
    for prefix in [root, run_dir(state)] if root else [root]:
        for key in await sink.list_uploads(prefix):
            findings.add("uploads", key)
    writer = await _live_writer(sink, harvest)

    titles, tally = Titles(findings), RunTally()

    async def read_data(job: DataJob) -> DataScan:
        body = await sink.get(job.key)
        if body is None:
            return DataScan([], "vanished since it was listed")
        return scan_data(job.key, body, job.chunk_size, job.sections)

    def merge_data(job: DataJob, scan: DataScan) -> None:
        if scan.problem is not None:
            findings.add("invalid", f"{job.key}: {scan.problem}")
        note_sections(job.key, scan, findings)
        titles.add(job.key, job.run, job.lineage, scan.ids)
        if job.ours:
            tally.objects += 1
            tally.records += len(scan.ids)

    async def read_outcomes(key: str) -> OutcomeScan:
        body = await sink.get(key)
        return OutcomeScan(problem="vanished since it was listed") if body is None else scan_outcomes(body)

    def merge_outcomes(key: str, scan: OutcomeScan) -> None:
        if scan.problem is not None:
            findings.add("invalid", f"{key}: {scan.problem}")
        tally.misses += scan.misses
        tally.removed += scan.removed
        tally.failed += scan.failed

    await read_in_order(jobs, read_data, merge_data, stop)
    await read_in_order(outcome_keys, read_outcomes, merge_outcomes, stop)
    seasons = await _audit_seasons(sink, state, findings, stop)
    committed = [job.key for job in jobs if job.ours]
    check_counts(state, tally, [*committed, *outcome_keys], findings)

    listed = findings.listed()
    base = sink.url.rstrip("/")
    return Report(
        clean=not listed,
        state=f"{base}/{state_key(harvest)}",
        run=state.tag,
        status=state.status,
        pending=len(state.pending),
        table=f"{base}/{root}",
        name=state.name,
        sharing=sharing(holders),
        data_objects=len(jobs),
        records=titles.records,
        titles=len(titles),
        updates=titles.updates,
        outcome_lines=tally.misses + tally.removed + tally.failed,
        superseded=superseded,
        writer=writer,
        findings=listed,
        seasons=seasons,
    )


async def _audit_seasons(sink: Sink, state: RunState, findings: Findings, stop: asyncio.Event) -> int | None:
    """The run's seasons table objects (a harvest with seasons): committed, valid, each season once."""
    prefix = seasons_prefix(state)
    if prefix is None:
        return None
    seasons = Seasons(findings)

    async def read(key: str) -> SeasonScan:
        body = await sink.get(key)
        return SeasonScan([], "vanished since it was listed") if body is None else scan_seasons(key, body)

    keys = season_objects(await sink.list_keys(prefix), state, findings)
    await read_in_order(keys, read, seasons.add, stop)
    seasons.check(state)
    return seasons.records


async def read_in_order(
    jobs: Sequence[J],
    read: Callable[[J], Coroutine[Any, Any, R]],
    merge: Callable[[J, R], None],
    stop: asyncio.Event,
) -> None:
    """`read` every job, CONCURRENCY at a time, and `merge` the results in job order (the order the
    duplicate check relies on, and a report that is the same from one audit to the next); at most
    CONCURRENCY bodies in memory, each dropped once merged (reads.py)."""

    async def use(job: J, result: R) -> bool:
        if stop.is_set():
            return False
        merge(job, result)
        return True

    if not await in_order(jobs, read, use, CONCURRENCY):
        raise Interrupted("stopped before the audit was done; nothing was written")


async def _other_states(sink: Sink, harvest: str, findings: Findings) -> list[Holder]:
    """The states of the other harvests in the sink: those whose table is the same folder account for
    objects in it too."""
    ours, others = state_key(harvest), []
    prefix = f"{HARVEST_DIR}/state-"
    for key in await sink.list_keys(prefix):
        if key == ours or "/" in key[len(HARVEST_DIR) + 1 :] or not key.endswith(".json"):
            continue
        raw = await sink.get(key)
        if raw is None:
            continue  # removed since it was listed: it accounts for nothing now
        try:
            others.append(Holder(key[len(prefix) : -len(".json")], RunState.from_bytes(raw, key)))
        except StateError as exc:
            findings.add("states", f"{exc} (the objects it accounts for are orphans here)")
    return others


async def _live_writer(sink: Sink, harvest: str) -> str | None:
    """Who holds the harvest's lease now, if anyone: what it is writing is not committed yet."""
    raw = await sink.get(lease_key(harvest))
    if raw is None:
        return None
    try:
        doc = msgspec.json.decode(raw, type=LeaseDoc)
    except msgspec.DecodeError:
        return None  # the harvester takes an unreadable lease for an expired one, and so does the audit
    if not is_live(doc, time.time()):
        return None
    until = datetime.fromtimestamp(doc.expires, UTC).isoformat(timespec="seconds")
    return f"{doc.holder} (lease until {until})"
