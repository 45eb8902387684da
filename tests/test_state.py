from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from harvester.errors import StateError
from harvester.lake.layout import data_key, is_committed, outcomes_key, seq_of, writer_in
from harvester.lake.state import (
    DoneSet,
    Identity,
    Pending,
    RunRef,
    RunState,
    SinkIdentity,
    SourceIdentity,
    TmdbIdentity,
    run_tag,
)

IDENTITY = Identity(
    source=SourceIdentity(
        input="x", type="csv", media="movie", genres=[], min_votes=0, year_from=0, year_to=0
    ),
    tmdb=TmdbIdentity(base_url="http://tmdb", language="en-US", append=["credits"], lookup="direct"),
    sink=SinkIdentity(chunk_size=100, format="json", compression="none", partition="{yyyy}/{mm}/{dd}"),
)


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
    s.counts.harvested = 100
    back = RunState.from_bytes(s.to_bytes(), "state")
    assert back.to_bytes() == s.to_bytes()
    assert back.partition == "2026/11/23"
    assert back.tag.startswith("20261123T091502Z-")


def test_run_tags_never_collide_within_one_second() -> None:
    now = datetime(2026, 11, 23, 9, 15, 2, tzinfo=UTC)
    tags = {RunState.new(IDENTITY, now=now).tag for _ in range(50)}
    assert len(tags) == 50


def test_state_round_trip_keeps_writers_pending_and_supersedes() -> None:
    s = RunState.new(IDENTITY)
    s.start_writer("wabc123")
    s.next_seq = 3
    s.start_writer("wdef456")
    s.pending[7] = Pending(7, "movie", "tt0000007", None, 2, "http_503 after 7 attempts")
    s.supersedes = [RunRef("20260101T000000Z-00000000", "2026/01/01", "movies")]
    s.fresh_id = "exec-1"
    back = RunState.from_bytes(s.to_bytes(), "state")
    assert back.writers == [(0, "wabc123"), (3, "wdef456")]
    assert back.pending == s.pending and back.supersedes == s.supersedes and back.fresh_id == "exec-1"
    assert [back.writer_of(n) for n in range(4)] == ["wabc123", "wabc123", "wabc123", None]


def test_a_new_writer_at_the_same_commit_replaces_the_one_that_wrote_nothing() -> None:
    s = RunState.new(IDENTITY)
    s.start_writer("wabc123")
    s.start_writer("wdef456")
    assert s.writers == [(0, "wdef456")]


def test_version_1_state_still_loads_and_its_keys_count_as_committed() -> None:
    s = RunState.new(IDENTITY, now=datetime(2026, 1, 2, tzinfo=UTC))
    d = orjson.loads(s.to_bytes())
    for key in ("writers", "pending", "supersedes", "fresh_id"):
        del d[key]
    d["version"] = 1
    d["next_seq"] = 2
    d["source"] = {"selected": 5}
    old = RunState.from_bytes(orjson.dumps(d), "state")
    assert old.writers == [(0, "")]
    v1_key = f"2026/01/02/movies-{old.tag}-000001.json"
    assert is_committed(old, v1_key) and not is_committed(old, v1_key.replace("000001", "000002"))


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


def test_keys_are_deterministic_and_carry_the_writer_and_the_commit_number() -> None:
    s = RunState.new(IDENTITY, now=datetime(2026, 1, 2, tzinfo=UTC))
    key = data_key(s, 17, "wabc123", ".json")
    assert key.startswith("2026/01/02/movies-") and key.endswith("-wabc123-000017.json")
    assert seq_of(key) == 17 and writer_in(key) == "wabc123"
    assert seq_of(outcomes_key(s, 3, "wabc123")) == 3
    assert outcomes_key(s, 3, "wabc123").startswith("_harvest/")
    assert seq_of("2026/01/02/other.json") is None and writer_in("2026/01/02/other.json") is None


def test_only_the_recorded_writer_of_a_commit_is_committed() -> None:
    s = RunState.new(IDENTITY)
    s.start_writer("wabc123")
    s.next_seq = 2
    s.start_writer("wdef456")
    s.next_seq = 3
    assert is_committed(s, data_key(s, 1, "wabc123", ".json"))
    assert not is_committed(s, data_key(s, 1, "wdef456", ".json"))  # a stale writer's commit 1
    assert is_committed(s, outcomes_key(s, 2, "wdef456"))
    assert not is_committed(s, data_key(s, 3, "wdef456", ".json"))  # not saved yet


def test_partition_template_can_keep_media_apart() -> None:
    s = RunState.new(
        IDENTITY, partition="{media}/{yyyy}/{mm}/{dd}", name="series", now=datetime(2026, 3, 4, tzinfo=UTC)
    )
    assert data_key(s, 0, "wabc123", ".json").startswith("series/2026/03/04/series-")


def test_a_runs_tag_sorts_after_the_run_it_follows_within_one_second_or_with_a_clock_behind() -> None:
    """Readers order a line's runs by tag: a refresh started in its base's second, or on a host whose
    clock is behind, must still sort after it (else its records read as older than the base's)."""
    now = datetime(2026, 12, 4, 21, 55, 0, tzinfo=UTC)
    base = "20261204T215500Z-80000000"
    assert all(run_tag(now, base) > base for _ in range(200))
    behind = run_tag(now - timedelta(minutes=5), base)
    assert behind > base and behind.startswith("20261204T215500Z-")
    top = run_tag(now, "20261204T215500Z-ffffffff")  # no random part sorts after it: the next second
    assert top.startswith("20261204T215501Z-")
    assert run_tag(now).startswith("20261204T215500Z-") and len(run_tag(now)) == len(base)
