"""Progress while a harvest runs: a live bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TextIO

from ..tmdb.client import ClientCounters
from ..tmdb.ratelimit import RateLimiter
from .stats import Stats

log = logging.getLogger("harvester.ops.progress")

BAR_INTERVAL_S = 0.5
LOG_INTERVAL_S = 10.0
BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    """'45s', '3m07s', '1h52m': short enough for the bar's ETA, and precise enough for `check`'s estimate."""
    h, rest = divmod(max(0, round(seconds)), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def progress_line(stats: Stats, counters: ClientCounters, rate_limit: float, bar: bool) -> str:
    """One status line (pure): done/total, request rate, ETA, 429s, misses, failures."""
    done = stats.looked_up
    elapsed = max(stats.elapsed(), 1e-9)
    per_s = done / elapsed
    total = stats.total
    if total:
        frac = min(1.0, done / total)
        eta = format_duration((total - done) / per_s) if per_s > 0 and done < total else "-"
        head = f"{done}/{total} {frac:6.1%}"
        if bar:
            filled = round(frac * BAR_WIDTH)
            head = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {head}"
        head += f" ETA {eta}"
    else:
        head = f"{done} titles"
    return (
        f"{head} | {counters.requests / elapsed:5.1f} req/s (limit {rate_limit:g}) | "
        f"429s {counters.throttled} | misses {sum(stats.misses.values())} | failures {stats.failed}"
    )


class Progress:
    def __init__(
        self,
        stats: Stats,
        counters: ClientCounters,
        limiter: RateLimiter,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self._stats = stats
        self._counters = counters
        self._limiter = limiter
        self._enabled = enabled
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._finished = asyncio.Event()

    def finish(self) -> None:
        self._finished.set()

    async def run(self) -> None:
        interval = BAR_INTERVAL_S if self._tty else LOG_INTERVAL_S
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), interval)
            if self._enabled:
                self._report()
        if self._enabled and self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _report(self) -> None:
        line = progress_line(self._stats, self._counters, self._limiter.rate, self._tty)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
            self._stream.flush()
        else:
            log.info("%s", line)
