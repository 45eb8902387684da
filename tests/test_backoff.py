from __future__ import annotations

import random

from harvester.tmdb.backoff import CAP_S, backoff_delay, retry_after_seconds


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        d = min(CAP_S, 0.5 * 2**attempt)
        for _ in range(20):
            assert d / 2 <= backoff_delay(attempt, rng) <= d


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds("-1") is None
    assert retry_after_seconds("100000") == 120.0
