"""The commit decisions that need no I/O: which failures are final and which stay pending."""

from __future__ import annotations

from harvester.items import Failed, Miss, Title
from harvester.lake.committer import Chunk, settle
from harvester.lake.state import Pending


def title(pos: int) -> Title:
    return Title(pos, "movie", imdb_id=f"tt{pos:07d}")


def test_a_transient_failure_stays_pending_until_its_last_attempt() -> None:
    chunk = Chunk(None, 0, [1], [Failed(title(1), "http_503 after 7 attempts")])
    first = settle(chunk, {}, max_attempts=3)
    assert first.final == [] and first.pending[1].attempts == 1 and first.cleared == []
    second = settle(chunk, first.pending, max_attempts=3)
    assert second.final == [] and second.pending[1].attempts == 2
    third = settle(chunk, second.pending, max_attempts=3)
    assert third.final == chunk.outcomes and third.pending == {} and third.cleared == [1]


def test_a_permanent_failure_and_a_miss_are_final_at_once() -> None:
    outcomes: list[Miss | Failed] = [
        Failed(title(1), "http_400 status_code 22: bad page", transient=False),
        Miss(title(2), "not_found"),
    ]
    settled = settle(Chunk(None, 0, [1, 2], outcomes), {}, max_attempts=3)
    assert settled.final == outcomes and settled.pending == {}


def test_a_pending_title_that_answers_is_cleared() -> None:
    pending = {4: Pending(4, "movie", "tt0000004", None, 1, "timeout after 7 attempts")}
    settled = settle(Chunk(b"[...]", 1, [3, 4], []), pending, max_attempts=3)
    assert settled.cleared == [4] and settled.final == [] and settled.pending == {}


def test_one_attempt_makes_every_failure_final() -> None:
    chunk = Chunk(None, 0, [1], [Failed(title(1), "timeout after 7 attempts")])
    assert settle(chunk, {}, max_attempts=1).final == chunk.outcomes
