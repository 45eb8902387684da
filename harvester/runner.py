"""One invocation, start to end: preflight, open (or resume) the run, harvest, summarise.

The CLI, the container task and the Lambda handler all call `harvest()`; they differ only in what
stops it (a signal, `--max-runtime`, the Lambda deadline) and in how they report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .config import Credentials, Settings, media_of
from .errors import HarvesterError, StateError
from .layout import data_prefix, outcomes_prefix, seq_of, summary_key
from .lookup import Lookup
from .pipeline import Pipeline
from .progress import Progress
from .ratelimit import RateLimiter
from .sink import Sink, open_sink
from .source import Source, open_source
from .state import RunState, StateStore, state_key
from .stats import Stats
from .tmdb_client import TmdbClient

log = logging.getLogger(__name__)

Status = Literal["complete", "incomplete"]


@dataclass(frozen=True)
class RunResult:
    status: Status
    summary: dict[str, Any]


async def harvest(
    settings: Settings,
    credentials: Credentials,
    *,
    fresh: bool = False,
    stop: asyncio.Event | None = None,
    deadline: float | None = None,
    grace_s: float = 5.0,
    progress: bool = True,
) -> RunResult:
    """Run (or resume) the harvest that `settings` describe.

    `deadline` is a time on the running loop's clock at which to stop taking titles; `stop` may be
    set from outside (signals) for the same effect. Either way the result is "incomplete" and the
    next call resumes. Raises HarvesterError subclasses for every expected failure.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    timer = loop.call_at(deadline, stop.set) if deadline is not None else None
    sink = open_sink(settings.sink)
    try:
        return await _harvest(settings, credentials, sink, fresh, stop, grace_s, progress)
    except BaseExceptionGroup as group:
        # TaskGroups wrap what a stage raised; the user gets the one line of the first known error.
        known = _first_known(group)
        if known is None:
            raise
        raise known from None
    finally:
        if timer is not None:
            timer.cancel()
        await sink.aclose()


async def _harvest(
    settings: Settings,
    credentials: Credentials,
    sink: Sink,
    fresh: bool,
    stop: asyncio.Event,
    grace_s: float,
    progress: bool,
) -> RunResult:
    stats = Stats()
    source = open_source(settings, sink)
    limiter = RateLimiter(settings.tmdb.rate_limit)
    async with TmdbClient(settings.tmdb, credentials, limiter) as client:
        # Preflight: nothing is written until both the credential and the sink are proven.
        await client.check_credential()
        await sink.preflight()
        media = media_of(settings.source)
        store = StateStore(sink, state_key(settings.source.type, media))
        identity = await _identity(settings, source)
        state = await _open_state(store, sink, identity, fresh, settings.sink.partition, _NAMES[media])
        if state.status == "complete":
            log.info("this harvest is already complete (use --fresh to start it over)")
            return RunResult("complete", _summary(settings, sink, source, state, stats, client, "complete"))
        if not await source.prepare(client, state, store, stop):
            summary = _summary(settings, sink, source, state, stats, client, "incomplete")
            return RunResult("incomplete", summary)
        if source.is_local:
            # A full pass over the input: once per harvest, not per resume (the identity pins the input).
            selected = state.source.get("selected")
            if not isinstance(selected, int):
                selected = state.source["selected"] = await source.count()
            stats.total = max(0, selected - len(state.done))
        pipeline = Pipeline(
            source=source,
            lookup=Lookup(client, settings.tmdb),
            sink=sink,
            sink_settings=settings.sink,
            store=store,
            state=state,
            stats=stats,
            concurrency=settings.tmdb.concurrency,
            stop=stop,
            grace_s=grace_s,
        )
        reporter = Progress(stats, client.counters, limiter, enabled=progress)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(reporter.run())
            try:
                exhausted = await pipeline.run()
            finally:
                reporter.finish()
        # Complete when every position the source enumerated is committed, whatever stopped us.
        complete = exhausted and len(state.done) >= source.stats.selected
        if complete:
            state.status = "complete"
            await store.save(state)
        status: Status = "complete" if complete else "incomplete"
        summary = _summary(settings, sink, source, state, stats, client, status)
        await sink.put(summary_key(state), orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return RunResult(status, summary)


_NAMES = {"movie": "movies", "tv": "series"}


async def _identity(settings: Settings, source: Source) -> dict[str, Any]:
    """What decides the content of the harvest; pacing settings are left out on purpose."""
    t, s, k = settings.tmdb, settings.source, settings.sink
    return {
        "source": {
            "input": await source.identity(),
            "type": s.type,
            "media": media_of(s),
            "genres": sorted(str(g).lower() for g in s.genres),
            "min_votes": s.min_votes,
            "year_from": s.year_from,
            "year_to": s.year_to,
        },
        "tmdb": {
            "base_url": t.base_url,
            "language": t.language,
            "append": list(t.append),
            "lookup": t.lookup,
        },
        "sink": {
            "chunk_size": k.chunk_size,
            "format": k.format,
            "compression": k.compression,
            "partition": k.partition,
        },
    }


async def _open_state(
    store: StateStore, sink: Sink, identity: dict[str, Any], fresh: bool, partition: str, name: str
) -> RunState:
    state = None if fresh else await store.load()
    if state is not None and state.identity != identity:
        changed = sorted(key for key in identity if state.identity.get(key) != identity[key])
        raise StateError(
            f"{store.where} belongs to another harvest (changed: {', '.join(changed) or 'identity'}); "
            "run with --fresh to start over"
        )
    if state is None:
        state = RunState.new(identity, partition=partition, name=name)
        await store.save(state)  # before any data object, so a crash never leaves untracked objects
        log.info("new harvest %s", state.tag)
        return state
    if state.status != "complete":
        await _reconcile(sink, state)
        log.info(
            "resuming harvest %s: %d titles done, next commit %d", state.tag, len(state.done), state.next_seq
        )
    return state


async def _reconcile(sink: Sink, state: RunState) -> None:
    """Remove what a run that died wrote after its last saved commit; its titles get fetched again."""
    aborted = await sink.abort_uploads(data_prefix(state))
    stale = [
        key
        for prefix in (data_prefix(state), outcomes_prefix(state))
        for key in await sink.list_keys(prefix)
        if (seq := seq_of(key)) is not None and seq >= state.next_seq
    ]
    for key in stale:
        await sink.delete(key)
    if aborted or stale:
        log.info("resume: removed %d uncommitted objects and %d unfinished uploads", len(stale), aborted)


def _summary(
    settings: Settings,
    sink: Sink,
    source: Source,
    state: RunState,
    stats: Stats,
    client: TmdbClient,
    status: Status,
) -> dict[str, Any]:
    elapsed = stats.elapsed()
    src = source.stats
    return {
        "status": status,
        "run": state.tag,
        "source": {
            "describe": source.describe(),
            "rows": src.rows,
            "malformed": src.malformed,
            "duplicates": src.duplicates,
            "filtered_out": src.filtered_out,
            "selected": src.selected,
        },
        "skipped_done": stats.skipped_done,
        "harvested": stats.harvested,
        "misses": dict(stats.misses),
        "failed": stats.failed,
        "failures": dict(stats.failures),
        "requests": client.counters.requests,
        "throttled": client.counters.throttled,
        "retries": client.counters.retries,
        "objects": stats.objects,
        "bytes_written": stats.bytes_written,
        "elapsed_s": round(elapsed, 3),
        "achieved_rps": round(client.counters.requests / elapsed, 2) if elapsed > 0 else 0.0,
        "rate_limit": settings.tmdb.rate_limit,
        "output": f"{sink.url.rstrip('/')}/{state.partition}/",
        "run_totals": dict(state.counts),
    }


def _first_known(group: BaseExceptionGroup[BaseException]) -> HarvesterError | None:
    for exc in group.exceptions:
        if isinstance(exc, HarvesterError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_known(exc)
            if found is not None:
                return found
    return None
