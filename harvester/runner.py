"""One invocation, start to end: preflight, open (or resume) the run, harvest, summarise.

The CLI, the container task and the Lambda handler all call `harvest()`; they differ only in what
stops it (a signal, `--max-runtime`, the Lambda deadline) and in how they report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import msgspec

from .config import Credentials, Settings, SinkSettings, media_of
from .errors import HarvesterError, SinkError, StateError
from .lake.committer import Committer, reconcile, remove_runs
from .lake.layout import summary_key
from .lake.lease import Lease, lease_key
from .lake.sink import Sink, open_sink
from .lake.sink.base import Capabilities
from .lake.state import Identity, RunState, SinkIdentity, SourceIdentity, StateStore, TmdbIdentity, state_key
from .ops.progress import Progress
from .ops.stats import SourceSummary, Stats, Summary
from .pipeline import Pipeline
from .source import Prepare, Source, open_source
from .tmdb.client import TmdbClient
from .tmdb.lookup import Lookup
from .tmdb.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Status = Literal["complete", "incomplete"]


@dataclass(frozen=True)
class RunResult:
    status: Status
    summary: Summary
    stopped: bool = False  # a stop or the deadline cut it short (else: incomplete means titles are pending)


async def harvest(
    settings: Settings,
    credentials: Credentials,
    *,
    fresh: bool = False,
    fresh_id: str | None = None,
    stop: asyncio.Event | None = None,
    deadline: float | None = None,
    grace_s: float = 5.0,
    progress: bool = True,
) -> RunResult:
    """Run (or resume) the harvest that `settings` describe.

    `deadline` is a time on the running loop's clock at which to stop taking titles; `stop` may be
    set from outside (signals) for the same effect. Either way the result is "incomplete" and the
    next call resumes. Raises HarvesterError subclasses for every expected failure.

    `fresh` starts the harvest over: the new run replaces the old one's objects when it completes.
    With `fresh_id`, a state that this same fresh request created is resumed instead of started over,
    so a scheduler may retry a failed fresh invocation as it is (see lambda_handler.py).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    timer = loop.call_at(deadline, stop.set) if deadline is not None else None
    sink = open_sink(settings.sink)
    try:
        return await _harvest(settings, credentials, sink, fresh, fresh_id, stop, grace_s, progress)
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
    fresh_id: str | None,
    stop: asyncio.Event,
    grace_s: float,
    progress: bool,
) -> RunResult:
    limiter = RateLimiter(settings.tmdb.rate_limit)
    async with TmdbClient(settings.tmdb, credentials, limiter) as client:
        # Preflight: nothing is written until the credential, the sink and the lease are ours.
        await client.check_credential()
        fenced = fencing(await sink.preflight(), settings.sink, sink.url)
        media = media_of(settings.source)
        lease = Lease(sink, lease_key(settings.source.type, media), settings.sink.lease_s, fenced=fenced)
        await lease.acquire()
        try:
            async with asyncio.TaskGroup() as tg:
                keeper = tg.create_task(lease.keep())
                try:
                    return await _run(settings, sink, client, limiter, lease, fenced, fresh, fresh_id, stop,
                                      grace_s, progress)  # fmt: skip
                finally:
                    keeper.cancel()
        finally:
            await lease.release()


def fencing(caps: Capabilities, settings: SinkSettings, url: str) -> bool:
    """Whether writes can be fenced; refuses a store that cannot, unless the user takes that on."""
    if caps.conditional_writes:
        return True
    if not settings.unsafe_single_writer:
        raise SinkError(
            f"{url} does not honour conditional writes (If-None-Match / If-Match), so no lease can keep "
            "two runs from writing one harvest; set [sink] unsafe_single_writer = true if only one run "
            "ever writes this prefix"
        )
    log.warning("%s has no conditional writes: nothing stops a second run from writing this harvest", url)
    return False


async def _run(
    settings: Settings,
    sink: Sink,
    client: TmdbClient,
    limiter: RateLimiter,
    lease: Lease,
    fenced: bool,
    fresh: bool,
    fresh_id: str | None,
    stop: asyncio.Event,
    grace_s: float,
    progress: bool,
) -> RunResult:
    stats = Stats()
    source = open_source(settings, sink)
    media = media_of(settings.source)
    store = StateStore(sink, state_key(settings.source.type, media), fenced=fenced)
    identity = await _identity(settings, source)
    state = await _open_state(store, sink, lease, identity, fresh, fresh_id, settings.sink.partition,
                              _NAMES[media])  # fmt: skip
    if state.complete:
        log.info("this harvest is already complete (use --fresh to start it over)")
        return RunResult("complete", _summary(settings, sink, source, state, stats, client, "complete"))
    if not await source.prepare(Prepare(client, state, store, lease, stop)):
        summary = _summary(settings, sink, source, state, stats, client, "incomplete")
        return RunResult("incomplete", summary, stopped=True)
    if source.count_is_cheap:
        # A full pass over the input: once per harvest, not per resume (the identity pins the input).
        if state.source.selected is None:
            state.source.selected = await source.count()
        stats.total = max(0, state.source.selected - len(state.done) + len(state.pending))
    committer = Committer(
        sink=sink,
        store=store,
        state=state,
        lease=lease,
        sink_settings=settings.sink,
        max_title_attempts=settings.tmdb.max_title_attempts,
    )
    pipeline = Pipeline(
        source=source,
        retry=[p.title() for p in sorted(state.pending.values(), key=lambda p: p.pos)],
        done=state.done,
        lookup=Lookup(client, settings.tmdb),
        committer=committer,
        sink_settings=settings.sink,
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
    # Complete when every position the source enumerated is committed and none is pending.
    complete = exhausted and len(state.done) >= source.stats.selected and not state.pending
    lease.check()
    if complete:
        await reconcile(sink, state)  # anything a writer that lost its lease left behind
        state.status = "complete"
        await store.save(state)
        await _finish_superseded(sink, store, state)
    status: Status = "complete" if complete else "incomplete"
    summary = _summary(settings, sink, source, state, stats, client, status)
    await sink.put(summary_key(state), msgspec.json.format(msgspec.json.encode(summary), indent=2))
    return RunResult(status, summary, stopped=not exhausted)


_NAMES = {"movie": "movies", "tv": "series"}
FINAL_FAILURES_LISTED = 100  # the summary names this many; outcomes-*.jsonl has them all


async def _identity(settings: Settings, source: Source) -> Identity:
    t, s, k = settings.tmdb, settings.source, settings.sink
    return Identity(
        source=SourceIdentity(
            input=await source.identity(),
            type=s.type,
            media=media_of(s),
            genres=sorted(str(g).lower() for g in s.genres),
            min_votes=s.min_votes,
            year_from=s.year_from,
            year_to=s.year_to,
        ),
        tmdb=TmdbIdentity(base_url=t.base_url, language=t.language, append=list(t.append), lookup=t.lookup),
        sink=SinkIdentity(
            chunk_size=k.chunk_size, format=k.format, compression=k.compression, partition=k.partition
        ),
    )


async def _open_state(
    store: StateStore,
    sink: Sink,
    lease: Lease,
    identity: Identity,
    fresh: bool,
    fresh_id: str | None,
    partition: str,
    name: str,
) -> RunState:
    raw = await store.load_raw()
    old: RunState | None = None
    if raw is not None:
        try:
            old = RunState.from_bytes(raw, store.where)
        except StateError:
            if not fresh:
                raise
            log.warning(
                "replacing the unreadable state %s; the objects of the run it described stay", store.where
            )
    if fresh and old is not None and fresh_id is not None and old.fresh_id == fresh_id:
        fresh = False  # this fresh request already started the run: a retry resumes it
    if not fresh and old is not None and old.identity != identity:
        changed = identity.changed(old.identity)
        raise StateError(
            f"{store.where} belongs to another harvest (changed: {', '.join(changed) or 'identity'}); "
            "run with --fresh to start over"
        )
    if fresh or old is None:
        state = RunState.new(identity, partition=partition, name=name)
        state.fresh_id = fresh_id
        if old is not None:
            # Replaced only once the new run completes: until then readers keep the old one.
            state.supersedes = [*old.supersedes, old.ref()]
        state.start_writer(lease.token)
        await store.save(state)  # before any data object, so a crash never leaves untracked objects
        log.info("new harvest %s", state.tag)
        return state
    if old.complete:
        await _finish_superseded(sink, store, old)
        return old
    # Saving first fences out the writer before us (its next conditional save is refused); only then
    # is what it left behind safe to remove.
    old.start_writer(lease.token)
    await store.save(old)
    await reconcile(sink, old)
    log.info("resuming harvest %s: %d titles done, %d pending, next commit %d",
             old.tag, len(old.done), len(old.pending), old.next_seq)  # fmt: skip
    return old


async def _finish_superseded(sink: Sink, store: StateStore, state: RunState) -> None:
    """Remove the runs a completed fresh start replaced (again, if a crash interrupted it)."""
    if not state.supersedes:
        return
    removed = await remove_runs(sink, state.supersedes)
    log.info("removed %d objects of %d replaced run(s)", removed, len(state.supersedes))
    state.supersedes = []
    await store.save(state)


def _summary(
    settings: Settings,
    sink: Sink,
    source: Source,
    state: RunState,
    stats: Stats,
    client: TmdbClient,
    status: Status,
) -> Summary:
    elapsed = stats.elapsed()
    src = source.stats
    return Summary(
        status=status,
        run=state.tag,
        source=SourceSummary(
            describe=source.describe(),
            rows=src.rows,
            malformed=src.malformed,
            duplicates=src.duplicates,
            filtered_out=src.filtered_out,
            selected=src.selected,
        ),
        skipped_done=stats.skipped_done,
        harvested=stats.harvested,
        misses=dict(stats.misses),
        failed=stats.failed,
        failures=dict(stats.failures),
        final_failures=stats.final_failures[:FINAL_FAILURES_LISTED],
        pending=len(state.pending),
        requests=client.counters.requests,
        throttled=client.counters.throttled,
        retries=client.counters.retries,
        objects=stats.objects,
        bytes_written=stats.bytes_written,
        elapsed_s=round(elapsed, 3),
        achieved_rps=round(client.counters.requests / elapsed, 2) if elapsed > 0 else 0.0,
        rate_limit=settings.tmdb.rate_limit,
        output=f"{sink.url.rstrip('/')}/{state.partition}/",
        run_totals=state.counts,
    )


def _first_known(group: BaseExceptionGroup[BaseException]) -> HarvesterError | None:
    for exc in group.exceptions:
        if isinstance(exc, HarvesterError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_known(exc)
            if found is not None:
                return found
    return None
