"""One writer per harvest: a lease object beside the state, taken and renewed with conditional writes.

    _harvest/lease-<source type>-<media>.json   {"holder", "token", "expires", ...}

Taking it: create the object only if there is none (`if_none_match`), or replace an expired one only if
it is still the one we read (`if_match`). Renewing and releasing are `if_match` on our own last ETag, so
a holder that was paused past its lease (GC, a frozen container, a network partition) and wakes after
another run took over finds its condition refused and stops: it never writes again.

Time: S3 has no clock in a condition, so the expiry is a wall-clock time written by the holder and judged
by the reader's clock. Both sides keep a margin of `skew_s` against clocks that disagree: the holder
stops writing `skew_s` before its expiry by its own monotonic clock (which keeps running while the
process is stopped), the taker waits until `skew_s` after it by its wall clock.

The lease alone does not fence the data: every state save is conditional too (state.py), and data keys
carry the writer's token (layout.py), so two writers never write the same key and what a stale writer
left is found and removed by the next reconcile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from ..errors import LeaseHeld, LeaseLost, PreconditionFailed, SinkError
from .sink import Sink
from .sink.base import HARVEST_DIR

log = logging.getLogger(__name__)

MAX_SKEW_S = 5.0  # clocks of two machines may disagree by this much
TAKE_ATTEMPTS = 3  # a lost race re-reads the lease and decides again


def lease_key(harvest: str) -> str:
    """One lease per harvest (config.harvest_id), beside its state."""
    return f"{HARVEST_DIR}/lease-{harvest}.json"


def new_token() -> str:
    """Names one writer: it goes into data keys, so it is short (6 hex digits, 16.7 million values)."""
    return "w" + secrets.token_hex(3)


def describe_self() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    holder: str  # host:pid, for the person reading the error
    token: str
    expires: float  # Unix time
    lease_s: float


def skew_for(lease_s: float) -> float:
    """Short leases (tests) get a proportionally short margin."""
    return min(MAX_SKEW_S, lease_s / 4)


def is_live(doc: LeaseDoc, now: float) -> bool:
    """Whether another run may still be writing under `doc` (its expiry plus the skew margin)."""
    return now < doc.expires + skew_for(doc.lease_s)


def held_message(doc: LeaseDoc, now: float, where: str) -> str:
    at = datetime.fromtimestamp(doc.expires, UTC).isoformat(timespec="seconds")
    wait = max(0.0, doc.expires + skew_for(doc.lease_s) - now)
    return (
        f"another run ({doc.holder}) is writing this harvest ({where}); its lease expires at {at} "
        f"(in {wait:.0f} s): try again then"
    )


@dataclass
class _Held:
    etag: str
    renewed_mono: float  # our monotonic clock when the renewal that gave `etag` was sent


class Lease:
    """This run's lease on one harvest. `acquire()` first; `check()` before every write; `keep()` runs
    beside the harvest and renews; `release()` at the end, whatever happened."""

    def __init__(
        self,
        sink: Sink,
        key: str,
        lease_s: float,
        *,
        fenced: bool = True,
        token: str | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sink = sink
        self.key = key
        self.lease_s = lease_s
        self.token = token or new_token()
        self.holder = describe_self()
        # Without conditional writes (a store that ignores them, `unsafe_single_writer`) the lease still
        # tells a second run that one is live, but cannot settle a race.
        self._fenced = fenced
        self._wall, self._mono, self._sleep = wall, mono, sleep
        self._held: _Held | None = None

    @property
    def where(self) -> str:
        return f"{self._sink.url.rstrip('/')}/{self.key}"

    async def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming the live holder."""
        for _ in range(TAKE_ATTEMPTS):
            current = await self._sink.get_versioned(self.key)
            now = self._wall()
            if current is not None:
                doc = _decode(current.data)
                if doc is not None and doc.token != self.token and is_live(doc, now):
                    raise LeaseHeld(held_message(doc, now, self.where))
                if doc is not None and doc.token != self.token:
                    log.warning(
                        "taking over the lease of %s, expired since %.0f s", doc.holder, now - doc.expires
                    )
            try:
                await self._write(if_match=None if current is None else current.etag)
                return
            except PreconditionFailed:
                continue  # another run got there between our read and write: read again
        raise LeaseHeld(f"another run is taking this harvest's lease ({self.where}); try again later")

    def check(self) -> None:
        """Raise LeaseLost unless our lease is certainly still ours by our own clock."""
        held = self._held
        if held is None:
            raise LeaseLost(f"this run does not hold the lease on {self.where}")
        left = held.renewed_mono + self.lease_s - skew_for(self.lease_s) - self._mono()
        if left <= 0:
            raise LeaseLost(
                f"this run's lease on {self.where} ran out {-left:.0f} s ago (the process was paused or "
                "could not reach the store); another run may have taken over: stopping without writing"
            )

    async def renew(self) -> None:
        self.check()
        assert self._held is not None
        try:
            await self._write(if_match=self._held.etag)
        except PreconditionFailed:
            self._held = None
            raise LeaseLost(
                f"another run took over this harvest's lease ({self.where}); stopping without writing"
            ) from None

    async def keep(self) -> None:
        """Renew every third of the lease until cancelled; raise LeaseLost once it cannot be kept.

        A cancel that comes during a renewal waits for its write to end: a write cut off in flight may
        land all the same, and release() would then hold an ETag the store no longer has and leave a
        live lease behind, which the next run would have to wait out."""
        while True:
            await self._sleep(self.lease_s / 3)
            renewal = asyncio.ensure_future(self._renew_or_retry())
            try:
                await asyncio.shield(renewal)
            except asyncio.CancelledError:
                await asyncio.wait([renewal])
                if not renewal.cancelled():
                    renewal.exception()  # retrieved: we are stopping either way
                raise

    async def _renew_or_retry(self) -> None:
        try:
            await self.renew()
        except SinkError as exc:
            # The store is slow or away: keep trying while the lease lasts; check() ends it.
            log.warning("could not renew the lease (%s); trying again", exc)
            self.check()

    async def release(self) -> None:
        """Give the lease up so the next run need not wait; harmless when it is no longer ours."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            await self._sink.delete(self.key, if_match=held.etag if self._fenced else None)
        except PreconditionFailed:
            pass  # taken over meanwhile: it is not ours to delete
        except SinkError as exc:
            log.warning("could not release the lease (%s); it expires by itself in %.0f s", exc, self.lease_s)

    async def _write(self, *, if_match: str | None) -> None:
        sent = self._mono()
        doc = LeaseDoc(self.holder, self.token, self._wall() + self.lease_s, self.lease_s)
        data = msgspec.json.encode(doc)
        if not self._fenced:
            etag = await self._sink.put(self.key, data, "application/json")
        elif if_match is None:
            etag = await self._sink.put(self.key, data, "application/json", if_none_match=True)
        else:
            etag = await self._sink.put(self.key, data, "application/json", if_match=if_match)
        self._held = _Held(etag, sent)


def _decode(raw: bytes) -> LeaseDoc | None:
    """An unreadable lease object is treated as expired: a person or a bug wrote it, not a live run."""
    try:
        return msgspec.json.decode(raw, type=LeaseDoc)
    except msgspec.DecodeError:
        log.warning("the lease object is unreadable; treating it as expired")
        return None
