"""A request pacer that never lets more than the configured rate through in any sliding window.

Why not `aiolimiter.AsyncLimiter(rate, 1)`: a leaky bucket that starts empty admits `rate` at once and
then `rate` per second, so a sliding one-second window at the server can see almost twice the limit.
TMDB's limit is per sliding window, so the guarantee we need is stronger:

* at most `cap = max(1, floor(rate))` grants in any window of `1 s + margin`; the margin absorbs the
  jitter between our grant and the request's arrival at the server;
* consecutive grants at least `1/rate` apart, so there are no bursts either;
* a shared pause: one 429 slows every worker, and the effective rate backs off multiplicatively and
  creeps back up while requests succeed (TMDB's real limit "sits somewhere in the 40 range").

The arithmetic (`next_slot`, `RateGovernor`) is pure; `RateLimiter` only adds the waiting.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

WINDOW_S = 1.0
DEFAULT_MARGIN_S = 0.02
CATCH_UP_S = 0.005


def next_slot(
    history: deque[float], now: float, cap: int, span: float, spacing: float, floor: float
) -> float:
    """The earliest time a new grant may happen, given the times of the last `cap` grants."""
    t = max(now, floor)
    if history:
        t = max(t, history[-1] + spacing)
    if len(history) >= cap:
        t = max(t, history[-cap] + span)
    return t


@dataclass
class RateGovernor:
    """Multiplicative decrease on 429, additive recovery on success (pure state machine).

    Recovery takes a step per second's worth of successes (`recover_every` defaults to the configured
    rate): after one stray 429 (say, a stall that bunched two requests) the full rate is back within
    about 5 s, while a server whose real limit is lower keeps pushing the rate down. Measured with
    bench/run.py: recovering a step per 200 successes instead cost 7% of a 70 s run after one 429.
    """

    configured: float
    current: float = 0.0
    min_fraction: float = 0.25
    decrease: float = 0.9
    recover_every: int = 0  # successes without a 429 per step back up; 0: the configured rate
    recover_step: float = 0.02  # of the configured rate
    _streak: int = 0

    def __post_init__(self) -> None:
        self.current = self.configured
        if self.recover_every <= 0:
            self.recover_every = max(1, round(self.configured))

    def on_throttled(self) -> None:
        self.current = max(self.configured * self.min_fraction, self.current * self.decrease)
        self._streak = 0

    def on_success(self) -> None:
        if self.current >= self.configured:
            return
        self._streak += 1
        if self._streak >= self.recover_every:
            self._streak = 0
            self.current = min(self.configured, self.current + self.configured * self.recover_step)


class RateLimiter:
    """Await `acquire()` right before each request. Create it inside the running loop."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN_S,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._governor = RateGovernor(rate)
        self._margin = margin
        self._clock = clock or asyncio.get_running_loop().time
        self._sleep = sleep
        self._history: deque[float] = deque(maxlen=max(1, math.floor(rate)))
        self._pause_until = 0.0
        self._lock = asyncio.Lock()
        self.grants = 0
        self.throttles = 0

    @property
    def rate(self) -> float:
        """The rate in force now (the configured one unless 429s pushed it down)."""
        return self._governor.current

    def _slot(self, now: float) -> float:
        rate = self._governor.current
        cap = max(1, math.floor(rate))
        return next_slot(self._history, now, cap, WINDOW_S + self._margin, 1.0 / rate, self._pause_until)

    async def acquire(self) -> None:
        # One waiter at a time plans and sleeps: grants are sequential by nature (spacing), and
        # re-planning after each sleep picks up a pause that a 429 set meanwhile.
        async with self._lock:
            while True:
                now = self._clock()
                slot = self._slot(now)
                if slot <= now:
                    break
                await self._sleep(slot - now)
            # Record the planned time when we woke a little late (up to CATCH_UP_S), so wake-up
            # latency does not add to every gap (26-27 ms instead of 25 at 40/s under load); a longer
            # stall is not made up for, since that would send a burst.
            allowed = self._slot(-math.inf)  # when the constraints let this grant happen
            self._history.append(allowed if allowed > now - CATCH_UP_S else now)
            self.grants += 1

    def throttled(self, delay: float) -> None:
        """A 429 arrived: every worker waits `delay` seconds, and the rate backs off."""
        self.throttles += 1
        self._governor.on_throttled()
        self._pause_until = max(self._pause_until, self._clock() + delay)

    def succeeded(self) -> None:
        self._governor.on_success()
