"""The audit's decisions, apart from reading the sink: bytes, keys and run states in, findings out.

The audit asks four things. Is every data object readable and valid (a JSON array or JSON Lines,
gzipped when its key ends in .gz, each record an object with an integer `id`, at most `chunk_size` of
them)? Does each title appear at most once in the table? Do the state's counts match what its committed
objects hold? Is anything there that no state accounts for, or an upload left open?

The table is what a reader (Spark, Glue, Athena) takes as one: the folder above the first date
placeholder of the partition template (the whole prefix for "{yyyy}/{mm}/{dd}", "movies/" for
"{media}/{yyyy}/{mm}/{dd}"), skipping paths that start with `_` or `.`, and in it the objects whose name
starts with the run's name word ("movies-", "series-": TMDB numbers movies and series apart). Its
titles come from every run there but those a state marks as replaced (`supersedes`: removed when the
run replacing them completes), so a title that another harvest, or a run whose state was lost, left in
the table counts as a duplicate. A title fetched again by a refresh (a later run of the same lineage)
is an update, not a duplicate: earlier objects are never rewritten.

Every state under `_harvest/` accounts for the objects its run committed (layout.py), for those of the
earlier runs of its lineage, and for those of the runs it replaces. Anything else in the table or in
the run's own folder is an orphan: a stale writer's object, a commit that did not finish, or something
put there by hand.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

import msgspec

from ..config import Compression, OutputFormat
from ..errors import StateError
from .chunks import extension
from .layout import (
    data_key,
    data_prefix,
    ids_key,
    ids_prefix,
    outcomes_key,
    outcomes_prefix,
    seq_of,
    spool_key,
    spool_prefix,
)
from .state import RunState

EXAMPLES = 5  # keys or ids a finding names; its count says how many there are
DATE_PLACEHOLDERS = ("{yyyy}", "{mm}", "{dd}")
SPOOL_KINDS = ("discover", "refresh")  # spooled work lists in a run's folder (source/)

# The kinds of finding, in the order the report lists them.
Kind = Literal["invalid", "duplicates", "missing", "counts", "orphans", "uploads", "states"]
KINDS: tuple[Kind, ...] = get_args(Kind)


class Finding(msgspec.Struct, frozen=True):
    kind: Kind
    count: int
    examples: list[str]  # the first few


class Report(msgspec.Struct, frozen=True, kw_only=True):
    clean: bool
    state: str  # where the audited state is
    run: str  # its run tag
    status: str  # "running" or "complete"
    pending: int  # titles whose retries ran out, tried again by the next run
    table: str  # the table's folder
    name: str  # the first word of its data objects' names
    data_objects: int  # read: this run's, its lineage's and other runs' in the table, orphans
    records: int  # in those objects
    titles: int  # distinct ids among them
    updates: int  # records of a title that an earlier run of the same lineage holds too (refreshes)
    outcome_lines: int  # in the run's committed outcomes objects
    superseded: int  # objects of replaced runs in the table, not read: removed when the run completes
    writer: str | None  # a run holding the lease now: orphans and uploads may be its work in progress
    findings: list[Finding]


def table_root(template: str, name: str) -> str:
    """The folder readers take as one table for a partition template ('' is the sink's root)."""
    fixed: list[str] = []
    for segment in template.strip("/").split("/"):
        if any(p in segment for p in DATE_PLACEHOLDERS):
            break
        fixed.append(segment.replace("{media}", name))
    return "".join(f"{folder}/" for folder in fixed)


def in_table(key: str, root: str, name: str) -> bool:
    """Whether readers of the table at `root` see `key` as one of `name`'s data objects."""
    parts = key.split("/")
    hidden = any(p.startswith(("_", ".")) for p in parts)
    return not hidden and key.startswith(root) and parts[-1].startswith(f"{name}-")


class _Record(msgspec.Struct):
    id: int  # the rest of the body is skipped, not parsed into objects


class _OutcomeLine(msgspec.Struct):
    outcome: Literal["miss", "removed", "failed"]


_ARRAY = msgspec.json.Decoder(list[_Record])
_LINE = msgspec.json.Decoder(_Record)
_OUTCOMES = msgspec.json.Decoder(_OutcomeLine)


@dataclass(frozen=True)
class DataScan:
    ids: list[int]
    problem: str | None = None


@dataclass(frozen=True)
class OutcomeScan:
    misses: int = 0
    removed: int = 0
    failed: int = 0
    problem: str | None = None


def scan_data(key: str, body: bytes, chunk_size: int | None) -> DataScan:
    """The title ids of a data object, or why it is not a valid one (`chunk_size` None: no limit)."""
    if not key.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
        return DataScan([], "not a .json or .jsonl object")
    try:
        text = gzip.decompress(body) if key.endswith(".gz") else body
    except (OSError, EOFError, zlib.error) as exc:
        return DataScan([], f"not a complete gzip stream ({exc})")
    try:
        lines = key.endswith((".jsonl", ".jsonl.gz"))
        records = _LINE.decode_lines(text) if lines else _ARRAY.decode(text)
    except msgspec.ValidationError as exc:
        return DataScan([], f"a record is not an object with an integer id ({exc})")
    except msgspec.DecodeError as exc:
        return DataScan([], f"not valid JSON ({exc})")
    ids = [r.id for r in records]
    if not ids:
        return DataScan([], "holds no records")
    if chunk_size is not None and len(ids) > chunk_size:
        return DataScan(ids, f"{len(ids)} records, more than chunk_size {chunk_size}")
    return DataScan(ids)


def scan_outcomes(body: bytes) -> OutcomeScan:
    """How many misses, removed titles and final failures an outcomes object lists, or why it is not
    a valid one."""
    try:
        lines = _OUTCOMES.decode_lines(body)
    except msgspec.ValidationError as exc:
        return OutcomeScan(problem=f"a line is not an outcome ({exc})")
    except msgspec.DecodeError as exc:
        return OutcomeScan(problem=f"not valid JSON Lines ({exc})")
    if not lines:
        return OutcomeScan(problem="holds no outcomes")
    kinds = [line.outcome for line in lines]
    return OutcomeScan(kinds.count("miss"), kinds.count("removed"), kinds.count("failed"))


def data_extension(state: RunState) -> str:
    fmt, compression = state.identity.sink.format, state.identity.sink.compression
    if fmt not in get_args(OutputFormat) or compression not in get_args(Compression):
        raise StateError(f"the state of run {state.tag} names an unknown format {fmt!r} ({compression!r})")
    return extension(cast(OutputFormat, fmt), cast(Compression, compression))


def _is_commit_key(state: RunState, key: str, key_of: Callable[[int, str], str]) -> bool:
    """Exactly the key written for one of the state's commits: its number, its writer, its name."""
    seq = seq_of(key)
    if seq is None:
        return False
    writer = state.writer_of(seq)
    return writer is not None and key == key_of(seq, writer)


def is_committed_data(state: RunState, key: str) -> bool:
    ext = data_extension(state)
    return _is_commit_key(state, key, lambda seq, writer: data_key(state, seq, writer, ext))


def is_committed_outcomes(state: RunState, key: str) -> bool:
    return _is_commit_key(state, key, lambda seq, writer: outcomes_key(state, seq, writer))


RunKey = Literal["outcomes", "accounted", "orphan", "other"]


def judge_run_key(state: RunState, key: str) -> RunKey:
    """What a key in the run's own folder is: a committed outcomes object (read and counted), another
    object the state accounts for, an orphan, or something the audit does not judge (summary, ...)."""
    if key.startswith(outcomes_prefix(state)):
        return "outcomes" if is_committed_outcomes(state, key) else "orphan"
    if key.startswith(ids_prefix(state)):
        committed = _is_commit_key(state, key, lambda seq, writer: ids_key(state, seq, writer))
        return "accounted" if committed else "orphan"
    for kind in SPOOL_KINDS:
        if key.startswith(spool_prefix(state, kind)):
            spool = state.source.spool if kind == "discover" else state.source.plan
            n = seq_of(key)
            if spool is None or n is None or n >= spool.parts:
                return "orphan"  # not in the state's list: an enumeration cut short left it
            return "accounted" if key == spool_key(state, spool.writer, n, kind) else "orphan"
    return "other"


Role = Literal["committed", "lineage", "superseded", "orphan"]


@dataclass(frozen=True)
class Place:
    """How the states account for a data key."""

    role: Role
    owner: int | None  # index of the state whose run (lineage, replaced run) the key is under
    run: str  # that run's data prefix; "" for a key under no run a state knows


def place_of(key: str, states: Sequence[RunState]) -> Place:
    for owner, state in enumerate(states):
        run = data_prefix(state)
        if key.startswith(run):
            return Place("committed" if is_committed_data(state, key) else "orphan", owner, run)
        for ref in state.lineage:
            if key.startswith(run := data_prefix(ref)):
                return Place("lineage", owner, run)
        for ref in state.supersedes:
            if key.startswith(run := data_prefix(ref)):
                return Place("superseded", owner, run)
    return Place("orphan", None, "")


@dataclass
class RunTally:
    """What the audited run's committed objects hold."""

    objects: int = 0
    records: int = 0
    misses: int = 0
    removed: int = 0
    failed: int = 0


def count_mismatches(state: RunState, tally: RunTally) -> list[str]:
    """Where the state's counts and its committed objects disagree (missing objects aside)."""
    c, found = state.counts, []
    pairs = (
        ("harvested titles", c.harvested, "records in its data objects", tally.records),
        ("misses", c.misses, "misses in its outcomes", tally.misses),
        ("removed titles", c.removed, "removed titles in its outcomes", tally.removed),
        ("final failures", c.failed, "failures in its outcomes", tally.failed),
        ("pending titles", c.pending, "pending titles it lists", len(state.pending)),
    )
    for counted, n, held, m in pairs:
        if n != m:
            found.append(f"the state counts {n} {counted}, and there are {m} {held}")
    if tally.objects > c.objects:
        found.append(f"the state counts {c.objects} data objects, and {tally.objects} are committed")
    settled = c.harvested + c.misses + c.removed + c.failed + len(state.pending)
    if len(state.done) != settled:
        found.append(
            f"the state marks {len(state.done)} titles done, and its counts settle {settled} "
            "(harvested, misses, removed, failures, pending)"
        )
    return found


def missing_commits(next_seq: int, present: set[int]) -> list[int]:
    """The first few commit numbers with no object at all (a commit may have had nothing to write)."""
    return [seq for seq in range(next_seq) if seq not in present][:EXAMPLES]


class Findings:
    """Counts per kind and the first few examples of each."""

    def __init__(self) -> None:
        self._counts: dict[Kind, int] = {}
        self._examples: dict[Kind, list[str]] = {}

    def add(self, kind: Kind, example: str, count: int = 1) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + count
        examples = self._examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(example)

    def listed(self) -> list[Finding]:
        return [Finding(k, self._counts[k], self._examples[k]) for k in KINDS if k in self._counts]


class Titles:
    """Every title id seen in the table with the object it was last seen in.

    Objects come in key order, and a run's objects share a prefix, so they come together: a title seen
    again in the same run is a duplicate, in a later run of the same lineage an update (a refresh
    fetched it again), in any other run a duplicate too. One dict entry per title; no body is kept.
    """

    def __init__(self, findings: Findings) -> None:
        self._last: dict[int, int] = {}  # title id -> index of the object it was last seen in
        self._objects: list[tuple[str, str, int]] = []  # (key, run, lineage) by index
        self._findings = findings
        self.records = 0
        self.updates = 0

    def __len__(self) -> int:
        return len(self._last)

    def add(self, key: str, run: str, lineage: int, ids: Sequence[int]) -> None:
        index = len(self._objects)
        self._objects.append((key, run, lineage))
        self.records += len(ids)
        again: dict[int, list[int]] = {}  # index of an earlier object (or this one) -> ids it has too
        for title in ids:
            last = self._last.get(title)
            self._last[title] = index
            if last is None:
                continue
            _, last_run, last_lineage = self._objects[last]
            if last_run != run and last_lineage == lineage:
                self.updates += 1
            else:
                again.setdefault(last, []).append(title)
        for last, repeated in again.items():  # one finding line per pair of objects
            where = f"twice in {key}" if last == index else f"in {self._objects[last][0]} and {key}"
            which = f"id {repeated[0]}" if len(repeated) == 1 else f"{len(repeated)} ids (e.g. {repeated[0]})"
            self._findings.add("duplicates", f"{which} {where}", count=len(repeated))


@dataclass(frozen=True)
class DataJob:
    key: str
    run: str  # the run's data prefix, or the key itself for an orphan of no known run
    lineage: int  # the state whose lineage the run belongs to (a title fetched again there is an update)
    chunk_size: int | None  # None: no state says how many records the object may hold
    ours: bool  # committed by the audited run: counted against its state


def table_jobs(
    keys: Sequence[str], root: str, states: Sequence[RunState], findings: Findings
) -> tuple[list[DataJob], int]:
    """The data objects of the table to read (orphans noted as found), and how many objects of replaced
    runs are left out. `states[0]` is the audited one."""
    jobs: list[DataJob] = []
    superseded = 0
    for key in keys:
        if not in_table(key, root, states[0].name):
            continue
        place = place_of(key, states)
        if place.role == "superseded":
            superseded += 1
            continue
        if place.role == "orphan":
            findings.add("orphans", key)
        if place.owner is None:  # under no run a state knows: a lineage of its own
            jobs.append(DataJob(key, key, -1 - len(jobs), None, False))
            continue
        owner = states[place.owner]
        ours = place.role == "committed" and place.owner == 0
        jobs.append(DataJob(key, place.run, place.owner, owner.identity.sink.chunk_size, ours))
    return jobs, superseded


def run_folder(keys: Sequence[str], state: RunState, findings: Findings) -> list[str]:
    """The committed outcomes objects among the keys of the run's folder (orphans noted as found)."""
    outcomes: list[str] = []
    for key in keys:
        judged = judge_run_key(state, key)
        if judged == "outcomes":
            outcomes.append(key)
        elif judged == "orphan":
            findings.add("orphans", key)
    return outcomes


def check_counts(state: RunState, tally: RunTally, committed: Sequence[str], findings: Findings) -> None:
    """Compare the state's counts with what its `committed` objects (data and outcomes) hold."""
    expected = state.counts.objects
    if tally.objects < expected:
        found = f"the state counts {expected}, and {tally.objects} are there"
        findings.add("missing", found, count=expected - tally.objects)
        present = {seq for seq in map(seq_of, committed) if seq is not None}
        for seq in missing_commits(state.next_seq, present):
            findings.add("missing", f"commit {seq:06d} has no object", count=0)
    for line in count_mismatches(state, tally):
        findings.add("counts", line)
