"""Rolling revisits: which held titles a refresh fetches again whatever the change lists say.

TMDB's change lists miss edits (translation- and title-only ones, deleted and merged ids), a day of more
than 50,000 changes is listed only in part, and the edge may serve a body cached from before a change.
So each refresh also takes the held titles of the day's slice: day d's slice is `d.toordinal() %
revisit_days`, a title's is `id % revisit_days`. A refresh covers every day after the start date of
the last complete run up to its own (a skipped day's slice is not lost: all of them once the gap
reaches revisit_days). The days the refreshes of a harvest cover are contiguous, so any revisit_days
consecutive days hold every slice once: at each refresh, no held title was fetched more than
revisit_days days before. Pure: dates and ids in, decisions out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Revisit:
    every: int  # revisit_days; 0: no rolling revisit
    slices: frozenset[int]  # the values of id % every that are due
    whole: bool = False  # every held title (a truncated change list with revisits off)

    def due(self, tmdb_id: int) -> bool:
        return self.whole or (self.every > 0 and tmdb_id % self.every in self.slices)

    @property
    def share(self) -> float:
        """The share of the held titles due (ids spread evenly over the slices)."""
        if self.whole:
            return 1.0
        return len(self.slices) / self.every if self.every else 0.0

    def describe(self) -> str:
        if self.whole:
            return "every held title"
        if not self.every:
            return "off"
        return f"{len(self.slices)} of {self.every} slices"


def slice_of(day: date, every: int) -> int:
    return day.toordinal() % every


def due(since: date, today: date, every: int) -> Revisit:
    """The slices of the days after `since` (the last complete run's start date) up to `today`."""
    if every <= 0:
        return Revisit(0, frozenset())
    gap = min((today - since).days, every)
    return Revisit(every, frozenset(slice_of(today - timedelta(days=n), every) for n in range(gap)))


def everything(every: int) -> Revisit:
    return Revisit(every, frozenset(range(every)), whole=True)
