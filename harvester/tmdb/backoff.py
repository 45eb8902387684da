"""Retry delays: exponential with full jitter, and TMDB's Retry-After. Pure functions."""

from __future__ import annotations

import random

BASE_S = 0.5
CAP_S = 30.0


def backoff_delay(attempt: int, rng: random.Random, base: float = BASE_S, cap: float = CAP_S) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [d/2, d] with d = base * 2**attempt.

    Half-jitter keeps retries from many workers apart while guaranteeing real back-off.
    """
    d = min(cap, base * (2**attempt))
    return rng.uniform(d / 2, d)


def retry_after_seconds(header: str | None, cap: float = CAP_S * 4) -> float | None:
    """Seconds from a Retry-After header in its delta-seconds form; None when absent or unusable."""
    if not header:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None  # the HTTP-date form: TMDB has never been seen sending it, so back off instead
    if value < 0 or value != value:
        return None
    return min(value, cap)
