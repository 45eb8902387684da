"""`python -m harvester verify config.toml`: audit the harvest a config describes, writing nothing.

Loads the harvest's state (`_harvest/state-<config.harvest_id>.json`, the one `run` would resume), runs
the audit of lake/audit.py over the sink with GET and LIST requests only (no lease, no probe, no TMDB
credential): the harvest's table folder as its readers read it, the other harvests sharing it
included. Formats the report: one line per kind of finding, with its count and the first few keys or
ids, or the report as JSON for machines. A clean harvest exits 0, one with findings exits 2.
"""

from __future__ import annotations

import asyncio

import msgspec

from .config import Settings, harvest_id
from .errors import HarvesterError, StateError
from .lake.audit import audit
from .lake.audit_checks import Finding, Kind, Report
from .lake.sink import open_sink
from .lake.state import StateStore, state_key


class AuditFailed(HarvesterError):
    """The audit found something wrong with the harvest: the report says what."""

    exit_code = 2


async def verify(settings: Settings, stop: asyncio.Event | None = None) -> Report:
    sink = open_sink(settings.sink)
    try:
        store = StateStore(sink, state_key(harvest_id(settings)))
        state = await store.load()
        if state is None:
            raise StateError(f"no harvest state at {store.where}: nothing has been harvested there yet")
        return await audit(sink, harvest_id(settings), state, stop)
    finally:
        await sink.aclose()


def require_clean(report: Report) -> None:
    """Raise AuditFailed (exit 2) when the report has findings."""
    if not report.clean:
        found = sum(f.count for f in report.findings)
        kinds = ", ".join(f.kind for f in report.findings)
        raise AuditFailed(f"the audit found {found} problem(s) ({kinds}); the report above lists them")


def report_json(report: Report) -> str:
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode()


def reports_json(reports: list[Report]) -> str:
    """The reports of a config's harvests, as one JSON array (in the config's order)."""
    return msgspec.json.format(msgspec.json.encode(reports), indent=2).decode()


# What each kind of finding counts, for the text report: (one, many).
_COUNTED: dict[Kind, tuple[str, str]] = {
    "invalid": ("object is unreadable or invalid", "objects are unreadable or invalid"),
    "duplicates": ("record repeats a title of the table", "records repeat a title of the table"),
    "sections": ("record is without an appended section", "records are without an appended section"),
    "mixed": (
        "object is of the other media: readers of this folder mix movies and series",
        "objects are of the other media: readers of this folder mix movies and series",
    ),
    "missing": ("committed data object is missing", "committed data objects are missing"),
    "counts": (
        "count of the state disagrees with its objects",
        "counts of the state disagree with its objects",
    ),
    "orphans": (
        "object is accounted for by no state of the table, and its readers read it",
        "objects are accounted for by no state of the table, and its readers read them",
    ),
    "leftovers": (
        "object in the run's folder is accounted for by no state",
        "objects in the run's folder are accounted for by no state",
    ),
    "uploads": ("upload is unfinished", "uploads are unfinished"),
    "states": ("state of another harvest cannot be read", "states of other harvests cannot be read"),
}
SHOWN = 3  # examples per line of the text report (the JSON report has a few more)


def format_report(report: Report) -> str:
    pending = f", {report.pending} pending" if report.pending else ""
    lines = [
        f"state       {report.state}",
        f"run         {report.run}, {report.status}{pending}",
        f"table       {report.table} (readers read every object under it but `_` and `.` paths)",
        f"read        {report.data_objects} data objects: {report.records} records of {report.titles} "
        f"titles; {report.outcome_lines} outcome lines",
    ]
    if report.seasons is not None:
        lines.append(f"seasons     {report.seasons} season records in the run's seasons objects")
    if report.sharing:
        lines.append(f"shared      with harvest(s) {', '.join(report.sharing)}: their objects are read too")
    if report.updates:
        lines.append(f"updates     {report.updates} records of titles fetched again by a refresh")
    if report.superseded:
        lines.append(
            f"replaced    {report.superseded} objects of replaced runs, removed when this run completes"
        )
    if report.writer:
        lines.append(
            f"writing     {report.writer}: what it has not committed yet shows as orphans, leftovers or "
            "uploads"
        )
    lines.extend(_finding_line(f) for f in report.findings)
    lines.append(
        "result      clean" if report.clean else f"result      {len(report.findings)} kind(s) of finding"
    )
    return "\n".join(lines)


def _finding_line(finding: Finding) -> str:
    one, many = _COUNTED[finding.kind]
    shown = "; ".join(finding.examples[:SHOWN]) + ("; ..." if len(finding.examples) > SHOWN else "")
    return f"{finding.kind:<11} {finding.count} {one if finding.count == 1 else many}: {shown}"
