from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from harvester.errors import StateError
from harvester.layout import data_key, outcomes_key, seq_of
from harvester.state import DoneSet, RunState

IDENTITY = {"source": {"input": "x"}, "tmdb": {"language": "en-US"}}


def test_doneset_compacts_to_a_watermark() -> None:
    d = DoneSet()
    order = list(range(1000))
    random.Random(3).shuffle(order)
    for i, p in enumerate(order):
        d.add(p)
        assert p in d
        assert len(d) == i + 1
    assert d.below == 1000 and d.extra == []
    assert 1000 not in d


def test_doneset_holds_out_of_order_positions() -> None:
    d = DoneSet(5, [7, 9, 3])
    assert d.below == 5 and d.extra == [7, 9]
    assert 4 in d and 6 not in d and 7 in d
    d.add(5)
    d.add(6)
    assert d.below == 8 and d.extra == [9]


def test_state_round_trip() -> None:
    s = RunState.new(IDENTITY, now=datetime(2026, 11, 23, 9, 15, 2, tzinfo=UTC))
    s.done.add(0)
    s.done.add(2)
    s.next_seq = 4
    s.counts["harvested"] = 100
    back = RunState.from_bytes(s.to_bytes(), "state")
    assert back.to_bytes() == s.to_bytes()
    assert back.partition == "2026/11/23"
    assert back.tag == f"20261123T091502Z-{s.run_id[:8]}"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'{"version": 1}', b'{"version": 99}'],
)
def test_corrupt_state_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(StateError, match="state"):
        RunState.from_bytes(raw, "s3://b/_harvest/state.json")


def test_tampered_state_is_rejected() -> None:
    s = RunState.new(IDENTITY)
    raw = s.to_bytes().replace(b'"en-US"', b'"pt-BR"')
    with pytest.raises(StateError, match="corrupt"):
        RunState.from_bytes(raw, "state")


def test_keys_are_deterministic_and_carry_the_commit_number() -> None:
    s = RunState.new(IDENTITY, now=datetime(2026, 1, 2, tzinfo=UTC))
    key = data_key(s, 17, ".json")
    assert key.startswith("2026/01/02/movies-") and key.endswith("-000017.json")
    assert seq_of(key) == 17
    assert seq_of(outcomes_key(s, 3)) == 3
    assert outcomes_key(s, 3).startswith("_harvest/")
    assert seq_of("2026/01/02/other.json") is None


def test_partition_template_can_keep_media_apart() -> None:
    s = RunState.new(
        IDENTITY, partition="{media}/{yyyy}/{mm}/{dd}", name="series", now=datetime(2026, 3, 4, tzinfo=UTC)
    )
    assert data_key(s, 0, ".json").startswith("series/2026/03/04/series-")
