"""The writer lease: taken, renewed, refused, taken over, lost; on a local directory and on moto's S3.

Time is injected (wall and monotonic clocks), so nothing here waits for a lease to run out.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from harvester.errors import LeaseHeld, LeaseLost
from harvester.lake.lease import Lease, lease_key, skew_for
from harvester.lake.sink import Sink

KEY = lease_key("csv-movie")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lease(sink: Sink, clock: Clock, lease_s: float = 60.0) -> Lease:
    return Lease(sink, KEY, lease_s, wall=clock, mono=clock)


async def test_a_second_run_finds_the_live_lease_and_is_told_who_and_until_when(sink: Sink) -> None:
    clock = Clock()
    first = lease(sink, clock)
    await first.acquire()
    clock.now += 30
    held = r"another run \(.+:\d+\) is writing this harvest.*expires at .*in 35 s"
    with pytest.raises(LeaseHeld, match=held):
        await lease(sink, clock).acquire()
    first.check()  # still ours


async def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew(sink: Sink) -> None:
    clock = Clock()
    first = lease(sink, clock, lease_s=20)
    await first.acquire()
    clock.now += 20 + skew_for(20) + 0.1  # the holder was frozen past its lease and the skew margin
    second = lease(sink, clock, lease_s=20)
    await second.acquire()
    with pytest.raises(LeaseLost, match="ran out"):
        first.check()  # by its own clock it knows it may have lost the lease: no write at all
    with pytest.raises(LeaseLost):
        await first.renew()
    await first.release()  # not ours any more: must not delete the new holder's lease
    clock.now += 1
    with pytest.raises(LeaseHeld):
        await lease(sink, clock, lease_s=20).acquire()
    second.check()


async def test_renewal_keeps_the_lease_and_release_frees_it(sink: Sink) -> None:
    clock = Clock()
    first = lease(sink, clock, lease_s=30)
    await first.acquire()
    for _ in range(5):
        clock.now += 10
        await first.renew()
    first.check()
    with pytest.raises(LeaseHeld):
        await lease(sink, clock, lease_s=30).acquire()
    await first.release()
    await lease(sink, clock, lease_s=30).acquire()  # at once, no waiting for expiry


class LateAnswers:
    """A sink whose next put lands at once but answers only when `answer` is set: a renewal cut off
    in flight after its write has happened."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.landed, self.answer = asyncio.Event(), asyncio.Event()
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def put(self, key: str, data: bytes, content_type: str = "", **conditions: Any) -> str:
        etag = await self._inner.put(key, data, content_type, **conditions)
        if self.armed:
            self.armed = False
            self.landed.set()
            await self.answer.wait()
        return etag


async def test_a_keeper_stopped_mid_renewal_still_releases_the_lease(sink: Sink) -> None:
    clock, late = Clock(), LateAnswers(sink)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    holder = Lease(cast(Sink, late), KEY, 30, wall=clock, mono=clock, sleep=no_wait)
    await holder.acquire()
    clock.now += 10  # the renewal writes a new expiry, so a new ETag
    late.armed = True
    keeper = asyncio.create_task(holder.keep())
    await late.landed.wait()  # the renewal's write is in the store; its answer is not back yet
    keeper.cancel()
    late.answer.set()
    with pytest.raises(asyncio.CancelledError):
        await keeper
    await holder.release()
    assert await sink.get(KEY) is None  # released: the next run starts at once
    await lease(sink, clock).acquire()


async def test_a_holder_that_missed_its_renewals_stops_by_its_own_clock(sink: Sink) -> None:
    clock = Clock()
    first = lease(sink, clock, lease_s=30)
    await first.acquire()
    clock.now += 30 - skew_for(30) + 0.01
    with pytest.raises(LeaseLost, match="paused"):
        first.check()


async def test_two_runs_racing_for_a_free_lease_one_wins(sink: Sink) -> None:
    clock = Clock()
    contenders = [lease(sink, clock) for _ in range(4)]
    results = await asyncio.gather(*(c.acquire() for c in contenders), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, LeaseHeld) for r in results if r is not None)


async def test_an_unreadable_lease_object_is_treated_as_expired(sink: Sink) -> None:
    await sink.put(KEY, b"{not json")
    clock = Clock()
    await lease(sink, clock).acquire()


def test_lease_key_sits_under_the_bookkeeping_folder() -> None:
    assert KEY == "_harvest/lease-csv-movie.json"
