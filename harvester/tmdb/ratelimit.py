"""A request pacer for a server that counts requests in a sliding window, and finds its real limit.

Why not `aiolimiter.AsyncLimiter(rate, 1)`: a leaky bucket that starts empty admits `rate` at once and
then `rate` per second, so a sliding one-second window at the server can see almost twice the limit.
TMDB's limit is per sliding window, so the guarantee we need is stronger:

* at most `cap` grants in any window of `1 s + margin`; the margin absorbs the jitter between our grant
  and the request's arrival at the server. `cap` starts at the configured rate (`floor`, at least 1)
  and never exceeds it;
* a pace of one grant per `1/rate`, so there are no bursts either. Grants follow a schedule: one that
  wakes late (a loaded or CPU-throttled process) keeps the schedule instead of shifting it, so lateness
  does not add up; after a stall the grants it owes go out at once, as many as the window has room for
  and at most `MAX_LAG_S` of them (measured under a 128 MB Lambda's CPU share: 1.8 s of lateness in
  33 s, 5% of the rate, was lost before);
* the server's real limit, when the configured rate is above it, is found from its 429s, and so is
  this process's share when other processes spend the same budget (`CapFinder`).

TMDB's window counts the requests it rejects too, so a client above the limit gets a 429 for every
request until it slows down, and it learns of the first one only a round trip later: about
`rate x latency` 429s (8 at 50/s and 150 ms). So levels above what the server has been seen to
accept are probed a few requests at a time: the level of a grant is how many grants its window holds,
itself included; a 429 at level `n` says the server takes at most `n - 1`, and the cap goes there.

Several processes behind one IP (two stacks on one schedule, a colleague's script behind the same NAT)
share TMDB's budget without seeing each other: each sees the others only in 429s at levels the server
had accepted from it. Half the configured rate is where they meet. A limit found at or near it
(within a burst) is a share of a budget others spend too (a rate configured twice too high is not
expected; a newcomer's probes find a little more than half while the other pauses), and so is a 429
that one process alone would not get: at or below half, with room left in its own window beyond
what a catch-up burst explains, or one of a run of them, refused in a row over a few paces with none
accepted after the first. A newcomer's requests fill the window, and TMDB counts the refused ones
too, so everything the two have in flight is refused until they react, about (rate a + rate b) x
latency requests; alone, jitter that takes the window over is followed by accepted requests, and a
stall's catch-up burst goes out at one time. With evidence, a process above half goes to half at
once, even at a 429 for a request sent before its cap came down (an echo, otherwise nothing new), so
two that meet split the budget in one burst of 429s rather than a see-saw of them; at or below half,
a 429 costs one level. Without evidence, a 429 at an accepted level is a stray (jitter, the CDN) and
costs one level too. Either level is given back soon, but at most once every `SHARED_RAISE_S`. A
share probes for more only every `SHARED_RAISE_S` (how late it notices that the others have gone; a
probe that finds no room costs a 429 or two), then climbs in doubling steps while the raises hold.

The arithmetic (`next_slot`, `level_of`, `CapFinder`) is pure; `RateLimiter` only adds the waiting.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

WINDOW_S = 1.0
DEFAULT_MARGIN_S = 0.02
CATCH_UP_S = 0.005  # a grant this late is recorded at its planned time (within the margin)
MAX_LAG_S = 0.1  # schedule made up after a stall; a CFS-throttled period lasts up to 0.1 s

MIN_FRACTION = 0.25  # the cap never goes below this share of the configured rate
PRESUMED_FRACTION = 0.5  # levels up to this share go unprobed: a rate configured 2x too high is not
# expected, so a limit found at or below it is a share of a budget other processes spend too
PROBES = 3  # probes in flight at once (after as many accepted): the ramp's speed, the most 429s it costs
QUICK_RAISE_S = 5.0  # after a stray 429 at an accepted level; and after a raise that held
SLOW_RAISE_S = 60.0  # after a probe's 429; doubles with every failed raise...
MAX_RAISE_S = 600.0  # ...up to this
SHARED_RAISE_S = 120.0  # between raises while sharing: how late a share notices that the others left
SHARED_MEMORY_S = 2 * SHARED_RAISE_S  # how long evidence of sharing counts
STORM = 4  # refused in a row over STORM - 1 paces, none accepted after: others fill the window


def next_slot(history: deque[float], now: float, cap: int, span: float, due: float, floor: float) -> float:
    """The earliest time a new grant may happen: not before `now`, `floor` (a pause), `due` (the pace),
    nor while the last `cap` grants all lie within `span`."""
    t = max(now, floor, due)
    if len(history) >= cap:
        t = max(t, history[-cap] + span)
    return t


def level_of(history: deque[float], t: float, span: float) -> int:
    """How many grants of `history` (sorted) lie within the `span` ending at `t`."""
    return len(history) - bisect.bisect_right(history, t - span)


@dataclass(frozen=True, slots=True)
class Grant:
    at: float  # on the limiter's clock
    level: int  # grants in the window ending at `at`, this one included
    probe: bool  # above the highest level the server has accepted: its answer is awaited


@dataclass
class CapFinder:
    """How many grants per window are in force: the configured cap until 429s show a lower one.

    Pure state, times passed in. `proven` is the highest level the server has accepted (or presumed);
    a grant above it is a probe. Probes go one at a time after a 429, then up to `PROBES` in flight as
    they are accepted (one when a single level is in question), so finding a limit costs a few 429s,
    not a round trip's worth. A probe's 429 at level `n` lowers the cap to `n - 1`, never below
    `floor`, and the cap goes up again one level after a wait that doubles with each failed raise;
    a raise that holds makes the next one come after `QUICK_RAISE_S` and twice as big.

    A 429 at a level the server had accepted (`throttled` of a grant that is no probe) means the
    window held other requests too: other processes on the address, jitter, the CDN, a lower limit.
    Evidence of sharing (`shared_at`) is such a 429 at or below `share` (half the configured rate) or
    more than a `burst` below the cap, a run of them (`_in_a_row`), or a limit found within a `burst`
    of `share`. While there is evidence, such a 429 takes a cap above `share` to it, and raises come
    every `SHARED_RAISE_S`. Otherwise a 429 for a grant made before the cap last came down (`cut_at`)
    is the echo of the same overflow, nothing new; a new one takes the cap a level down (below the
    429's level, if above `share`: a stray), and back after `QUICK_RAISE_S` unless a cap went back up
    in the last `SHARED_RAISE_S` (then the window is tighter than one stray).
    """

    configured: int
    floor: int
    proven: int
    cap: int = 0
    share: int = 0  # half the configured rate: a limit at or below it is a share of a shared budget
    burst: int = 1  # the most grants at one time: what a stall owes (MAX_LAG_S of the pace) and one;
    # their levels below the last one's are only in our count, the server sees them as one
    probes: int = 0
    ramp: int = 1  # probes allowed in flight: one after a 429, one more for each accepted
    raise_at: float = math.inf
    raise_wait: float = SLOW_RAISE_S
    raising: bool = False  # the cap went up and its new top level has not been accepted yet
    step: int = 1  # levels the next raise adds: doubles with every raise that holds
    restore: int = 0  # the cap before a stray 429: the quick raise goes back to it
    restoring: bool = False  # the raise in question went back to `restore`: no climb after it
    cut_at: float = -math.inf  # when the cap last came down for a 429
    shared_at: float = -math.inf  # the last evidence that others spend the same budget
    gave_back_at: float = -math.inf  # when the cap last went back up to a `restore`
    accepted_at: float = -math.inf  # the latest grant the server accepted (its time)
    run: int = 0  # requests at accepted levels refused in a row (none granted after the first
    run_from: float = math.inf  # of them accepted), granted from this time...
    run_to: float = -math.inf  # ...to this one

    def __post_init__(self) -> None:
        self.cap = self.configured
        self.proven = min(self.configured, max(self.floor, self.proven))
        self.share = self.share or self.proven

    @classmethod
    def for_rate(cls, rate: float) -> CapFinder:
        configured = max(1, math.floor(rate))
        floor = max(1, math.floor(rate * MIN_FRACTION))
        proven = math.floor(rate * PRESUMED_FRACTION)
        return cls(configured, floor, proven, burst=1 + math.ceil(rate * MAX_LAG_S))

    def sharing(self, now: float) -> bool:
        """Whether there is recent evidence that other processes spend the same budget."""
        return now - self.shared_at < SHARED_MEMORY_S

    def allowed(self, now: float) -> int:
        """The most grants a window may hold for the next grant."""
        if now >= self.raise_at:
            self.restoring = self.restore > self.cap
            if self.restoring:
                self.gave_back_at = now
            self.cap = max(self.restore, min(self.configured, self.cap + self.step))
            self.restore = 0
            self.raise_at = math.inf  # the probes' answers schedule the next raise
            self.raising = True
        limit = self.ramp if self.cap - self.proven > 1 else 1
        return self.cap if self.probes < limit else self.proven

    def granted(self, level: int) -> bool:
        """Book a grant at `level`; True when it is a probe."""
        if level <= self.proven:
            return False
        self.probes += 1
        return True

    def accepted(self, grant: Grant, now: float) -> None:
        self.accepted_at = max(self.accepted_at, grant.at)
        if not grant.probe:
            return
        self.probes -= 1
        self.ramp = min(PROBES, self.ramp + 1)
        if grant.level > self.proven:
            self.proven = min(self.cap, grant.level)
            if self.raising and self.proven == self.cap:  # the raise held
                self.raising = False
                if not self.sharing(now):  # the limit moved (while sharing, others may have paid)
                    self.raise_wait = max(QUICK_RAISE_S, self.raise_wait / 2)
                if self.restoring:  # back where it was before a stray: the schedule goes on
                    self.restoring = False
                    wait = self._wait(now)
                else:  # room: the next raise sooner and twice as big
                    self.step *= 2
                    wait = QUICK_RAISE_S
                if self.cap < self.configured:
                    self.raise_at = now + wait

    def lost(self, grant: Grant) -> None:
        if grant.probe:
            self.probes -= 1

    def throttled(self, grant: Grant, now: float) -> bool:
        """A 429 for `grant`; True when the cap explains it (a probe), False when a level the server
        had accepted was refused (others on the address, jitter, a lower limit): then the caller pauses."""
        if grant.probe:
            self.probes -= 1
        self.ramp = 1
        # A run of refusals says others are there, echoes included: it comes before the echo check.
        if not grant.probe and self._in_a_row(grant, now) and self.cap > self.share:
            self._cut(self.share, now, SHARED_RAISE_S)
        if grant.at < self.cut_at:  # sent before the cap came down: the same overflow, nothing new
            return grant.probe
        if not grant.probe:
            # Others fill the window: alone, we could not be refused at this level (a catch-up burst
            # is granted at one time, its levels below its last one's only in our count).
            if grant.level <= max(self.share, self.cap - self.burst):
                self.shared_at = now
            if self.cap > self.share and self.sharing(now):
                self._cut(self.share, now, SHARED_RAISE_S)
                return False
        if grant.probe:
            cap = min(self.cap, max(self.floor, grant.level - 1))
            if cap <= self.share + self.burst:  # about half: a share, found high while others paused
                self.shared_at = now
                cap = min(cap, self.share)
            self._cut(cap, now, self._wait(now))
            self.raise_wait = min(MAX_RAISE_S, self.raise_wait * 2)
            return True
        # A level down (below the 429's above `share`), given back soon: a stray, or another's
        # overshoot; unless a cap went back up lately: then the window is tighter than that.
        below = grant.level - 1 if self.cap > self.share else self.cap
        cap = max(self.floor, min(self.cap - 1, below))
        if now - self.gave_back_at > SHARED_RAISE_S:
            restore = max(self.restore, self.cap)
            self._cut(cap, now, QUICK_RAISE_S)
            self.restore = restore
        else:
            self._cut(cap, now, min(self.raise_at - now, self._wait(now)))
        return False

    def _in_a_row(self, grant: Grant, now: float) -> bool:
        """Count a refused request (no probe) into the run of them; True, and the evidence recorded,
        when `STORM` in a row span `STORM - 1` paces of ours with none granted after the first
        accepted: the window stayed over while we alone could not keep it so (across a pause too),
        so others' requests fill it. Alone, a window that jitter took over has room again at the
        next requests; a stall's catch-up burst, granted at one time, spans no pace."""
        if grant.at <= self.accepted_at:  # one granted after it was accepted: not in this run
            return False
        if self.run_from <= self.accepted_at:  # the last run is over: this one starts a new one
            self.run, self.run_from, self.run_to = 0, grant.at, grant.at
        self.run += 1
        self.run_from, self.run_to = min(self.run_from, grant.at), max(self.run_to, grant.at)
        if self.run < STORM or self.run_to - self.run_from < (STORM - 1) / self.configured:
            return False
        self.shared_at = now
        return True

    def _wait(self, now: float) -> float:
        return SHARED_RAISE_S if self.sharing(now) else self.raise_wait

    def _cut(self, cap: int, now: float, raise_in: float) -> None:
        self.cap = cap
        self.proven = min(self.proven, cap)
        self.cut_at = now
        self.raise_at = now + raise_in
        self.raising = False
        self.restore = 0
        self.step = 1


class RateLimiter:
    """Await `acquire()` right before each request, and report its answer with `accepted`,
    `throttled` (a 429) or `lost` (none). Create it inside the running loop."""

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
        self._configured = rate
        self._finder = CapFinder.for_rate(rate)
        self._span = WINDOW_S + margin
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._sleep = sleep
        self._history: deque[float] = deque(maxlen=self._finder.configured)
        self._due = -math.inf
        self._pause_until = -math.inf
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()  # a probe was answered: a waiting grant may go sooner
        self.grants = 0
        self.throttles = 0

    @property
    def rate(self) -> float:
        """The rate in force now (the configured one unless 429s showed a lower limit)."""
        return min(self._configured, self._finder.cap)

    @property
    def cap(self) -> int:
        """Grants allowed in any window now."""
        return self._finder.cap

    def _spacing(self) -> float:
        # At least the window's share per grant: a grid that never outruns the window keeps the pace
        # even (40 per 1.02 s: every 25.5 ms, not 40 at 25 ms and a 20 ms hole).
        return max(1.0 / self._configured, self._span / self._finder.cap)

    def _slot(self, now: float) -> float:
        cap = self._finder.allowed(now)
        return next_slot(self._history, now, cap, self._span, self._due, self._pause_until)

    async def acquire(self) -> Grant:
        # One waiter at a time plans and sleeps: grants are sequential by nature (the pace), and
        # re-planning after each sleep picks up a pause or a lower cap that a 429 set meanwhile.
        arrived = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                slot = self._slot(now)
                if slot <= now:
                    break
                await self._nap(slot - now)
            # The pace is a grid: this grant's place on it, and when the window let it go too. What
            # it is late by beyond that was the loop's doing (a stall, a throttled process), so the
            # grid goes on from its place, not from now.
            placed = max(self._due, self._pause_until, arrived)
            ready = max(self._slot(-math.inf), arrived)
            # A few ms late: recorded as ready, so wake-up latency does not lengthen every window.
            at = ready if now - ready < CATCH_UP_S else now
            if self._history:
                at = max(at, self._history[-1])  # kept sorted: catching up may plan behind the last one
            self._history.append(at)
            self._due = max(placed, now - MAX_LAG_S) + self._spacing()
            # The caller sends the request in this same step of its task, after this returns; a
            # callback queued now runs just after that step. A CPU-throttled process can stall in
            # between, and then the window must count the request from when it really left.
            self._loop.call_soon(self._sent, at)
            # The level counts the server's window, not ours (the margin): the probe at 41 must be the
            # 41st request the server sees in its second, or its acceptance proves nothing.
            level = level_of(self._history, at, WINDOW_S)
            self.grants += 1
            return Grant(at, level, self._finder.granted(level))

    def _sent(self, at: float) -> None:
        now = self._clock()
        if now - at >= CATCH_UP_S and self._history and self._history[-1] == at:
            self._history[-1] = now

    async def _nap(self, seconds: float) -> None:
        if not self._finder.probes:
            await self._sleep(seconds)
            return
        # A probe's answer may allow an earlier grant (the ramp moves at its round trips): wake on it.
        self._answered.clear()
        nap = asyncio.ensure_future(self._sleep(seconds))
        answer = asyncio.ensure_future(self._answered.wait())
        try:
            await asyncio.wait((nap, answer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            answer.cancel()

    def accepted(self, grant: Grant) -> None:
        """The server answered (anything but a 429)."""
        self._finder.accepted(grant, self._clock())
        if grant.probe:
            self._answered.set()

    def throttled(self, grant: Grant) -> bool:
        """The server answered 429. True when the cap explains it (the limit was being probed); False
        when it came at a level the server had accepted: then every worker should pause."""
        self.throttles += 1
        cap, now = self._finder.cap, self._clock()
        explained = self._finder.throttled(grant, now)
        if grant.probe:
            self._answered.set()
        if self._finder.cap < cap:
            log.info(
                "429 at %d requests in a second: %d a second from now on (rate_limit %g%s)",
                grant.level,
                self._finder.cap,
                self._configured,
                "; others on this address spend the same budget" if self._finder.sharing(now) else "",
            )
        return explained

    def lost(self, grant: Grant) -> None:
        """No answer (a reset, a timeout, a cancelled request)."""
        if grant.probe:
            self._finder.lost(grant)
            self._answered.set()

    def pause(self, seconds: float) -> None:
        """Every worker waits `seconds` (TMDB's Retry-After, or a back-off after an unexplained 429)."""
        self._pause_until = max(self._pause_until, self._clock() + seconds)
