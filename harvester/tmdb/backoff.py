"""Retry delays: exponential with full jitter, and a server's Retry-After. Pure functions."""

from __future__ import annotations

import random
from datetime import UTC
from email.utils import parsedate_to_datetime

BASE_S = 0.5
CAP_S = 30.0


def backoff_delay(attempt: int, rng: random.Random, base: float = BASE_S, cap: float = CAP_S) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [d/2, d] with d = base * 2**attempt.

    Half-jitter keeps retries from many workers apart while guaranteeing real back-off.
    """
    d = min(cap, base * (2**attempt))
    return rng.uniform(d / 2, d)


def retry_after_seconds(header: str | None, now: float, cap: float = CAP_S * 4) -> float | None:
    """Seconds to wait from a Retry-After header, capped; None when absent or unusable.

    Both forms of RFC 9110: delta-seconds ("120"; fractions accepted, the stand-in sends them) and an
    HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"), counted from `now` (POSIX seconds, the wall clock); a
    date already past means 0. TMDB's CDN usually sends neither (the caller then backs off).
    """
    if not header:
        return None
    text = header.strip()
    value: float | None
    try:
        value = float(text)
    except ValueError:
        value = _seconds_until(text, now)
    if value is None or value != value or value < 0:  # NaN, or a negative delta: not a hint we can use
        return None
    return min(value, cap)


def _seconds_until(date: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
