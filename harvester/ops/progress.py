"""Progress while a harvest runs: a live bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Snapshot:
    """Where a harvest stands (pure): what the bar, the log line and its JSON fields all show."""

    done: int
    total: int | None
    elapsed_s: float
    requests: int
    throttled: int
    misses: int
    failures: int
    rate_limit: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / max(self.elapsed_s, 1e-9)

    @property
    def eta_s(self) -> float | None:
        per_s = self.done / max(self.elapsed_s, 1e-9)
        if self.total is None or per_s <= 0 or self.done >= self.total:
            return None
        return (self.total - self.done) / per_s

    def fields(self) -> dict[str, object]:
        """The log event's fields: numbers, for CloudWatch Logs Insights."""
        eta = self.eta_s
        return {
            "event": "progress",
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(self.elapsed_s, 1),
            "eta_s": None if eta is None else round(eta),
            "requests_per_s": round(self.requests_per_s, 2),
            "rate_limit": self.rate_limit,
            "throttled": self.throttled,
            "misses": self.misses,
            "failures": self.failures,
        }


def snapshot(stats: Stats, counters: ClientCounters, rate_limit: float) -> Snapshot:
    return Snapshot(
        done=stats.looked_up,
        total=stats.total,
        elapsed_s=stats.elapsed(),
        requests=counters.requests,
        throttled=counters.throttled,
        misses=sum(stats.misses.values()),
        failures=stats.failed,
        rate_limit=rate_limit,
    )


def progress_line(now: Snapshot, bar: bool) -> str:
    """One status line (pure): done/total, request rate, ETA, 429s, misses, failures."""
    done, total = now.done, now.total
    if total:
        frac = min(1.0, done / total)
        eta = now.eta_s
        head = f"{done}/{total} {frac:6.1%}"
        if bar:
            filled = round(frac * BAR_WIDTH)
            head = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {head}"
        head += f" ETA {'-' if eta is None else format_duration(eta)}"
    else:
        head = f"{done} titles"
    return (
        f"{head} | {now.requests_per_s:5.1f} req/s (limit {now.rate_limit:g}) | "
        f"429s {now.throttled} | misses {now.misses} | failures {now.failures}"
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
        label: str = "",
    ) -> None:
        self._stats = stats
        self._counters = counters
        self._limiter = limiter
        self._enabled = enabled
        self._stream = stream or sys.stderr
        self._label = label  # one of several harvests: log lines that say whose, never a live bar
        self._tty = self._stream.isatty() and not label
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
        now = snapshot(self._stats, self._counters, self._limiter.rate)
        if self._tty:
            self._stream.write("\r\x1b[2K" + progress_line(now, bar=True))
            self._stream.flush()
        else:
            line = progress_line(now, bar=False)
            log.info("%s%s", f"{self._label}: " if self._label else "", line, extra=now.fields())
