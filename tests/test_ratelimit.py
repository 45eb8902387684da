"""The pacer's guarantees, on a fake clock: no sleeping, exact arithmetic."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import pytest

from harvester.tmdb.ratelimit import RateGovernor, RateLimiter, next_slot


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


def max_in_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("rate", [1.0, 2.5, 40.0, 100.0])
async def test_never_more_than_rate_in_any_window_and_no_bursts(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    times: list[float] = []

    async def worker() -> None:
        for _ in range(30):
            await limiter.acquire()
            times.append(clock())

    async with asyncio.TaskGroup() as tg:
        for _ in range(10):
            tg.create_task(worker())
    times.sort()
    assert len(times) == 300
    assert max_in_window(times, 1.0) <= max(1, int(rate))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 / rate - 1e-9
    # and it runs close to the limit: the margin costs about 2 %
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * min(rate, max(1, int(rate)) / 1.02) or rate < 2


async def test_first_grant_is_immediate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(40, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    assert clock.now == 1000.0


async def test_throttle_pauses_everyone_and_lowers_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(40, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    limiter.throttled(3.0)
    await limiter.acquire()
    assert clock.now >= 1003.0
    assert limiter.rate == pytest.approx(36.0)
    assert limiter.throttles == 1


def test_governor_recovers_a_step_per_seconds_worth_of_successes() -> None:
    g = RateGovernor(40.0)
    g.on_throttled()
    g.on_throttled()
    assert g.current == pytest.approx(40 * 0.81)
    for _ in range(39):
        g.on_success()
    assert g.current == pytest.approx(40 * 0.81)  # not before 40 successes (about a second)
    g.on_success()
    assert g.current == pytest.approx(40 * 0.83)
    for _ in range(40 * 100):
        g.on_success()
    assert g.current == 40.0  # and never above the configured rate
    for _ in range(100):
        g.on_throttled()
    assert g.current == pytest.approx(10.0)  # never below a quarter of the configured rate


def test_next_slot_is_pure_arithmetic() -> None:
    h = deque([0.0, 0.5], maxlen=2)
    assert next_slot(h, 0.6, cap=2, span=1.0, spacing=0.5, floor=0.0) == 1.0
    assert next_slot(h, 2.0, cap=2, span=1.0, spacing=0.5, floor=3.0) == 3.0


class LateClock(FakeClock):
    """Every sleep overshoots: the event loop wakes us `late` seconds after the time asked for."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + self.late)


@pytest.mark.parametrize("late", [0.002, 0.05])
async def test_late_wakeups_neither_slow_the_pace_nor_burst(late: float) -> None:
    clock = LateClock(late)
    limiter = RateLimiter(40.0, clock=clock, sleep=clock.sleep)
    times: list[float] = []
    for _ in range(200):
        await limiter.acquire()
        times.append(clock())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max_in_window(times, 1.0) <= 40
    achieved = (len(times) - 1) / (times[-1] - times[0])
    if late <= 0.005:
        # a little lateness is made up for: the pace stays at the window's 40 per 1.02 s
        assert achieved >= 0.99 * 40 / 1.02
        assert min(gaps) >= 1 / 40 - late - 1e-9
    else:
        # a stall is not made up for by a burst: every gap is at least the spacing
        assert min(gaps) >= 1 / 40 - 1e-9
