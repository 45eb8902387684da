"""The pacer's guarantees, on fake clocks: no sleeping, exact arithmetic.

Two kinds of fake time: `FakeClock` (each sleep moves the clock, one sleeper at a time), and
`VirtualTimeLoop`, an event loop whose clock jumps to the next timer instead of waiting for it, for
runs with many requests in flight against a modelled server (`WindowServer`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import selectors
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from harvester.tmdb.ratelimit import (
    CATCH_UP_S,
    MAX_LAG_S,
    PROBES,
    QUICK_RAISE_S,
    SLOW_RAISE_S,
    CapFinder,
    Grant,
    RateLimiter,
    level_of,
    next_slot,
)

T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # what is ready runs first, at the current time, as in a real loop
        self.now += max(0.0, seconds)


def max_in_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def paced(limiter: RateLimiter, clock: Callable[[], float], n: int, workers: int = 10) -> list[float]:
    """Grant times of `n` acquires by `workers` tasks, every answer an instant acceptance."""
    times: list[float] = []

    async def worker() -> None:
        while len(times) < n:
            grant = await limiter.acquire()
            times.append(clock())
            limiter.accepted(grant)

    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())
    return sorted(times)


@pytest.mark.parametrize("rate", [1.0, 2.5, 40.0, 100.0])
async def test_never_more_than_rate_in_any_window_and_no_bursts(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    times = await paced(limiter, clock, 300)
    assert max_in_window(times, 1.0) <= max(1, int(rate))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 / rate - 1e-9
    # and it runs close to the limit: the margin costs about 2 %
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * min(rate, max(1, int(rate)) / 1.02) or rate < 2


async def test_first_grant_is_immediate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(40, clock=clock, sleep=clock.sleep)
    grant = await limiter.acquire()
    assert clock.now == 1000.0
    assert grant == Grant(1000.0, 1, probe=False)


async def test_a_pause_holds_everyone_and_an_unexplained_429_lowers_the_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(40, clock=clock, sleep=clock.sleep)
    grant = await limiter.acquire()  # level 1: presumed, so a 429 here is not the cap's doing
    assert not limiter.throttled(grant)
    limiter.pause(3.0)
    await limiter.acquire()
    assert clock.now >= 1003.0
    assert limiter.cap == 10  # level 1 - 1, held up by the floor (a quarter of the configured rate)
    assert limiter.throttles == 1
    clock.now += QUICK_RAISE_S
    await limiter.acquire()
    assert limiter.cap == 40  # and back where it was soon after: the server had taken that before


def test_next_slot_is_pure_arithmetic() -> None:
    h = deque([0.0, 0.5], maxlen=2)
    assert next_slot(h, 0.6, cap=2, span=1.0, due=0.0, floor=0.0) == 1.0
    assert next_slot(h, 2.0, cap=2, span=1.0, due=0.0, floor=3.0) == 3.0
    assert next_slot(h, 2.0, cap=2, span=1.0, due=2.5, floor=0.0) == 2.5
    assert next_slot(h, 0.6, cap=3, span=1.0, due=0.0, floor=0.0) == 0.6


def test_level_counts_the_window_ending_at_the_last_grant() -> None:
    h = deque([0.0, 0.5, 0.9, 1.0])
    assert level_of(h, 1.0, 1.0) == 3  # (0.0, 1.0]: half-open, as the server's window
    assert level_of(h, 1.0, 1.02) == 4
    h.append(1.4)
    assert level_of(h, 1.4, 1.0) == 4  # (0.4, 1.4]


# ------------------------------------------------------------------------------------------------
# Finding the server's limit: the arithmetic


def grant(level: int, finder: CapFinder) -> Grant:
    return Grant(0.0, level, finder.granted(level))


def test_a_429_caps_the_window_at_the_level_below_it() -> None:
    f = CapFinder.for_rate(50)
    assert (f.cap, f.proven, f.floor) == (50, 25, 12)
    for level in range(1, 41):
        f.accepted(grant(level, f), now=0.0)
    assert f.proven == 40
    over = [grant(level, f) for level in (41, 42, 43)]
    assert all(g.probe for g in over)
    assert f.throttled(over[0], now=1.0)  # a probe: the cap explains it, no pause needed
    assert (f.cap, f.proven) == (40, 40)
    # the ones sent before the answer came say nothing new: the window was already over
    assert f.throttled(over[1], now=1.0) and f.throttled(over[2], now=1.0)
    assert f.cap == 40
    assert f.probes == 0


def test_only_a_few_probes_fly_at_once() -> None:
    f = CapFinder.for_rate(50)
    probes = [grant(level, f) for level in range(26, 26 + PROBES)]
    assert f.allowed(0.0) == f.proven == 25  # no more levels above the proven one until an answer
    f.accepted(probes[0], now=0.0)
    assert f.proven == 26
    assert f.allowed(0.0) == 50
    f.lost(probes[1])  # a cancelled or failed request frees its place too
    f.throttled(probes[2], now=0.0)
    assert f.probes == 0
    assert f.cap == 27


def test_the_cap_rises_slowly_back_to_the_configured_rate_and_never_above() -> None:
    f = CapFinder.for_rate(42)
    f.accepted(grant(40, f), now=0.0)
    f.throttled(grant(41, f), now=0.0)  # the limit is 40
    assert f.cap == 40
    assert f.allowed(SLOW_RAISE_S - 1) == 40
    assert f.allowed(SLOW_RAISE_S) == 41  # one level up, a minute later
    failed = grant(41, f)
    assert failed.probe and f.allowed(SLOW_RAISE_S) == 40  # one probe at a time for a raise
    f.throttled(failed, now=SLOW_RAISE_S)
    assert f.cap == 40
    assert f.allowed(SLOW_RAISE_S * 3 - 1) == 40  # a failed raise doubles the wait
    assert f.allowed(SLOW_RAISE_S * 3) == 41
    f.accepted(grant(41, f), now=SLOW_RAISE_S * 3)  # the server's limit rose: a held raise halves it
    assert f.allowed(SLOW_RAISE_S * 5 - 1) == 41
    assert f.allowed(SLOW_RAISE_S * 5) == 42
    f.accepted(grant(42, f), now=SLOW_RAISE_S * 5)
    assert f.allowed(SLOW_RAISE_S * 100) == 42  # the configured rate is the ceiling


def test_a_429_at_an_accepted_level_is_raised_back_quickly() -> None:
    f = CapFinder.for_rate(40)
    f.accepted(grant(40, f), now=0.0)
    assert not f.throttled(grant(40, f), now=0.0)  # jitter, or a brief dip: pause, and one down
    assert f.cap == 39
    assert f.allowed(QUICK_RAISE_S) == 40


def test_never_below_the_floor() -> None:
    f = CapFinder.for_rate(40)
    for _ in range(100):
        f.throttled(grant(1, f), now=0.0)
    assert f.cap == f.floor == 10
    assert CapFinder.for_rate(0.5).floor == 1  # at least one request a window: progress


# ------------------------------------------------------------------------------------------------
# Many requests in flight: an event loop on virtual time, and a server that counts a sliding window


class _VirtualSelector(selectors.DefaultSelector):
    """Waiting for I/O with a timeout moves the virtual clock instead (there is no real I/O)."""

    now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("nothing is scheduled: the simulated run is stuck")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.virtual = _VirtualSelector()
        super().__init__(self.virtual)

    def time(self) -> float:
        return self.virtual.now

    def freeze(self, seconds: float) -> None:
        """Nothing runs for `seconds`: a process out of CPU (a throttled cgroup) or stopped."""
        self.virtual.now += seconds


def run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


class WindowServer:
    """At most `limit` arrivals in any 1 s window, the rejected ones counted too (as TMDB appears to
    and the stand-in does), answered after `latency`."""

    def __init__(self, limit: int, latency: tuple[float, float], rng: random.Random) -> None:
        self.limit, self.latency, self.rng = limit, latency, rng
        self.arrivals: list[float] = []
        self.rejected = 0
        self._window: deque[float] = deque()

    async def request(self) -> int:
        now = asyncio.get_running_loop().time()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        self._window.append(now)
        self.arrivals.append(now)
        over = len(self._window) > self.limit
        self.rejected += over
        await asyncio.sleep(self.rng.uniform(*self.latency))
        return 429 if over else 200

    @property
    def ratio(self) -> float:
        """Achieved rate / limit, first to last arrival (as bench/ measures it at the stand-in)."""
        a = self.arrivals
        return (len(a) - 1) / (a[-1] - a[0]) / self.limit


async def harvest(
    limiter: RateLimiter,
    server: WindowServer,
    requests: int,
    workers: int = 20,
    stall: Callable[[], None] = lambda: None,
) -> None:
    """What the client does with the limiter: a 429 the limiter cannot explain pauses everyone.
    `stall` runs between each grant and its request (a process that may lose the CPU there)."""
    titles = iter(range(requests))

    async def worker() -> None:
        for _ in titles:
            throttles = 0
            while True:
                grant = await limiter.acquire()
                stall()
                if await server.request() != 429:
                    limiter.accepted(grant)
                    break
                throttles += 1
                if not limiter.throttled(grant):
                    limiter.pause(0.5 * 2 ** min(throttles - 1, 6))

    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())


def drive(
    rate: float, limit: int, requests: int, changes: tuple[tuple[float, int], ...] = ()
) -> tuple[WindowServer, RateLimiter]:
    """`requests` successful requests at `rate` against a server at `limit` (150 ms latency), the
    server's limit changing at the times `changes` give."""

    async def main(loop: VirtualTimeLoop) -> tuple[WindowServer, RateLimiter]:
        server = WindowServer(limit, (0.15, 0.15), random.Random(1))
        for at, new_limit in changes:
            loop.call_at(at, setattr, server, "limit", new_limit)
        limiter = RateLimiter(rate)
        await harvest(limiter, server, requests)
        return server, limiter

    return run_virtual(main)


@pytest.mark.parametrize("rate", [50.0, 60.0])
def test_a_rate_configured_too_high_finds_the_real_limit(rate: float) -> None:
    server, limiter = drive(rate, 40, 2346)  # about a minute, as bench/limit.py runs it
    assert limiter.cap == 40
    assert server.ratio >= 0.93
    assert server.rejected / len(server.arrivals) * 1000 <= 2
    assert max_in_window(server.arrivals, 1.0) <= int(rate)  # never above the configured rate


def test_configured_right_it_holds_the_limit_with_no_429() -> None:
    server, _ = drive(40.0, 40, 2346)
    assert server.ratio >= 0.96
    assert server.rejected == 0


def test_a_limit_that_rises_is_followed_up_to_the_configured_rate() -> None:
    server, limiter = drive(44.0, 40, 15_000, changes=((30.0, 50),))  # about six minutes
    assert limiter.cap == 44  # climbed one level at a time, and no further
    tail = [t for t in server.arrivals if t > server.arrivals[-1] - 30]
    assert max_in_window(tail, 1.0) == 44
    assert server.rejected / len(server.arrivals) * 1000 <= 1


def test_a_limit_that_drops_is_followed_down() -> None:
    server, limiter = drive(40.0, 40, 6000, changes=((30.0, 30),))
    assert limiter.cap == 30
    tail = [t for t in server.arrivals if t > 60]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) >= 0.95 * 30
    assert server.rejected <= 20


def test_a_starved_process_keeps_the_pace_without_bursting_over_the_window() -> None:
    """Stalls of up to 90 ms every half second or so (a 128 MB Lambda's throttled CPU periods): the
    grants a stall owes go out when it ends, and no window holds more than the cap."""

    async def main(loop: VirtualTimeLoop) -> list[float]:
        rng = random.Random(2)
        limiter = RateLimiter(40.0)

        async def stalls() -> None:
            while True:
                await asyncio.sleep(rng.uniform(0.25, 0.75))
                loop.freeze(rng.uniform(0.0, 0.09))

        stalling = asyncio.ensure_future(stalls())
        try:
            return await paced(limiter, loop.time, 2400)
        finally:
            stalling.cancel()

    times = run_virtual(main)
    assert max_in_window(times, 1.0) <= 40
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.97 * 40 / 1.02
    burst = max(len(list(g)) for _, g in itertools.groupby(times))
    assert burst <= 1 + MAX_LAG_S * 40  # what a stall owes, at most MAX_LAG_S of the pace


def test_a_request_held_up_after_its_grant_is_counted_from_when_it_left() -> None:
    """A throttled process can stall between the grant and the send (measured at 128 MB: 1-2 429s a
    minute before): the window counts such a request from when it left, so the server never sees more
    than the limit in its second, whatever the stall."""

    async def main(loop: VirtualTimeLoop) -> WindowServer:
        rng = random.Random(3)
        server = WindowServer(40, (0.1, 0.2), rng)

        def stall() -> None:
            if rng.random() < 0.05:
                loop.freeze(rng.uniform(0.0, 0.09))

        await harvest(RateLimiter(40.0), server, 2400, stall=stall)
        return server

    server = run_virtual(main)
    assert server.rejected == 0
    assert server.ratio >= 0.95


class LateClock(FakeClock):
    """Every sleep overshoots: the event loop wakes us `late` seconds after the time asked for."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + self.late)


@pytest.mark.parametrize("late", [0.002, 0.05])
async def test_late_wakeups_neither_slow_the_pace_nor_burst_over_the_window(late: float) -> None:
    clock = LateClock(late)
    limiter = RateLimiter(40.0, clock=clock, sleep=clock.sleep)
    times = await paced(limiter, clock, 200)
    assert max_in_window(times, 1.0) <= 40
    achieved = (len(times) - 1) / (times[-1] - times[0])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if late < CATCH_UP_S:  # a few ms late: recorded as on time, and the gaps stay even
        assert achieved >= 0.99 * 40 / 1.02
        assert min(gaps) >= 1 / 40 - late - 1e-9
    else:
        # Lateness does not compound: the grants it held up go out together when it ends. Only a
        # grant the window itself held back stays late (the server must not see it early), so a
        # clock late on every wake-up costs its lateness once a window, not once a grant (old: 13/s).
        assert achieved >= 0.99 * 40 / (1.02 + late)
