"""The harvest's saved state: which source positions are done, what is pending, the next commit number.

It lives in the sink under `_harvest/` (Spark, Glue and Athena skip `_` paths), so a Lambda or a new
container finds it where the data is. It stays small whatever the input size: the done positions are a
watermark (every position below it is done) plus the few done positions above it (titles complete out
of order by at most the work in flight), and only titles whose retries ran out are listed by name.

The commit order (committer.py) is: the data object of commit N, then its outcomes object, then this
state with N done. Every save is conditional on the ETag of the save before it, so a writer whose
lease was taken over cannot save again (see lease.py): the taker's first save changed the ETag.
Each writer's objects carry its token (`writers` says which token wrote which commits), so anything
the sink holds that the state does not account for (a commit N or later, or a commit written by
another token) was left by a writer that died or lost its lease: it is deleted on resume and before
completion, and its titles are fetched again. Every title ends up in exactly one data object.
"""

from __future__ import annotations

import bisect
import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import orjson

from ..errors import LeaseLost, PreconditionFailed, StateError
from ..items import Media, Title
from .sink import Sink
from .sink.base import HARVEST_DIR

STATE_VERSION = 2  # 2 added writers, pending, supersedes, fresh_id; version 1 states still load


def state_key(harvest: str) -> str:
    """One state per harvest (config.harvest_id: its name, else its kind, "csv-movie"), so one prefix
    holds any number of harvests."""
    return f"{HARVEST_DIR}/state-{harvest}.json"


class DoneSet:
    """Positions 0, 1, 2, ... that are done: a watermark plus a sorted list of positions above it."""

    def __init__(self, below: int = 0, extra: Iterable[int] = ()) -> None:
        self.below = below
        self._extra: list[int] = sorted(p for p in set(extra) if p >= below)
        self._compact()

    def __contains__(self, pos: int) -> bool:
        if pos < self.below:
            return True
        i = bisect.bisect_left(self._extra, pos)
        return i < len(self._extra) and self._extra[i] == pos

    def __len__(self) -> int:
        return self.below + len(self._extra)

    def add(self, pos: int) -> None:
        if pos in self:
            return
        bisect.insort(self._extra, pos)
        self._compact()

    def _compact(self) -> None:
        n = 0
        while n < len(self._extra) and self._extra[n] == self.below:
            self.below += 1
            n += 1
        if n:
            del self._extra[:n]

    @property
    def extra(self) -> list[int]:
        return list(self._extra)


class SourceIdentity(msgspec.Struct, frozen=True, kw_only=True):
    input: str  # the source's fingerprint of its input (content hash, ETag, query)
    type: str
    media: str
    genres: list[str]
    min_votes: int
    year_from: int
    year_to: int


class TmdbIdentity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    base_url: str
    language: str
    append: list[str]
    lookup: str
    # Omitted when false, so the run id of every harvest without seasons stays what it was.
    seasons: bool = False


class SinkIdentity(msgspec.Struct, frozen=True, kw_only=True):
    chunk_size: int
    format: str
    compression: str
    partition: str


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """What decides the content of a harvest: a run resumes only under the same identity. Pacing
    settings (rate, concurrency, timeouts, retries) are left out on purpose: they may change."""

    source: SourceIdentity
    tmdb: TmdbIdentity
    sink: SinkIdentity

    def changed(self, other: Identity) -> list[str]:
        """The sections that differ, for the message that refuses a resume."""
        return [name for name in self.__struct_fields__ if getattr(self, name) != getattr(other, name)]


def run_id_for(identity: Identity) -> str:
    """A stable id for 'this input, harvested with these settings' (version 1 states computed it alike)."""
    as_json = orjson.dumps(msgspec.to_builtins(identity), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(as_json).hexdigest()[:16]


class Pending(msgspec.Struct, frozen=True):
    """A title whose retries ran out in `attempts` runs: tried again first by the next run."""

    pos: int
    media: Media
    imdb_id: str | None
    tmdb_id: int | None
    attempts: int
    reason: str

    def title(self) -> Title:
        return Title(self.pos, self.media, imdb_id=self.imdb_id, tmdb_id=self.tmdb_id)


class RunRef(msgspec.Struct, frozen=True):
    """A run that a fresh start replaces: its objects are removed when the new run completes."""

    tag: str
    partition: str
    name: str
    seasons: str = ""  # where its season objects went (tmdb/seasons.py); "" without seasons


class Spool(msgspec.Struct, frozen=True):
    """A discover listing enumerated into spool objects (layout.py, source/discover.py)."""

    writer: str
    parts: int
    titles: int
    results: int
    duplicates: int
    filtered_out: int
    pages: int
    probes: int
    windows: int
    reported_total: int


class PeopleSpool(msgspec.Struct, frozen=True):
    """A people harvest's person ids, read once per run from its `from` harvest into a bitmap object
    (source/people.py), so that positions stay put whatever that harvest does meanwhile."""

    writer: str  # the lease token in the bitmap object's key
    people: int  # person ids selected: the run's positions 0 .. people - 1, ascending by id
    source_run: str  # the tag of the from-harvest's complete run they were read from
    titles: int  # held titles whose records were read
    credits: int  # credit entries read
    filtered_out: int  # credit entries the filters dropped


class PeopleReading(msgspec.Struct, frozen=True):
    """A people harvest's read of its `from` harvest under way (source/people.py): where the last
    checkpoint left it, so that the next invocation continues there instead of starting over."""

    writer: str  # the lease token in the key of the object holding the read so far
    slot: int  # which of that writer's two objects (0, 1): a checkpoint never replaces the one saved
    source_run: str  # the from-harvest's run being read: another one completed meanwhile = start over
    objects: int  # data objects read, in the read's order: the next one is this index
    last_key: str  # the key of the last object read: the order must still be the same to continue
    titles: int
    records: int
    credits: int
    filtered_out: int
    without_credits: int
    unreadable: int
    beyond: int


class RunCounts(msgspec.Struct):
    """The whole run's tallies, over all its invocations."""

    harvested: int = 0
    objects: int = 0
    misses: int = 0
    removed: int = 0  # refresh: titles TMDB or the selection no longer has (recorded, not deleted)
    failed: int = 0  # final failures
    pending: int = 0  # titles whose retries ran out, tried again by the next run
    seasons: int = 0  # season records (tmdb/seasons.py)
    seasons_left_out: int = 0  # seasons the series listed and TMDB did not send


class RefreshPlan(msgspec.Struct, frozen=True):
    """A refresh's work list, spooled into `_harvest/<tag>/refresh-<writer>-<n>.jsonl` (source/refresh.py)."""

    writer: str
    parts: int
    titles: int
    changed: int  # ids TMDB lists as changed that the harvest holds
    entered: int  # ids the selection has now and the harvest has not
    left: int  # ids the harvest holds and the selection no longer has
    pages: int  # change-list pages read
    # Defaults: a plan saved before these were counted reads as none.
    revisited: int = 0  # held ids of the revisit slices, neither changed nor left (source/revisit.py)
    unlisted: int = 0  # ids TMDB would not list: days of more than 500 change-list pages
    junk: int = 0  # change-list entries without a usable id ("id": null)


class SourceProgress(msgspec.Struct):
    """What a source keeps between invocations."""

    selected: int | None = None  # how many titles the input selects, once counted (progress total)
    spool: Spool | None = None  # discover: the enumerated listing, once complete
    plan: RefreshPlan | None = None  # refresh: the work list, once complete
    people: PeopleSpool | None = None  # people: the person ids, once read
    reading: PeopleReading | None = None  # people: the read of them, while it is under way


class _Done(msgspec.Struct):
    below: int
    extra: list[int]


def _encode_hook(value: Any) -> Any:
    if isinstance(value, DoneSet):
        return {"below": value.below, "extra": value.extra}
    raise NotImplementedError(type(value))


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is DoneSet:
        done = msgspec.convert(value, _Done)
        return DoneSet(done.below, done.extra)
    raise NotImplementedError(kind)


class RunState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The state object; as stored, it is this Struct in JSON (decoding it is the validation)."""

    version: int = STATE_VERSION
    run_id: str
    identity: Identity
    created: str  # ISO 8601, UTC
    tag: str  # names this run's objects: creation time + a random id, unique per run
    partition: str  # e.g. "2026/11/23": where every data object of this run goes (its start date)
    name: str  # first word of data object names: "movies" or "series"
    seasons: str = ""  # e.g. "series-seasons/2026/11/23": where its season objects go; "" without seasons
    next_seq: int = 0
    done: DoneSet = msgspec.field(default_factory=DoneSet)
    counts: RunCounts = msgspec.field(default_factory=RunCounts)
    status: Literal["running", "complete"] = "running"
    source: SourceProgress = msgspec.field(default_factory=SourceProgress)
    # (first commit number, writer token), ascending: commits from that number on were written by it.
    writers: list[tuple[int, str]] = msgspec.field(default_factory=list)
    pending: dict[int, Pending] = msgspec.field(default_factory=dict)  # by position
    supersedes: list[RunRef] = msgspec.field(default_factory=list)
    fresh_id: str | None = None  # the scheduled fresh start that created this run (lambda_handler.py)
    mode: Literal["run", "refresh"] = "run"
    since: str | None = None  # refresh: TMDB changes from this moment on (the start of the run before)
    base: RunRef | None = None  # refresh: the run whose selection this one updates (lake/selection.py)
    lineage: list[RunRef] = msgspec.field(default_factory=list)  # earlier runs whose objects make the table

    @classmethod
    def new(
        cls,
        identity: Identity,
        *,
        partition: str = "{yyyy}/{mm}/{dd}",
        name: str = "movies",
        seasons: str = "",
        now: datetime | None = None,
        after: str = "",
    ) -> RunState:
        """A new run; `after`: the tag of the run it follows (a refresh's base, the run a fresh start
        replaces), which its own tag must sort after (run_tag)."""
        now = now or datetime.now(UTC)
        return cls(
            run_id=run_id_for(identity),
            identity=identity,
            created=now.isoformat(timespec="seconds"),
            tag=run_tag(now, after),
            partition=render_partition(partition, now, name),
            name=name,
            seasons=render_partition(seasons, now, name) if seasons else "",
        )

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def writer_of(self, seq: int) -> str | None:
        """The token that wrote commit `seq` ("" for version 1 keys), or None past the last commit."""
        if seq >= self.next_seq:
            return None
        i = bisect.bisect_right(self.writers, seq, key=lambda w: w[0]) - 1
        return self.writers[i][1] if i >= 0 else None

    def start_writer(self, token: str) -> None:
        """Commits from next_seq on are `token`'s."""
        if self.writers and self.writers[-1][0] == self.next_seq:
            self.writers[-1] = (self.next_seq, token)
        else:
            self.writers.append((self.next_seq, token))

    def to_bytes(self) -> bytes:
        return msgspec.json.format(_ENCODER.encode(self), indent=2)

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> RunState:
        corrupt, advice = f"{where} is corrupt", "move it away or use --fresh"
        try:
            head = msgspec.json.decode(raw, type=_Head)
            version = head.version
            if version not in (1, STATE_VERSION):
                raise StateError(f"{where}: state version {version} is not supported")
            state = _DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            raise StateError(f"{corrupt} ({exc}); {advice}") from None
        except msgspec.DecodeError:
            raise StateError(f"{corrupt} (not JSON); {advice}") from None
        if version == 1:
            if head.source.get("complete"):
                # A version 1 discover spool has other key names: its positions cannot be trusted here.
                raise StateError(f"{where} is a discover harvest of an older version; use --fresh")
            # A version 1 run wrote keys without a token: "" stands for them (layout.py).
            state.writers = [(0, "")]
            state.version = STATE_VERSION
        consistent = state.next_seq >= 0 and state.writers == sorted(state.writers)
        if not consistent or state.run_id_mismatch():
            raise StateError(f"{corrupt} (inconsistent fields); {advice}")
        return state

    def run_id_mismatch(self) -> bool:
        return run_id_for(self.identity) != self.run_id

    def ref(self) -> RunRef:
        return RunRef(self.tag, self.partition, self.name, self.seasons)


class _Head(msgspec.Struct):
    version: int
    source: dict[str, Any] = {}


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)
_DECODER = msgspec.json.Decoder(RunState, dec_hook=_decode_hook)


def run_tag(now: datetime, after: str = "") -> str:
    """The start time and a random id: random, not derived from the identity, so a fresh start within
    the same second never reuses the keys of the run it replaces. Readers order a line's runs by their
    keys, hence tags (the latest record of a title, removals: lake/table.py), so the tag sorts after
    `after`'s, within one second (the random part would decide) or with a clock behind its."""
    stamp = max(f"{now:%Y%m%dT%H%M%SZ}", after[: len(_STAMP)])
    for _ in range(64):
        tag = f"{stamp}-{secrets.token_hex(4)}"
        if tag > after:
            return tag
    # `after`'s random part is at the top of its range: the next second sorts after it.
    second = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return run_tag(second + timedelta(seconds=1), after)


_STAMP = "20260101T000000Z"  # a tag's time part, as long as it is


def render_partition(template: str, when: datetime, name: str) -> str:
    """'{media}/{yyyy}/{mm}/{dd}' -> 'movies/2026/11/23'."""
    return template.format(yyyy=f"{when:%Y}", mm=f"{when:%m}", dd=f"{when:%d}", media=name).strip("/")


class StateStore:
    """Reads and writes the state object in a sink, each save conditional on the one before.

    `fenced=False` (a store without conditional writes, `unsafe_single_writer`) saves unconditionally.
    """

    def __init__(self, sink: Sink, key: str, *, fenced: bool = True) -> None:
        self._sink = sink
        self.key = key
        self._fenced = fenced
        self._etag: str | None = None  # of the state object as we last read or wrote it

    @property
    def where(self) -> str:
        return f"{self._sink.url.rstrip('/')}/{self.key}"

    async def load(self) -> RunState | None:
        """The saved state, or None. Raises StateError when it is corrupt (see `load_raw`)."""
        raw = await self.load_raw()
        return None if raw is None else RunState.from_bytes(raw, self.where)

    async def load_raw(self) -> bytes | None:
        """The saved state's bytes; remembers its ETag, so the next save replaces exactly this one."""
        current = await self._sink.get_versioned(self.key)
        self._etag = None if current is None else current.etag
        return None if current is None else current.data

    async def save(self, state: RunState) -> None:
        """Raises LeaseLost when another writer saved the state since we last read or wrote it."""
        data = state.to_bytes()
        try:
            if not self._fenced:
                self._etag = await self._sink.put(self.key, data)
            elif self._etag is None:
                self._etag = await self._sink.put(self.key, data, if_none_match=True)
            else:
                self._etag = await self._sink.put(self.key, data, if_match=self._etag)
        except PreconditionFailed:
            raise LeaseLost(
                f"another run saved {self.where} since this run last did: it took over this harvest; "
                "stopping without writing"
            ) from None
