from __future__ import annotations

import random

from harvester.tmdb.backoff import CAP_S, backoff_delay, retry_after_seconds


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        d = min(CAP_S, 0.5 * 2**attempt)
        for _ in range(20):
            assert d / 2 <= backoff_delay(attempt, rng) <= d


NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds("3", NOW) == 3.0
    assert retry_after_seconds(" 1.5 ", NOW) == 1.5
    assert retry_after_seconds("0", NOW) == 0.0
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("", NOW) is None
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds("-1", NOW) is None
    assert retry_after_seconds("nan", NOW) is None
    assert retry_after_seconds("100000", NOW) == 120.0
    assert retry_after_seconds("100000", NOW, cap=5.0) == 5.0


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    # RFC 9110's IMF-fixdate, and the obsolete forms a server may still send (RFC 850, asctime).
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:07 GMT", NOW) == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:07 GMT", NOW + 0.5) == 6.5
    assert retry_after_seconds("Wednesday, 21-Oct-15 07:28:07 GMT", NOW) == 7.0
    assert retry_after_seconds("Wed Oct 21 07:28:07 2015", NOW) == 7.0  # no zone: UTC
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:07 -0000", NOW) == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 09:28:07 +0200", NOW) == 7.0
    # a date already past (a skewed clock, a slow answer) is "now", never negative
    assert retry_after_seconds("Wed, 21 Oct 2015 07:27:00 GMT", NOW) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0
    # far in the future: capped like the seconds form
    assert retry_after_seconds("Fri, 01 Jan 2100 00:00:00 GMT", NOW) == CAP_S * 4
    assert retry_after_seconds("Wed, 21 Oct 2015 09:28:07 GMT", NOW, cap=60.0) == 60.0
    for broken in ("Wed, 32 Oct 2015 07:28:07 GMT", "Wed, 21 Oct 2015", "21 Oct", "Mon, 99 Foo"):
        assert retry_after_seconds(broken, NOW) is None, broken
