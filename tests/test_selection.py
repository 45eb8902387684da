"""What a refresh keeps and reads: the selection bitmap, its per-commit records, the change windows."""

from __future__ import annotations

import itertools
import random
from datetime import date

import pytest

from harvester.errors import StateError
from harvester.lake.selection import Selection, apply_record, ids_record
from harvester.source.changes import MAX_SPAN_DAYS, change_windows


def test_selection_round_trips_and_does_set_arithmetic() -> None:
    rng = random.Random(5)
    ids = {rng.randrange(2_000_000) for _ in range(20_000)}
    s = Selection()
    for i in ids:
        s.add(i)
    back = Selection.from_bytes(s.to_bytes(), "sel")
    assert set(back) == ids and len(back) == len(ids)
    assert all(i in back for i in list(ids)[:100]) and 2_000_001 not in back
    other = Selection()
    for i in list(ids)[:5000]:
        other.add(i)
    assert set(back.minus(other)) == ids - set(list(ids)[:5000])
    assert list(back.minus(other)) == sorted(back.minus(other))  # ascending: deterministic plans
    assert len(s.to_bytes()) < 2_000_000 // 8  # compressed below the raw bitmap


def test_records_add_and_remove_in_commit_order() -> None:
    s = Selection()
    apply_record(s, ids_record([1, 2, 3], []))
    apply_record(s, ids_record([4], [2]))
    assert set(s) == {1, 3, 4}
    s.discard(10**7)  # beyond the bitmap: nothing to do
    assert set(s) == {1, 3, 4}


def test_a_file_that_is_not_a_selection_is_a_state_error() -> None:
    with pytest.raises(StateError, match="not a selection"):
        Selection.from_bytes(b"{}", "s3://b/_harvest/x/selection.bin")


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (date(2026, 11, 23), date(2026, 11, 23), 1),
        (date(2026, 11, 1), date(2026, 11, 14), 1),
        (date(2026, 11, 1), date(2026, 11, 15), 2),
        (date(2026, 1, 1), date(2026, 12, 31), 27),
        (date(2026, 11, 24), date(2026, 11, 23), 0),
    ],
)
def test_change_windows_cover_the_gap_within_tmdbs_limit(start: date, end: date, count: int) -> None:
    windows = change_windows(start, end)
    assert len(windows) == count
    if windows:
        assert windows[0][0] == start and windows[-1][1] == end
        assert all((hi - lo).days <= MAX_SPAN_DAYS < 14 for lo, hi in windows)
        assert all((b[0] - a[1]).days == 1 for a, b in itertools.pairwise(windows))
