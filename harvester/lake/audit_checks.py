"""The audit's decisions, apart from reading the sink: bytes, keys and run states in, findings out.

The audit asks what a reader of the table sees. Is every data object readable and valid (a JSON array
or JSON Lines, gzipped when its key ends in .gz, each record an object with an integer `id`, at most
`chunk_size` of them, each with the sections its harvest appended)? Does each title appear at most
once in the table? Do the state's counts match what its committed objects hold? Is anything there that
no state accounts for, or an upload left open?

The table is what a reader (Athena, Glue, Spark, DuckDB's glob) takes as one: the folder above the
first date placeholder of the partition template (the whole prefix for "{yyyy}/{mm}/{dd}", "movies/"
for "{media}/{yyyy}/{mm}/{dd}", "<name>/" for a harvest of a list), and in it every object whose path
has no part starting with `_` or `.`, whatever its name. Its titles come from every object there but
those of runs a state marks as replaced (`supersedes`: removed when the run replacing them completes),
so a title that another harvest sharing the folder, a run whose state was lost, or a copy made by hand
holds too counts as a duplicate. A title fetched again by a refresh (a later run of the same lineage)
is an update, not a duplicate: earlier objects are never rewritten.

Every state under `_harvest/` accounts for the objects its run committed (layout.py), for those of the
earlier runs of its lineage, and for those of the runs it replaces; in the table, only the states whose
table is the same folder do. An object of a state of the other media is a finding of its own (TMDB
numbers movies and series apart: a reader of the folder would mix them). Anything else in the table is
an orphan that readers read (a stale writer's object, a commit that did not finish, an object of a
table nested inside this one, something put there by hand); anything else in the run's own folder is a
leftover (readers skip `_harvest/`, but no state accounts for it).
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import msgspec

from ..config import Compression, OutputFormat, table_folder
from ..errors import StateError
from ..items import Media
from .chunks import extension
from .layout import (
    data_key,
    data_prefix,
    ids_key,
    ids_prefix,
    outcomes_key,
    outcomes_prefix,
    seasons_key,
    seq_of,
    spool_key,
    spool_prefix,
)
from .state import Identity, RunState

EXAMPLES = 5  # keys or ids a finding names; its count says how many there are
SPOOL_KINDS = ("discover", "refresh")  # spooled work lists in a run's folder (source/)
DATA_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")

# The kinds of finding, in the order the report lists them.
Kind = Literal[
    "invalid",
    "duplicates",
    "sections",
    "mixed",
    "missing",
    "counts",
    "orphans",
    "leftovers",
    "uploads",
    "states",
]
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
    table: str  # the table's folder: readers read every object under it but `_` and `.` paths
    name: str  # the first word of its data objects' names
    sharing: list[str]  # the other harvests whose states account for objects of the table
    data_objects: int  # read: this run's, its lineage's and other runs' in the table, orphans
    records: int  # in those objects
    titles: int  # distinct ids among them
    updates: int  # records of a title that an earlier run of the same lineage holds too (refreshes)
    outcome_lines: int  # in the run's committed outcomes objects
    superseded: int  # objects of replaced runs in the table, not read: removed when the run completes
    writer: str | None  # a run holding the lease now: orphans and uploads may be its work in progress
    findings: list[Finding]
    seasons: int | None = None  # season records in the run's committed seasons objects (with seasons)


def table_root(template: str, name: str) -> str:
    """The folder readers take as one table for a partition template ('' is the sink's root)."""
    media: dict[str, Media] = {"series": "tv", "people": "person"}
    return table_folder(template, media.get(name, "movie"))


def in_table(key: str, root: str) -> bool:
    """Whether readers of the table at `root` read `key`: every object under it whose path has no part
    starting with `_` or `.` (Athena, Glue, Spark and DuckDB's glob skip those), whatever its name."""
    hidden = any(p.startswith(("_", ".")) for p in key.split("/"))
    return not hidden and key.startswith(root)


def is_data_name(key: str) -> bool:
    return key.endswith(DATA_SUFFIXES)


def required_sections(identity: Identity) -> tuple[str, ...]:
    """The sections each record of a harvest must hold: what it appended (`tmdb.append`), but a TV
    season (TMDB leaves out a season that does not exist) and nothing for discover results stored as
    they are (`details = false`: no details request, so nothing appended)."""
    if identity.source.type == "discover":
        try:
            details = _DISCOVER_INPUT.decode(identity.source.input).details
        except msgspec.DecodeError:
            details = True  # not the fingerprint discover writes: judge it as details (the default)
        if not details:
            return ()
    return tuple(name for name in identity.tmdb.append if not name.startswith("season/"))


class _DiscoverInput(msgspec.Struct):
    details: bool = True  # the one field of a discover source's fingerprint (source/discover.py) read


_DISCOVER_INPUT = msgspec.json.Decoder(_DiscoverInput)


class _Record(msgspec.Struct):
    id: int  # the rest of the body is skipped, not parsed into objects


class _OutcomeLine(msgspec.Struct):
    outcome: Literal["miss", "removed", "failed"]


_OUTCOMES = msgspec.json.Decoder(_OutcomeLine)
_Decoders = tuple[msgspec.json.Decoder[list[_Record]], msgspec.json.Decoder[_Record]]
_NULL = msgspec.Raw(b"null")


@functools.cache
def _record_decoders(sections: tuple[str, ...]) -> _Decoders:
    """Decoders of an array of records and of one record: `_Record` plus one `Raw` field per section
    (skipped, not parsed; tmdb/lookup.py checks a details body alike), so a record's sections can be
    told present or absent at the cost of finding where they end."""
    record: Any = _Record
    if sections:
        fields = [(f"s{i}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for i in range(len(sections))]
        rename = {f"s{i}": name for i, name in enumerate(sections)}  # keys such as "watch/providers"
        record = msgspec.defstruct("_RecordSections", fields, bases=(_Record,), rename=rename)
    return msgspec.json.Decoder(list[record]), msgspec.json.Decoder(record)


def _lacks(record: _Record, count: int) -> list[int]:
    """The indexes of the sections (fields s0, s1, ...) a decoded record has not, or has as null."""
    absent = []
    for i in range(count):
        section = getattr(record, f"s{i}")
        if section is msgspec.UNSET or section == _NULL:
            absent.append(i)
    return absent


@dataclass(frozen=True)
class DataScan:
    ids: list[int]
    problem: str | None = None
    lacking: int = 0  # records without one of the required sections
    lacking_ids: tuple[int, ...] = ()  # the first few of them
    lacked: tuple[str, ...] = ()  # the sections they are without, in the harvest's order


@dataclass(frozen=True)
class OutcomeScan:
    misses: int = 0
    removed: int = 0
    failed: int = 0
    problem: str | None = None


def scan_data(key: str, body: bytes, chunk_size: int | None, sections: Sequence[str] = ()) -> DataScan:
    """The title ids of a data object, or why it is not a valid one (`chunk_size` None: no limit), and
    which of its records are without one of `sections` (absent or null)."""
    if not is_data_name(key):
        return DataScan([], "not a .json or .jsonl object")
    try:
        text = gzip.decompress(body) if key.endswith(".gz") else body
    except (OSError, EOFError, zlib.error) as exc:
        return DataScan([], f"not a complete gzip stream ({exc})")
    array, line = _record_decoders(tuple(sections))
    try:
        lines = key.endswith((".jsonl", ".jsonl.gz"))
        records: list[_Record] = line.decode_lines(text) if lines else array.decode(text)
    except msgspec.ValidationError as exc:
        return DataScan([], f"a record is not an object with an integer id ({exc})")
    except msgspec.DecodeError as exc:
        return DataScan([], f"not valid JSON ({exc})")
    ids = [r.id for r in records]
    if not ids:
        return DataScan([], "holds no records")
    problem = None
    if chunk_size is not None and len(ids) > chunk_size:
        problem = f"{len(ids)} records, more than chunk_size {chunk_size}"
    if not sections:
        return DataScan(ids, problem)
    lacking, lacking_ids, lacked = 0, list[int](), set[int]()
    for record in records:
        absent = _lacks(record, len(sections))
        if absent:
            lacking += 1
            lacked.update(absent)
            if len(lacking_ids) < EXAMPLES:
                lacking_ids.append(record.id)
    return DataScan(ids, problem, lacking, tuple(lacking_ids), tuple(sections[i] for i in sorted(lacked)))


class _Season(msgspec.Struct):
    series_id: int
    season_number: int


_SEASONS = msgspec.json.Decoder(list[_Season])
_SEASON_LINE = msgspec.json.Decoder(_Season)


@dataclass(frozen=True)
class SeasonScan:
    pairs: list[tuple[int, int]]  # (series_id, season_number) of each record
    problem: str | None = None


def scan_seasons(key: str, body: bytes) -> SeasonScan:
    """The (series, season) of each record of a seasons object, or why it is not a valid one."""
    try:
        text = gzip.decompress(body) if key.endswith(".gz") else body
        lines = key.endswith((".jsonl", ".jsonl.gz"))
        records = _SEASON_LINE.decode_lines(text) if lines else _SEASONS.decode(text)
    except (OSError, EOFError, zlib.error) as exc:
        return SeasonScan([], f"not a complete gzip stream ({exc})")
    except msgspec.ValidationError as exc:
        return SeasonScan([], f"a record is not a season with an integer series_id and season_number ({exc})")
    except msgspec.DecodeError as exc:
        return SeasonScan([], f"not valid JSON ({exc})")
    return SeasonScan([(r.series_id, r.season_number) for r in records])


class Seasons:
    """The run's seasons, object by object: a series' seasons are committed together, so a series in
    two objects, or a season twice in one, is a duplicate. One dict entry per series; no body kept."""

    def __init__(self, findings: Findings) -> None:
        self._object_of: dict[int, str] = {}
        self._findings = findings
        self.records = 0

    def add(self, key: str, scan: SeasonScan) -> None:
        if scan.problem is not None:
            self._findings.add("invalid", f"{key}: {scan.problem}")
        self.records += len(scan.pairs)
        seen: set[tuple[int, int]] = set()
        for pair in scan.pairs:
            series, number = pair
            where = self._object_of.setdefault(series, key)
            if pair in seen or where != key:
                self._findings.add("duplicates", f"season {number} of series {series} in {key}")
            seen.add(pair)

    def check(self, state: RunState) -> None:
        if self.records != state.counts.seasons:
            self._findings.add(
                "counts",
                f"the state counts {state.counts.seasons} season records, and {self.records} are there",
            )


def season_objects(keys: Sequence[str], state: RunState, findings: Findings) -> list[str]:
    """The committed seasons objects among the keys under the run's seasons prefix; others are orphans."""
    committed = []
    ext = data_extension(state)
    for key in keys:
        if _is_commit_key(state, key, lambda seq, writer: seasons_key(state, seq, writer, ext)):
            committed.append(key)
        else:
            findings.add("orphans", key)
    return committed


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
class Holder:
    """A harvest's state found in the sink (`_harvest/state-<harvest>.json`)."""

    harvest: str  # config.harvest_id
    state: RunState

    @functools.cached_property
    def table(self) -> str:
        """The folder its objects make a table of, as readers take it."""
        return table_root(self.state.identity.sink.partition, self.state.name)


def sharing(holders: Sequence[Holder]) -> list[str]:
    """The other harvests whose states account for objects of the audited one's table (`holders[0]`):
    same folder, same media."""
    ours = holders[0]
    return [h.harvest for h in holders[1:] if h.table == ours.table and h.state.name == ours.state.name]


@dataclass(frozen=True)
class DataJob:
    key: str
    run: str  # the run's data prefix, or the key itself for an orphan of no known run
    lineage: int  # the state whose lineage the run belongs to (a title fetched again there is an update)
    chunk_size: int | None  # None: no state says how many records the object may hold
    ours: bool  # committed by the audited run: counted against its state
    sections: tuple[str, ...] = ()  # each record must hold these (required_sections of its harvest)


def table_jobs(
    keys: Sequence[str], root: str, holders: Sequence[Holder], findings: Findings
) -> tuple[list[DataJob], int]:
    """The objects readers of the table at `root` read, to be read in turn (orphans, objects of the
    other media noted as found), and how many objects of replaced runs are left out. `holders[0]` is
    the audited harvest."""
    jobs: list[DataJob] = []
    superseded = 0
    name, states = holders[0].state.name, [h.state for h in holders]
    for key in keys:
        if not in_table(key, root):
            continue
        place = place_of(key, states)
        if place.role == "superseded":
            superseded += 1
            continue
        if place.owner is None:  # under no run a state knows: a lineage of its own
            findings.add("orphans", key)
            if is_data_name(key):  # a copy or a stray file: its titles count, and whether it is valid
                jobs.append(DataJob(key, key, -1 - len(jobs), None, False))
            continue
        owner = holders[place.owner]
        if owner.state.name != name:  # TMDB numbers movies and series apart: not read as this table
            findings.add("mixed", f"{key} (of harvest {owner.harvest}, of {owner.state.name})")
            continue
        if owner.table != root:
            where = repr(owner.table) if owner.table else "the sink's root"
            findings.add("orphans", f"{key} (of harvest {owner.harvest}, whose table is {where})")
        elif place.role == "orphan":
            findings.add("orphans", key)
        ours = place.role == "committed" and place.owner == 0
        sections = required_sections(owner.state.identity)
        jobs.append(
            DataJob(key, place.run, place.owner, owner.state.identity.sink.chunk_size, ours, sections)
        )
    return jobs, superseded


def run_folder(keys: Sequence[str], state: RunState, findings: Findings) -> list[str]:
    """The committed outcomes objects among the keys of the run's folder (leftovers noted as found)."""
    outcomes: list[str] = []
    for key in keys:
        judged = judge_run_key(state, key)
        if judged == "outcomes":
            outcomes.append(key)
        elif judged == "orphan":
            findings.add("leftovers", key)
    return outcomes


def note_sections(key: str, scan: DataScan, findings: Findings) -> None:
    """One finding line per object whose records are without a section their harvest appended."""
    if not scan.lacking:
        return
    ids = ", ".join(map(str, scan.lacking_ids)) + (", ..." if scan.lacking > len(scan.lacking_ids) else "")
    which = f"id {ids}" if scan.lacking == 1 else f"{scan.lacking} records (ids {ids})"
    findings.add("sections", f"{which} without {', '.join(scan.lacked)} in {key}", count=scan.lacking)


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
