"""The catalogue over days: which titles change, appear and go on each day after day 0.

Day 0 is the catalogue the rest of the stand-in describes, unchanged. The server's today is
`base_date + day` (StandinConfig); a test moves it with `standin.config.day += 1`. Every later day
d >= 1 is drawn from the seed alone (random.Random seeded with a str hashes it with SHA-512, so the
same in every process), in order, each day from the catalogue as the day before left it:

    gone      round(gone_share * N) titles alive on d-1: from d on, details, sub-resources and the
              direct IMDb lookup answer 404 (status 34), /find finds nothing, and they are out of
              the export and discover
    appeared  round(new_share * N) titles new to the listings: in the export and discover from d on
    changed   round(changed_share * N) titles alive on d-1 and not gone on d: from d on their bodies
              show revision r, the number of days up to d they changed on: popularity drawn afresh,
              vote_count up by 1 to 9 a revision, the overview ending in "[revision r]"
              (titles.revised_facts, bodies.revised_overview); discover and the export agree

N is the size of the catalogue's population at day 0: the first max(discover, export) titles of the
media (titles.population_numbers). Samples are drawn over the positions 0 .. N + appeared so far - 1
(a position already gone is skipped, so a day may change or remove a few fewer than the share);
appeared titles take the next titles of the media after the population, in IMDb number order. So a
new title is new to the listings: details answered for it before (as they answer for any title the
catalogue knows, listed or not), which the real TMDB would not.

TMDB's change list of day d (`/movie/changes`) names the changed, appeared and gone titles of d, and
on a crowded change day (StandinConfig.crowded_changes: day -> k) k more: the media's first titles in
IMDb number order, day after crowded day taking the next k (so the first crowded day holds the day-0
population, the titles a harvest holds, and each crowded day lists ids of its own). They are listed and
nothing else (TMDB lists edits a body need not show): their bodies keep their revision. A day of more
than 50,000 ids is how a test reaches TMDB's 500-page limit without a catalogue that large.

Pure helpers for tests (what a refresh must find), in TMDB ids of one media, ascending:
`changed_ids`, `appeared_ids`, `gone_ids`, `crowded_ids`, `listed_ids` (the change list of one day), `alive`,
`revision_of`, and `exports.export_ids` (an export file's ids in file order).
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date as Date
from datetime import timedelta
from functools import lru_cache
from itertools import islice
from typing import NamedTuple, Protocol

from harvester.items import Media

from .titles import (
    Kind,
    imdb_id_for,
    imdb_id_from_number,
    kind_of,
    media_numbers,
    media_of_kind,
    parse_imdb_id,
    population_numbers,
    tmdb_id_for_number,
)

DEFAULT_CHANGED_SHARE = 0.01  # of the catalogue a day: TMDB edits about 1% of its movies daily
DEFAULT_NEW_SHARE = 0.001
DEFAULT_GONE_SHARE = 0.0005


class DaysConfig(Protocol):
    """What the day model depends on (StandinConfig has these fields)."""

    @property
    def seed(self) -> int: ...

    @property
    def day(self) -> int: ...

    @property
    def base_date(self) -> Date: ...

    @property
    def discover_movies(self) -> int: ...

    @property
    def discover_tv(self) -> int: ...

    @property
    def export_movies(self) -> int | None: ...

    @property
    def export_tv(self) -> int | None: ...

    @property
    def changed_share(self) -> float: ...

    @property
    def new_share(self) -> float: ...

    @property
    def gone_share(self) -> float: ...

    @property
    def kind_overrides(self) -> Mapping[str, Kind]: ...

    @property
    def crowded_changes(self) -> Mapping[int, int]: ...


def today(config: DaysConfig) -> Date:
    """The server's date: base_date + day."""
    return config.base_date + timedelta(days=config.day)


def day_of(config: DaysConfig, when: Date) -> int:
    """The day number of a calendar date (0 for base_date, negative before it)."""
    return (when - config.base_date).days


def discover_count(media: Media, config: DaysConfig) -> int:
    return config.discover_movies if media == "movie" else config.discover_tv


def export_count(media: Media, config: DaysConfig) -> int:
    """Titles of the day-0 population in the export (default: as many as discover has)."""
    count = config.export_movies if media == "movie" else config.export_tv
    return discover_count(media, config) if count is None else count


class DayChanges(NamedTuple):
    """What one day did, as IMDb numbers (in the order drawn; appeared ones ascending)."""

    gone: tuple[int, ...]
    appeared: tuple[int, ...]
    changed: tuple[int, ...]


_NO_CHANGE = DayChanges((), (), ())


class Timeline:
    """The days of one media's catalogue, computed in order as far as asked and kept."""

    def __init__(
        self,
        media: Media,
        size: int,
        overrides: tuple[tuple[str, Kind], ...],
        seed: int,
        shares: tuple[float, float, float],
    ) -> None:
        self.media = media
        self.numbers = population_numbers(media, size, overrides)  # position -> IMDb number, day 0
        self._overrides = dict(overrides)
        self._seed = seed
        n = len(self.numbers)
        changed, new, gone = shares
        self._per_day = (round(changed * n), round(new * n), round(gone * n))
        self._appeared: array[int] = array("q")  # positions n, n+1, ... in order of appearance
        self._next_candidates: Iterator[int] | None = None
        self._days: list[DayChanges] = [_NO_CHANGE]  # day 0 changed nothing
        self._gone_on: dict[int, int] = {}  # IMDb number -> the day it went
        self._changed_on: dict[int, list[int]] = {}  # IMDb number -> days it changed, ascending
        self._appeared_on: dict[int, int] = {}  # IMDb number -> the day it appeared

    @property
    def size(self) -> int:
        return len(self.numbers)

    def _number_at(self, position: int) -> int:
        n = len(self.numbers)
        return self.numbers[position] if position < n else self._appeared[position - n]

    def _new_numbers(self, k: int) -> list[int]:
        if self._next_candidates is None:
            start = (self.numbers[-1] + 1) if len(self.numbers) else 1
            self._next_candidates = (
                n for n in media_numbers(self.media, start) if self._media_of(n) == self.media
            )
        return list(islice(self._next_candidates, k))

    def _media_of(self, n: int) -> Media | None:
        if not self._overrides:
            return self.media  # media_numbers yields only this media's natural numbers
        return media_of_kind(kind_of(imdb_id_from_number(n), self._overrides))

    def day(self, d: int) -> DayChanges:
        """What day d did (nothing for d <= 0)."""
        if d <= 0:
            return _NO_CHANGE
        while len(self._days) <= d:
            self._draw(len(self._days))
        return self._days[d]

    def _draw(self, d: int) -> None:
        changed_k, new_k, gone_k = self._per_day
        span = len(self.numbers) + len(self._appeared)  # positions alive or gone before day d
        rng = random.Random(f"standin-days:{self.media}:{self._seed}:{d}")
        gone = []
        for p in rng.sample(range(span), min(gone_k, span)):
            n = self._number_at(p)
            if n not in self._gone_on:
                self._gone_on[n] = d
                gone.append(n)
        changed = []
        for p in rng.sample(range(span), min(changed_k, span)):
            n = self._number_at(p)
            if n not in self._gone_on:
                self._changed_on.setdefault(n, []).append(d)
                changed.append(n)
        appeared = self._new_numbers(new_k)
        for n in appeared:
            self._appeared_on[n] = d
        self._appeared.extend(appeared)
        self._days.append(DayChanges(tuple(gone), tuple(appeared), tuple(changed)))

    def alive(self, n: int, d: int) -> bool:
        """Whether IMDb number n is in the catalogue on day d (titles outside the population always are)."""
        self.day(d)
        went = self._gone_on.get(n)
        return went is None or went > d

    def listed(self, n: int, d: int) -> bool:
        """Whether n is in the listings (export, discover) on day d: alive, and appeared by then."""
        appeared = self._appeared_on.get(n)
        return (appeared is None or appeared <= d) and self.alive(n, d)

    def revision(self, n: int, d: int) -> int:
        """How many days up to d title n changed on."""
        self.day(d)
        days = self._changed_on.get(n)
        return 0 if days is None else bisect.bisect_right(days, d)

    def appeared_until(self, d: int) -> list[int]:
        """IMDb numbers that appeared on days 1..d, in order of appearance (ascending)."""
        self.day(d)
        return [n for n in self._appeared if self._appeared_on[n] <= d]

    def in_population(self, n: int) -> bool:
        i = bisect.bisect_left(self.numbers, n)
        return i < len(self.numbers) and self.numbers[i] == n


@dataclass(frozen=True)
class TimelineKey:
    media: Media
    size: int
    overrides: tuple[tuple[str, Kind], ...]
    seed: int
    shares: tuple[float, float, float]


@lru_cache(maxsize=8)
def timeline_of(key: TimelineKey) -> Timeline:
    return Timeline(key.media, key.size, key.overrides, key.seed, key.shares)


def timeline_key(media: Media, config: DaysConfig) -> TimelineKey:
    size = max(discover_count(media, config), export_count(media, config))
    overrides = tuple(sorted(config.kind_overrides.items())) if config.kind_overrides else ()
    shares = (config.changed_share, config.new_share, config.gone_share)
    return TimelineKey(media, size, overrides, config.seed, shares)


def timeline(media: Media, config: DaysConfig) -> Timeline:
    """The media's timeline for this configuration (built at first use, then kept and extended)."""
    return timeline_of(timeline_key(media, config))


def crowded_numbers(config: DaysConfig, media: Media, d: int) -> tuple[int, ...]:
    """The IMDb numbers a crowded change day lists beyond its changes (none on other days)."""
    if d not in config.crowded_changes:
        return ()
    return _crowded(media, tuple(sorted(config.crowded_changes.items())))[d]


@lru_cache(maxsize=4)
def _crowded(media: Media, crowded: tuple[tuple[int, int], ...]) -> dict[int, tuple[int, ...]]:
    numbers = list(islice(media_numbers(media), sum(k for _, k in crowded)))
    out, start = {}, 0
    for d, k in crowded:
        out[d] = tuple(numbers[start : start + k])
        start += k
    return out


def moved(config: DaysConfig) -> bool:
    """Whether anything can differ from day 0 (cheap: day 0 never builds a timeline)."""
    return config.day > 0 and (config.changed_share > 0 or config.new_share > 0 or config.gone_share > 0)


# ---------------------------------------------------------------------------------------------
# Pure helpers: what a day did, in TMDB ids


def _ids(media: Media, numbers: tuple[int, ...] | list[int]) -> list[int]:
    return sorted(tmdb_id_for_number(media, n) for n in numbers)


def changed_ids(config: DaysConfig, media: Media, day: int) -> list[int]:
    """TMDB ids whose bodies changed on `day` (ascending)."""
    return _ids(media, timeline(media, config).day(day).changed)


def appeared_ids(config: DaysConfig, media: Media, day: int) -> list[int]:
    """TMDB ids that entered the listings on `day` (ascending)."""
    return _ids(media, timeline(media, config).day(day).appeared)


def gone_ids(config: DaysConfig, media: Media, day: int) -> list[int]:
    """TMDB ids that answer 404 from `day` on (ascending)."""
    return _ids(media, timeline(media, config).day(day).gone)


def crowded_ids(config: DaysConfig, media: Media, day: int) -> list[int]:
    """TMDB ids a crowded change day lists beyond what it changed (ascending; none on other days)."""
    return _ids(media, crowded_numbers(config, media, day))


def listed_ids(config: DaysConfig, media: Media, day: int) -> list[int]:
    """TMDB's change list of `day`: changed, appeared, gone and crowded ids together (ascending)."""
    c = timeline(media, config).day(day)
    numbers = {*c.changed, *c.appeared, *c.gone, *crowded_numbers(config, media, day)}
    return sorted({tmdb_id_for_number(media, n) for n in numbers})


def _number_of(media: Media, tmdb_id: int, config: DaysConfig) -> int | None:
    imdb_id = imdb_id_for(media, tmdb_id, config.kind_overrides)
    return None if imdb_id is None else parse_imdb_id(imdb_id)


def alive(config: DaysConfig, media: Media, tmdb_id: int, day: int | None = None) -> bool:
    """Whether /{media}/{tmdb_id} answers on `day` (default: the server's day)."""
    n = _number_of(media, tmdb_id, config)
    d = config.day if day is None else day
    return n is not None and (d <= 0 or timeline(media, config).alive(n, d))


def revision_of(config: DaysConfig, media: Media, tmdb_id: int, day: int | None = None) -> int:
    """How many days up to `day` (default: the server's day) the title changed on."""
    n = _number_of(media, tmdb_id, config)
    d = config.day if day is None else day
    return 0 if n is None or d <= 0 else timeline(media, config).revision(n, d)
