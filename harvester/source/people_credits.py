"""Which people the credits of a harvest's records name, by a people harvest's filters. Pure: a data
object's bytes in, (title id, person ids) out.

What is read of a record (a movie's or a series' details body as TMDB sent it): its `id`, and the
`cast` and `crew` of each of `credits` and `aggregate_credits` that it carries (a series may append
both; a movie has only `credits`). Of a credit: the person's `id` and `popularity`, a crew member's
`department`, and the job: `job` in `credits`, every `jobs[].job` in `aggregate_credits`. A cast credit
is of the department "Acting" (TMDB's name for it) and has no job.

A credit is taken when its person's popularity (as the credit carries it) is at least
`min_popularity` and, if `departments` or `jobs` are given, its department is one of `departments` or
one of its jobs is one of `jobs` (either list; with neither, every credit). A person is taken when one
of their credits is: the answer does not depend on the order in which records are read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from ..config import SourceSettings

ACTING = "Acting"  # the cast's department


class _Job(msgspec.Struct):
    job: object = None


class _Entry(msgspec.Struct):
    """A cast or crew entry: only what the filters read is decoded (the rest is skipped, not built)."""

    id: object = None
    popularity: object = None
    department: object = None
    job: object = None  # credits
    jobs: list[_Job] | None = None  # aggregate_credits


class _Credits(msgspec.Struct):
    cast: list[_Entry] | None = None
    crew: list[_Entry] | None = None


class _Record(msgspec.Struct):
    id: object = None
    credits: _Credits | None = None
    aggregate_credits: _Credits | None = None


_decode_array = msgspec.json.Decoder(list[_Record]).decode
_decode_one = msgspec.json.Decoder(_Record).decode
_decode_any = msgspec.json.Decoder().decode


@dataclass
class CreditCounts:
    records: int = 0  # records read (every version of every title)
    without_credits: int = 0  # records carrying neither credits nor aggregate_credits
    unreadable: int = 0  # records whose credits are not TMDB's shape: skipped
    credits: int = 0  # credit entries of the titles whose records were taken
    filtered_out: int = 0  # of those, the entries the filters (or a missing id) dropped


@dataclass(frozen=True)
class CreditFilter:
    departments: frozenset[str]
    jobs: frozenset[str]
    min_popularity: float

    @classmethod
    def of(cls, source: SourceSettings) -> CreditFilter:
        return cls(frozenset(source.departments), frozenset(source.jobs), source.min_popularity)

    def takes(self, entry: _Entry, cast: bool) -> bool:
        if self.min_popularity > 0 and _number(entry.popularity) < self.min_popularity:
            return False
        if not self.departments and not self.jobs:
            return True
        department = ACTING if cast else entry.department
        if department in self.departments:
            return True
        if cast or not self.jobs:
            return False
        if entry.job in self.jobs:
            return True
        return any(j.job in self.jobs for j in entry.jobs or ())


class Credits:
    """Reads data objects: each record's title id and the person ids its credits give, by the filter."""

    def __init__(self, credit_filter: CreditFilter) -> None:
        self._filter = credit_filter
        self.counts = CreditCounts()

    def records(self, key: str, raw: bytes) -> Iterator[_Record]:
        """The records of one data object (its key says its format: .json, .jsonl, .gz)."""
        if key.endswith(".gz"):
            raw = gzip.decompress(raw)
        lines = key.removesuffix(".gz").endswith(".jsonl")
        try:
            records = (
                [_decode_one(line) for line in raw.splitlines() if line.strip()]
                if lines
                else _decode_array(raw)
            )
        except msgspec.ValidationError:
            records = list(
                self._one_by_one(raw, lines)
            )  # some record is not TMDB's shape: the others still count
        self.counts.records += len(records)
        return iter(records)

    def _one_by_one(self, raw: bytes, lines: bool) -> Iterator[_Record]:
        items = (
            [_decode_any(line) for line in raw.splitlines() if line.strip()] if lines else _decode_any(raw)
        )
        for item in items if isinstance(items, list) else ():
            try:
                yield msgspec.convert(item, _Record)
            except msgspec.ValidationError:
                self.counts.unreadable += 1

    def people(self, record: _Record) -> Iterator[int]:
        """The person ids the record's credits give (repeats included), counting what it reads."""
        counts, takes = self.counts, self._filter.takes
        sections = [s for s in (record.credits, record.aggregate_credits) if s is not None]
        if not sections:
            counts.without_credits += 1
        for section in sections:
            for entries, cast in ((section.cast, True), (section.crew, False)):
                for entry in entries or ():
                    counts.credits += 1
                    person = title_id(entry.id)
                    if person is not None and takes(entry, cast):
                        yield person
                    else:
                        counts.filtered_out += 1


def title_id(value: object) -> int | None:
    """A TMDB id: a positive int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
