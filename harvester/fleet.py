"""Several harvests in one process, under one rate budget: the layer above the runner.

A config may list harvests (`[[harvest]]`, config.Deployment). They run at once, as tasks of one
TaskGroup, sharing what one IP and one deployment have once: the rate limiter and the connection pool
(one `TmdbClient`, so the whole per-IP budget is used and never exceeded: while one harvest enumerates
a listing or waits on S3, the others' lookups keep the pacer busy; when one completes, the rest take
its share), the credential check, and the sink with its preflight. Each keeps its own lease, state,
commits and summary (runner.py does one harvest, as it always has).

A failure of one harvest (a lease held elsewhere, a bad input, TMDB refusing its query) is its outcome,
not the others' end: the others go on, and the process's exit code is the most urgent of theirs
(`URGENCY`). Only a stop (signal, deadline) or the second signal's cancellation ends them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Unpack

from .config import Credentials, Deployment, Settings
from .errors import EXIT_INTERRUPTED, EXIT_OK, HarvesterError, TmdbUnavailable, first_known
from .lake.sink import Sink, open_sink
from .ops import logs
from .ops.progress import LOG_INTERVAL_S
from .ops.stats import Summary
from .reference import ReferenceResult, reference_beside
from .runner import Options, RunResult, Shared, harvest
from .tmdb.client import TmdbClient
from .tmdb.ratelimit import RateLimiter

log = logging.getLogger(__name__)

EXIT_PENDING = TmdbUnavailable.exit_code  # titles still pending after their retries
EXIT_INTERNAL = 1
# Most urgent first: what needs a person (config, input, credential; a bug), then the store, then what a
# scheduler retries later (TMDB, a lease), then a stop on purpose (resume at once), then done.
URGENCY = (2, 3, EXIT_INTERNAL, 4, 5, 6, EXIT_INTERRUPTED, EXIT_OK)


@dataclass(frozen=True)
class Outcome:
    """How one harvest of the list ended: its result, or the error that ended it."""

    name: str
    result: RunResult | None = None
    error: HarvesterError | None = None
    internal: str | None = None  # an unexpected error's one line (a bug: exit 1)

    @property
    def exit_code(self) -> int:
        if self.internal is not None:
            return EXIT_INTERNAL
        if self.error is not None:
            return self.error.exit_code
        assert self.result is not None
        if self.result.status == "complete":
            return EXIT_OK
        return EXIT_INTERRUPTED if self.result.stopped else EXIT_PENDING

    @property
    def summary(self) -> Summary | None:
        return self.result.summary if self.result is not None else None


@dataclass(frozen=True)
class FleetResult:
    outcomes: tuple[Outcome, ...]
    requests: int  # all the harvests' requests (the shared client's), the reference tables' too
    throttled: int
    reference: ReferenceResult | None = None  # what the run wrote of the reference tables (reference.py)

    @property
    def exit_code(self) -> int:
        return most_urgent(o.exit_code for o in self.outcomes)

    @property
    def complete(self) -> bool:
        return all(o.exit_code == EXIT_OK for o in self.outcomes)


def format_fleet(fleet: FleetResult) -> str:
    """The total of a list of harvests, after each one's own summary (pure)."""
    codes = [o.exit_code for o in fleet.outcomes]
    done = [o.summary for o in fleet.outcomes if o.summary is not None]
    elapsed = max((s.elapsed_s for s in done), default=0.0)
    rate = fleet.requests / elapsed if elapsed > 0 else 0.0
    limit = max((s.rate_limit for s in done), default=0.0)
    return "\n".join(
        [
            f"== all {len(codes)} harvests: {codes.count(EXIT_OK)} complete, "
            f"{sum(c in (EXIT_INTERRUPTED, EXIT_PENDING) for c in codes)} incomplete, "
            f"{sum(c not in (EXIT_OK, EXIT_INTERRUPTED, EXIT_PENDING) for c in codes)} failed "
            f"(exit {fleet.exit_code})",
            f"harvested        {sum(s.harvested for s in done)}  (misses "
            f"{sum(sum(s.misses.values()) for s in done)}, failures {sum(s.failed for s in done)}, "
            f"pending {sum(s.pending for s in done)})",
            f"requests         {fleet.requests}  (429s {fleet.throttled}) in {elapsed:.1f} s: "
            f"{rate:.1f} requests/s (limit {limit:g}, shared)",
            *([fleet.reference.line()] if fleet.reference is not None else []),
        ]
    )


def most_urgent(codes: Iterable[int]) -> int:
    """The exit code of a process whose harvests ended with `codes` (pure; unknown codes rank first)."""
    ranked = sorted(codes, key=lambda c: URGENCY.index(c) if c in URGENCY else -1)
    return ranked[0] if ranked else EXIT_OK


async def harvest_all(
    deployment: Deployment, credentials: Credentials, **options: Unpack[Options]
) -> FleetResult:
    """Run (or resume) every harvest of `deployment` at once, under one rate limiter (`options` are
    runner.harvest's)."""
    stop = options["stop"] = options.get("stop") or asyncio.Event()
    deadline = options.get("deadline")
    progress = options.get("progress", True)
    limiter = RateLimiter(deployment.tmdb.rate_limit)
    sinks: dict[tuple[str, str, str], Sink] = {}
    try:
        async with TmdbClient(deployment.tmdb, credentials, limiter) as client:
            # One more arrival: the reference tables, asked beside the harvests after the credential check.
            shared = Shared(client, limiter, harvests=len(deployment.harvests) + 1)
            shared.running(h.name for h in deployment.harvests)  # a people harvest waits for its `from`
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(
                        _one(
                            h.name,
                            harvest(
                                h,
                                credentials,
                                label=h.name if deployment.listed else "",
                                shared=shared,
                                sink=_sink_of(sinks, h),
                                **options,
                            ),
                            shared,
                        )
                    )
                    for h in deployment.harvests
                ]
                first = _sink_of(sinks, deployment.harvests[0])  # a list's harvests share [sink]'s place
                reference = tg.create_task(
                    reference_beside(shared, first, deployment, stop=stop, deadline=deadline)
                )
                if progress and deployment.listed:
                    tg.create_task(_report_total(tasks, client, deployment.tmdb.rate_limit))
            return FleetResult(
                tuple(t.result() for t in tasks),
                client.counters.requests,
                client.counters.throttled,
                reference.result(),
            )
    finally:
        for sink in sinks.values():
            await sink.aclose()


async def harvest_one(settings: Settings, credentials: Credentials, **options: Unpack[Options]) -> RunResult:
    """A config of one harvest, as the CLI and Lambda run it: runner.harvest (`options` are its), with
    the reference tables beside it under the same budget (reference.py). Raises what ended the
    harvest, as runner.harvest does; the reference tables never end it."""
    stop = options["stop"] = options.get("stop") or asyncio.Event()
    deadline = options.get("deadline")
    logs.bind(harvest=logs.harvest_name(settings))  # the reference tables' lines name it too
    limiter = RateLimiter(settings.tmdb.rate_limit)
    sink = open_sink(settings.sink)
    try:
        async with TmdbClient(settings.tmdb, credentials, limiter) as client:
            shared = Shared(client, limiter, harvests=2)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    reference_beside(shared, sink, Deployment((settings,)), stop=stop, deadline=deadline)
                )
                result = await harvest(settings, credentials, shared=shared, sink=sink, **options)
            return result
    except BaseExceptionGroup as group:  # the TaskGroup wraps what the harvest raised
        known = first_known(group)
        if known is None:
            raise
        raise known from None
    finally:
        await sink.aclose()


async def _report_total(tasks: list[asyncio.Task[Outcome]], client: TmdbClient, limit: float) -> None:
    """Every LOG_INTERVAL_S while harvests run, a line of the total beside each harvest's own."""
    started = time.monotonic()
    running = set(tasks)
    while running:
        _, running = await asyncio.wait(running, timeout=LOG_INTERVAL_S)
        if running:
            c = client.counters
            rate = c.requests / max(time.monotonic() - started, 1e-9)
            log.info(
                "all harvests: %d of %d running | %d requests, %.1f req/s (limit %g, shared) | 429s %d",
                len(running), len(tasks), c.requests, rate, limit, c.throttled,
            )  # fmt: skip


def _sink_of(sinks: dict[tuple[str, str, str], Sink], settings: Settings) -> Sink:
    """One sink (one S3 client) per place written, however many harvests write it."""
    s = settings.sink
    place = (s.url, s.endpoint_url, s.region)
    if place not in sinks:
        sinks[place] = open_sink(s)
    return sinks[place]


async def _one(name: str, run: Coroutine[Any, Any, RunResult], shared: Shared) -> Outcome:
    """One harvest's run, to its outcome: what ends it is its own, not the others'. However it ends,
    the harvests that read it (people harvests, `from`) then go on."""
    try:
        return await _outcome(name, run)
    finally:
        shared.end(name)


async def _outcome(name: str, run: Coroutine[Any, Any, RunResult]) -> Outcome:
    try:
        result = await run
    except HarvesterError as exc:
        log.error('harvest "%s": %s', name, exc)
        return Outcome(name, error=exc)
    except BaseExceptionGroup as group:
        known = first_known(group)
        if known is None:
            raise
        log.error('harvest "%s": %s', name, known)
        return Outcome(name, error=known)
    except Exception as exc:  # a bug in one harvest must not end the others; CancelledError passes
        log.exception('harvest "%s": internal error', name)
        return Outcome(name, internal=f"{exc.__class__.__name__}: {exc}")
    return Outcome(name, result=result)
