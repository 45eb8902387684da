"""What a refresh keeps and reads: the selection bitmap, its per-commit records, the change windows."""

from __future__ import annotations

import itertools
import random
from datetime import date
from pathlib import Path

import pytest

from harvester.errors import StateError
from harvester.lake.selection import BLOCK, READ_AHEAD, Selection, apply_record, fold_records, ids_record
from harvester.lake.sink.local import LocalSink
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


def test_set_arithmetic_across_block_edges_and_spare_capacity() -> None:
    edge = BLOCK * 8  # the first id of the second block
    ids = {0, edge - 1, edge, 3 * edge + 5, 10**8}  # as sparse as the stand-in's ids
    s = Selection()
    for i in sorted(ids, reverse=True):  # the largest first: no spare capacity after it
        s.add(i)
    s.add(10**8 + 8 * BLOCK * 3)  # grows the bitmap with spare capacity past the last id
    s.discard(10**8 + 8 * BLOCK * 3)
    back = Selection.from_bytes(s.to_bytes(), "sel")
    assert list(back) == sorted(ids) and len(back) == len(ids)
    other = Selection()
    other.add(edge)
    other.add(10**9)  # beyond this bitmap: no effect
    assert list(back.minus(other)) == sorted(ids - {edge})
    assert list(other.minus(back)) == [10**9]


async def test_fold_applies_more_records_than_its_window_in_commit_order(tmp_path: Path) -> None:
    sink = LocalSink(str(tmp_path))
    n = READ_AHEAD * 3 + 1
    keys = []
    for seq in range(n):  # each commit adds its id and removes the one before
        keys.append(f"ids-{seq:03d}.txt")
        await sink.put(keys[-1], ids_record([seq + 1], [seq] if seq else []))
    s = Selection()
    await fold_records(sink, s, keys)
    assert list(s) == [n]  # in any other order, some id added after its removal would remain
    with pytest.raises(ExceptionGroup) as raised:  # from its TaskGroup; the runner shows the StateError
        await fold_records(sink, Selection(), [*keys, "ids-missing.txt"])
    assert raised.group_contains(StateError, match="vanished")


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
