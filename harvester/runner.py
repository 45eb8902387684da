"""One invocation, start to end: preflight, lease, open (or resume) the run, harvest, complete, summarise.

The CLI, the container task and the Lambda handler all call `harvest()`; they differ only in what
stops it (a signal, `--max-runtime`, the Lambda deadline) and in how they report.

A harvest is a line of runs in one state object: a full run, then refresh runs, each with its own tag
and date partition. A refresh starts from the last complete run (its selection and start time) and
takes only what changed, entered or left (source/refresh.py); `--fresh` starts the line over and, once
complete, deletes every earlier run of the line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

import msgspec

from .config import Credentials, Settings, SinkSettings, harvest_id, media_of, seasons_partition
from .errors import ConfigError, HarvesterError, SinkError, StateError, first_known
from .items import Media, Outcome, Title
from .lake.committer import Committer
from .lake.layout import summary_key
from .lake.lease import Lease, lease_key
from .lake.runs import Opener, finish
from .lake.selection import load_selection
from .lake.sink import Sink, open_sink
from .lake.sink.base import Capabilities
from .lake.state import Identity, RunState, SinkIdentity, SourceIdentity, StateStore, TmdbIdentity, state_key
from .ops import logs
from .ops.progress import Progress
from .ops.stats import SeasonsSummary, SourceSummary, Stats, Summary, refresh_summary
from .pipeline import Pipeline
from .source import Prepare, Source, open_source
from .source.refresh import RefreshSource
from .tmdb.client import TmdbClient
from .tmdb.lookup import Lookup
from .tmdb.ratelimit import RateLimiter
from .tmdb.seasons import SeasonFetcher, WithSeasons, first_seasons

log = logging.getLogger(__name__)

Status = Literal["complete", "incomplete"]
Mode = Literal["run", "refresh"]


class Options(TypedDict, total=False):
    """How to run, as `harvest` takes it and the layers above pass it through (fleet.py, the CLI,
    Lambda): the one spelling of these keywords."""

    mode: Mode
    fresh: bool
    fresh_id: str | None
    stop: asyncio.Event | None
    deadline: float | None
    grace_s: float
    progress: bool


@dataclass(frozen=True)
class Request:
    """How this invocation was asked to run (what the CLI options or the Lambda event said)."""

    mode: Mode = "run"
    fresh: bool = False
    fresh_id: str | None = None
    grace_s: float = 5.0
    progress: bool = True
    label: str = ""  # progress lines say whose they are; no live bar


class Shared:
    """What the harvests of one process share (fleet.py runs several): the paced TMDB client, its one
    credential check, and each sink's preflight. A single harvest has one of its own.

    TMDB's first request (the credential check) waits until each of the `harvests` is ready for TMDB
    or has ended: what they do before it (a count pass over a csv) would otherwise come between it and
    the lookups, which share one event loop."""

    def __init__(self, client: TmdbClient, limiter: RateLimiter, harvests: int = 1) -> None:
        self.client = client
        self.limiter = limiter
        self._unready = harvests
        self._all_ready = asyncio.Event()
        if harvests <= 0:
            self._all_ready.set()
        self._credential = asyncio.Lock()
        self._checked = False
        self._refused: HarvesterError | None = None
        self._probing = asyncio.Lock()
        self._probed: dict[int, Capabilities] = {}
        # One completion at a time: completing folds the harvest's ids into a bitmap as large as its
        # largest TMDB id / 8; harvests completing together would hold theirs at once (memory flat in
        # the number of harvests: bench/fleet_memory.py).
        self.completing = asyncio.Lock()
        self._ended: dict[str, asyncio.Event] = {}  # by name, the harvests of this process (fleet.py)

    def running(self, names: Iterable[str]) -> None:
        """These harvests run in this process: `ended(name)` waits for each until `end(name)`."""
        self._ended.update((name, asyncio.Event()) for name in names)

    def end(self, name: str) -> None:
        if name in self._ended:
            self._ended[name].set()

    async def ended(self, name: str) -> None:
        """Returns once harvest `name` has ended here (complete or not), at once if it does not run here."""
        if name in self._ended:
            await self._ended[name].wait()

    def arrival(self) -> Arrival:
        """One harvest's place in the wait for TMDB's first request."""
        return Arrival(self)

    def _arrived(self) -> None:
        self._unready -= 1
        if self._unready <= 0:
            self._all_ready.set()

    async def credential(self, client: TmdbClient, arrival: Arrival) -> None:
        """TMDB's word on the credential, asked once for all the harvests (its answer kept) when all
        are ready, through the view of the harvest that asks first (its summary counts the request)."""
        arrival.done()
        await self._all_ready.wait()
        async with self._credential:
            if self._refused is not None:
                raise self._refused
            if self._checked:
                return
            try:
                await client.check_credential()
            except HarvesterError as exc:
                self._refused = exc
                raise
            self._checked = True

    async def preflight(self, sink: Sink) -> Capabilities:
        """The sink's connection and probe, once per sink however many harvests write it."""
        async with self._probing:
            if id(sink) not in self._probed:
                await sink.connect()
                self._probed[id(sink)] = await sink.preflight()
            return self._probed[id(sink)]


class Arrival:
    """Marks one harvest ready for TMDB, or gone before it (whatever ended it): once either way."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._done = False

    def done(self) -> None:
        if not self._done:
            self._done = True
            self._shared._arrived()


@dataclass(frozen=True)
class RunResult:
    status: Status
    summary: Summary
    stopped: bool = False  # a stop or the deadline cut it short (else: incomplete means titles are pending)


async def harvest(
    settings: Settings,
    credentials: Credentials,
    *,
    mode: Mode = "run",
    fresh: bool = False,
    fresh_id: str | None = None,
    stop: asyncio.Event | None = None,
    deadline: float | None = None,
    grace_s: float = 5.0,
    progress: bool = True,
    label: str = "",
    shared: Shared | None = None,
    sink: Sink | None = None,
) -> RunResult:
    """Run (or resume) the harvest that `settings` describe.

    `shared` and `sink` come from a process running several harvests (fleet.py): the TMDB client and
    the sink are then theirs, opened and closed by them; by default the harvest has its own. `label`
    names the harvest in its progress lines (several harvests share a terminal: no live bar then).

    `deadline` is a time on the running loop's clock at which to stop taking titles; `stop` may be
    set from outside (signals) for the same effect. Either way the result is "incomplete" and the
    next call resumes. Raises HarvesterError subclasses for every expected failure.

    `mode = "refresh"` takes, as a new run, only what changed since the last complete run.
    `fresh` starts the harvest over: the new run replaces the old ones' objects when it completes.
    With `fresh_id`, a state that this same fresh request created is resumed instead of started over,
    so a scheduler may retry a failed fresh invocation as it is (see lambda_handler.py).
    """
    if fresh and mode == "refresh":
        raise ConfigError("a refresh cannot be fresh: --fresh starts the harvest over with a full run")
    request = Request(mode, fresh, fresh_id, grace_s, progress, label)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    timer = loop.call_at(deadline, stop.set) if deadline is not None else None
    logs.bind(harvest=logs.harvest_name(settings))
    own_sink = sink is None
    if sink is None:
        sink = open_sink(settings.sink)
    try:
        if shared is not None:
            arrival = shared.arrival()
            try:
                return await _harvest(settings, sink, shared, arrival, request, stop)
            finally:
                arrival.done()  # ended before TMDB: the others need not wait for it
        limiter = RateLimiter(settings.tmdb.rate_limit)
        async with TmdbClient(settings.tmdb, credentials, limiter) as client:
            own = Shared(client, limiter)
            return await _harvest(settings, sink, own, own.arrival(), request, stop)
    except BaseExceptionGroup as group:
        # TaskGroups wrap what a stage raised; the user gets the one line of the first known error.
        known = first_known(group)
        if known is None:
            raise
        raise known from None
    finally:
        if timer is not None:
            timer.cancel()
        if own_sink:
            await sink.aclose()


async def _harvest(
    settings: Settings, sink: Sink, shared: Shared, arrival: Arrival, request: Request, stop: asyncio.Event
) -> RunResult:
    # Preflight: nothing that lasts is written until the sink, the lease and the credential are
    # ours (the sink's probe is deleted, and the lease released whatever fails). The credential
    # comes last so that TMDB's first request is followed at once by the paced lookups: at 7% of a
    # core (a 128 MB Lambda) each S3 round trip costs ~0.1 s, and a pause after a request to a
    # server that counts requests per second is rate lost for good.
    fenced = fencing(await shared.preflight(sink), settings.sink, sink.url)
    lease = Lease(sink, lease_key(harvest_id(settings)), settings.sink.lease_s, fenced=fenced)
    logs.bind(writer=lease.token)
    await lease.acquire()
    client = shared.client.counted_apart()  # this harvest's requests, for its own summary
    try:
        async with asyncio.TaskGroup() as tg:
            keeper = tg.create_task(lease.keep())  # before the credential: its retries may take long
            try:
                return await _run(settings, sink, shared, arrival, client, lease, fenced, request, stop)
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
    shared: Shared,
    arrival: Arrival,
    client: TmdbClient,
    lease: Lease,
    fenced: bool,
    request: Request,
    stop: asyncio.Event,
) -> RunResult:
    """Everything that needs no TMDB comes before TMDB's first request (the credential check), so the
    paced lookups follow it at once: a server that counts requests per second loses for good what a
    pause after its first request does not use (at 7% of a core, a 128 MB Lambda, a state load and a
    count pass take seconds). Only a new run's first save, and what needs TMDB or the saved run
    (a listing, a refresh's plan, an export's pin), come after."""
    limiter = shared.limiter
    stats = Stats()
    source: Source = open_source(settings, sink)
    media = media_of(settings.source)
    store = StateStore(sink, state_key(harvest_id(settings)), fenced=fenced)
    identity = await _identity(settings, source)
    seasons = seasons_partition(settings.sink.partition) if settings.source.seasons else ""
    opener = Opener(
        store, sink, lease, identity, settings.sink.partition, _NAMES[media], seasons=seasons, defer_new=True
    )
    if request.mode == "refresh":
        state = await opener.refresh()
    else:
        state = await opener.run(request.fresh, request.fresh_id)
    logs.bind(run=state.tag)
    if state.complete:
        log.info("this harvest is already complete (`refresh` takes what changed; --fresh starts over)")
        return RunResult("complete", _summary(settings, sink, source, state, stats, client, "complete"))
    counted = None
    if state.mode == "run" and source.offline and source.count_is_cheap and state.source.selected is None:
        counted = await source.count()  # a full pass over the input, once per harvest
    await shared.credential(client, arrival)
    await opener.started()
    if counted is not None:
        state.source.selected = counted
    if state.mode == "refresh":
        source = await _refresh_source(source, media, sink, state, settings.refresh.revisit_days)
    if not await source.prepare(Prepare(client, state, store, lease, stop, shared.ended)):
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
        lookup=_lookup(client, settings),
        committer=committer,
        sink_settings=settings.sink,
        stats=stats,
        concurrency=settings.tmdb.concurrency,
        stop=stop,
        grace_s=request.grace_s,
        seasons=settings.source.seasons,
    )
    reporter = Progress(stats, client.counters, limiter, enabled=request.progress, label=request.label)
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
        async with shared.completing:
            await finish(sink, store, state)
    status: Status = "complete" if complete else "incomplete"
    summary = _summary(settings, sink, source, state, stats, client, status)
    await sink.put(summary_key(state), msgspec.json.format(msgspec.json.encode(summary), indent=2))
    return RunResult(status, summary, stopped=not exhausted)


def _lookup(client: TmdbClient, settings: Settings) -> Callable[[Title], Awaitable[Outcome]]:
    if not settings.source.seasons:
        return Lookup(client, settings.tmdb)
    own = settings.tmdb.append
    fetch = SeasonFetcher(client, settings.tmdb.language, own)
    return WithSeasons(Lookup(client, settings.tmdb, first_seasons(own)), fetch)


async def _refresh_source(
    inner: Source, media: Media, sink: Sink, state: RunState, revisit_days: int
) -> Source:
    assert state.base is not None and state.since is not None, "a refresh run names its base"
    base = await load_selection(sink, state.base)
    if base is None:
        raise StateError(f"the selection of run {state.base.tag} is missing; run with --fresh")
    since = datetime.fromisoformat(state.since)
    return RefreshSource(inner, media, sink, since, base, revisit_days=revisit_days)


_NAMES = {"movie": "movies", "tv": "series", "person": "people"}
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
        tmdb=TmdbIdentity(
            base_url=t.base_url,
            language=t.language,
            append=list(t.append),
            lookup=t.lookup,
            seasons=s.seasons,
        ),
        sink=SinkIdentity(
            chunk_size=k.chunk_size, format=k.format, compression=k.compression, partition=k.partition
        ),
    )


def _seasons_summary(sink: Sink, state: RunState, stats: Stats) -> SeasonsSummary | None:
    if not state.seasons:
        return None
    where = f"{sink.url.rstrip('/')}/{state.seasons}/"
    return SeasonsSummary(records=stats.seasons, left_out=stats.seasons_left_out, output=where)


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
        refresh=refresh_summary(state.source.plan),
        seasons=_seasons_summary(sink, state, stats),
    )
