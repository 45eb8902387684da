"""Counters of one invocation, and the run summary built from them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from ..lake.state import RefreshPlan, RunCounts


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    total: int | None = None  # titles this invocation expects to look up, when known in advance
    skipped_done: int = 0  # titles done by an earlier invocation of the same run
    harvested: int = 0
    misses: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    objects: int = 0
    bytes_written: int = 0
    final_failures: list[str] = field(default_factory=list)  # labels of titles that failed for good
    seasons: int = 0  # season records (a harvest with seasons)
    seasons_left_out: int = 0

    @property
    def looked_up(self) -> int:
        return self.harvested + sum(self.misses.values()) + self.failed

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class SourceSummary(msgspec.Struct, frozen=True, kw_only=True):
    describe: str
    rows: int
    malformed: int
    duplicates: int
    filtered_out: int
    selected: int


class RefreshSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A refresh run's plan (source/refresh.py), as planned at its start."""

    changed: int
    entered: int
    left: int
    revisited: int
    change_pages: int
    changes_unlisted: int  # ids TMDB would not list (a day past 500 change-list pages): never silent
    changes_junk: int  # change-list entries without a usable id, skipped


def refresh_summary(plan: RefreshPlan | None) -> RefreshSummary | None:
    if plan is None:
        return None
    return RefreshSummary(
        changed=plan.changed,
        entered=plan.entered,
        left=plan.left,
        revisited=plan.revisited,
        change_pages=plan.pages,
        changes_unlisted=plan.unlisted,
        changes_junk=plan.junk,
    )


class SeasonsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A series harvest's seasons (tmdb/seasons.py): records written, seasons listed and not sent."""

    records: int
    left_out: int
    output: str  # the seasons' folder


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation's report: printed by the CLI, returned to Lambda, stored as `summary.json`."""

    status: Literal["complete", "incomplete"]
    run: str  # the run tag
    source: SourceSummary
    skipped_done: int
    harvested: int
    misses: dict[str, int]  # by reason
    failed: int  # final failures of this invocation
    failures: dict[str, int]  # final failures by reason
    final_failures: list[str]  # their titles (the first 100; outcomes-*.jsonl has them all)
    pending: int  # titles whose retries ran out, tried again by the next run
    requests: int
    throttled: int
    retries: int
    objects: int
    bytes_written: int
    elapsed_s: float
    achieved_rps: float
    rate_limit: float
    output: str
    run_totals: RunCounts  # the whole run's counts, all invocations
    refresh: RefreshSummary | None = None  # a refresh run's plan
    seasons: SeasonsSummary | None = None  # a harvest with seasons


def format_summary(summary: Summary) -> str:
    """The human-readable end-of-run report (the same facts as the JSON summary object)."""
    misses = summary.misses
    miss_text = ", ".join(f"{k} {v}" for k, v in sorted(misses.items())) or "none"
    src = summary.source
    lines = [
        f"status           {summary.status}",
        f"source           {src.describe}",
        f"rows read        {src.rows}  (malformed {src.malformed}, duplicates {src.duplicates}, "
        f"filtered out {src.filtered_out})",
        f"titles selected  {src.selected}  (done by earlier invocations: {summary.skipped_done})",
        f"harvested        {summary.harvested}",
        f"misses           {sum(misses.values())}  ({miss_text})",
        f"failures         {summary.failed}  (final; pending, tried again by the next run: "
        f"{summary.pending})",
        f"requests         {summary.requests}  (429s {summary.throttled}, retries {summary.retries})",
        f"objects written  {summary.objects}  ({summary.bytes_written / 1e6:.1f} MB)",
        f"elapsed          {summary.elapsed_s:.1f} s",
        f"achieved rate    {summary.achieved_rps:.1f} requests/s (limit {summary.rate_limit:g})",
        f"output           {summary.output}",
    ]
    if summary.seasons is not None:
        lines.append(
            f"seasons          {summary.seasons.records}  (listed but not sent by TMDB: "
            f"{summary.seasons.left_out}) in {summary.seasons.output}"
        )
    if summary.final_failures:
        names = ", ".join(summary.final_failures[:10])
        more = len(summary.final_failures) - 10
        lines.append(f"failed for good  {names}{f' and {more} more' if more > 0 else ''}")
    r = summary.refresh
    if r is not None:
        lines.append(
            f"refresh          changed {r.changed}, entered {r.entered}, left {r.left}, revisited "
            f"{r.revisited}  (change-list pages {r.change_pages}, entries without an id {r.changes_junk})"
        )
        if r.changes_unlisted:
            lines.append(
                f"not listed       {r.changes_unlisted} changed ids (a change list past TMDB's 500 pages)"
            )
    t = summary.run_totals
    lines.append(
        f"whole run        harvested {t.harvested}, misses {t.misses}, failures {t.failed}, "
        f"pending {t.pending}, objects {t.objects}"
    )
    return "\n".join(lines)
