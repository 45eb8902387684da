"""Discover listings: /discover/movie and /discover/tv over a fixed, enumerable universe.

The universe of a media is a fixed population: the first `discover_movies` (resp. `discover_tv`)
IMDb numbers, in ascending order, that the catalogue knows as a movie (kinds movie, direct_404,
direct_wrong) resp. as TV, `kind_overrides` applied. So every title has an IMDb id, and
`/movie/{id}`, `/tv/{id}` and `/find/{imdb_id}` answer for it with the same date, genres, vote
count, popularity and adult flag as its discover result (titles.title_facts). Defaults: 60,000
movies (IMDb numbers up to ~64,000) and 20,000 TV shows (up to ~662,000).

Dates: years 1900..2025, titles per year growing by a factor e every 25 years (2025 has ~150x as
many titles as 1900; 2001..2025 hold ~63%), days uniform within a year: with the defaults the
busiest day has about 15 movies and no year reaches 10,000. `crowded_day` (StandinConfig) moves
`crowded_count` titles (default 10,500; evenly spread over the population) to that one date, so a
client can meet a single day with more than 10,000 results, which no date window can split.
Details and /find show the moved date too.

Days (days.py): from day 1 on, the universe is day 0's less the titles gone by then, plus the titles
that appeared, with the popularity and vote count of changed titles revised (their summaries show
the revision too); it is built at the first query of a day (a fraction of a second for the defaults).

Parameters honoured (anything else is ignored, as TMDB ignores unknown parameters):
    page                        1..500; 0, 501+ or not an integer: HTTP 400, status_code 22
    primary_release_date.gte/.lte, release_date.gte/.lte (movie), first_air_date.gte/.lte (tv)
                                inclusive YYYY-MM-DD; several bounds intersect; gte > lte gives
                                no results; a malformed date is ignored (TMDB's answer unverified)
    with_genres                 ids; comma = AND, pipe = OR ("18,10749|16" = (18 and 10749) or 16)
    without_genres              ids, comma or pipe: titles with any of them are left out
    vote_count.gte/.lte         inclusive
    with_original_language      ISO 639-1 codes, pipe = OR
    include_adult               "true" shows adult titles; by default they are hidden
    sort_by                     popularity, vote_count, vote_average, and the date
                                (primary_release_date or release_date for movies, first_air_date
                                for tv), each .asc or .desc; default and unknown: popularity.desc.
                                Ties always break on id ascending, so pages are stable.
    language                    reflected in title and overview, as in details

Answer: {"page", "results" (20 summaries, TMDB's discover shape), "total_pages", "total_results"}.
total_results is the real count, even above 10,000, and total_pages = ceil(total_results / 20),
NOT capped at 500, although a page above 500 is refused: a client learns from total_results on
page 1 whether it must split its date window (tmdb-api.md, Discover). No results: total_pages 0.

Cost: the universe is built at first use (about 1.5 s for the defaults, once per process and
configuration) and kept sorted by (date, id). A query sorted by date ascending with no filter but
dates and adult answers any page in O(log n + 20). Any other query computes its full ordered
result once (a scan of its date range and a sort, tens of ms at most) and keeps it in a small LRU
cache, so its following pages cost O(20).

Pure helpers for tests: `discover_universe`, `discover_ids`, `discover_count` compute the expected
answer by a plain scan of the universe, independently of the indexed path the server uses.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from functools import lru_cache
from typing import Any, Final, NamedTuple, Protocol

from harvester.items import Media

from . import days
from .bodies import discover_result
from .days import DaysConfig
from .templates import template_index, template_language
from .titles import (
    MOVIE_GENRES,
    TV_GENRES,
    Kind,
    TitleFacts,
    imdb_id_from_number,
    parse_imdb_id,
    population_numbers,
    revised_facts,
    title_facts,
    tmdb_id_for_number,
    video_of,
)

PAGE_SIZE: Final = 20
MAX_PAGE: Final = 500
DEFAULT_MOVIES: Final = 60_000
DEFAULT_TV: Final = 20_000
DEFAULT_CROWDED_COUNT: Final = 10_500
SORT_FIELDS: Final = ("popularity", "vote_count", "vote_average", "date")
DATE_PARAMS: Final[Mapping[Media, tuple[str, ...]]] = {
    "movie": ("primary_release_date", "release_date"),
    "tv": ("first_air_date",),
}
_CACHED_RESULTS: Final = 32  # ordered results of recent queries, per universe


class UniverseConfig(DaysConfig, Protocol):
    """What the universe depends on (StandinConfig has these fields)."""

    @property
    def video_share(self) -> float: ...

    @property
    def crowded_day(self) -> str | None: ...

    @property
    def crowded_count(self) -> int: ...


class DiscoverTitle(NamedTuple):
    """One title of a discover universe, as its summary shows it."""

    tmdb_id: int
    date: str  # release_date (movie) or first_air_date (tv), YYYY-MM-DD
    genre_ids: tuple[int, ...]
    vote_count: int
    adult: bool
    popularity: float
    original_language: str
    vote_average: float
    imdb_id: str

    @property
    def facts(self) -> TitleFacts:
        return TitleFacts(self.date, self.genre_ids, self.vote_count, self.popularity, self.adult)


def is_date(text: str) -> bool:
    """A valid calendar date spelt YYYY-MM-DD."""
    if len(text) != 10 or not text.isascii():
        return False
    try:
        Date.fromisoformat(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True, slots=True)
class DiscoverQuery:
    """A parsed discover query, without page and language (hashable: the result cache's key)."""

    date_gte: str = ""  # "" = open
    date_lte: str = ""
    with_genres: tuple[tuple[int, ...], ...] | None = None  # OR of AND-groups; None = no filter
    without_genres: frozenset[int] = frozenset()
    vote_count_gte: float | None = None
    vote_count_lte: float | None = None
    include_adult: bool = False
    languages: frozenset[str] | None = None  # with_original_language; None = any
    sort: str = "popularity"  # one of SORT_FIELDS
    descending: bool = True

    @property
    def filtered(self) -> bool:
        """Whether anything but dates and the adult flag filters."""
        return (
            self.with_genres is not None
            or bool(self.without_genres)
            or self.vote_count_gte is not None
            or self.vote_count_lte is not None
            or self.languages is not None
        )


def _genre_id(token: str) -> int:
    token = token.strip()
    return int(token) if token.isascii() and token.isdigit() else -1  # -1: a genre nobody has


def parse_genres(text: str) -> tuple[tuple[int, ...], ...] | None:
    """TMDB's with_genres: comma = AND, pipe = OR. None when it names no genre at all."""
    groups = []
    for alternative in text.split("|"):
        ids = tuple(_genre_id(t) for t in alternative.split(",") if t.strip())
        if ids:
            groups.append(ids)
    return tuple(groups) or None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_sort(media: Media, text: str | None) -> tuple[str, bool]:
    """(field, descending); unknown orders fall back to popularity.desc."""
    name, _, direction = (text or "").strip().rpartition(".")
    sort = "date" if name in DATE_PARAMS[media] else name
    if direction in ("asc", "desc") and sort in SORT_FIELDS and name != "date":
        return sort, direction == "desc"
    return "popularity", True


def parse_query(media: Media, params: Mapping[str, str]) -> DiscoverQuery:
    """The query the HTTP parameters ask for (page and language aside)."""
    gte, lte = "", ""
    for name in DATE_PARAMS[media]:
        low, high = params.get(f"{name}.gte", ""), params.get(f"{name}.lte", "")
        if is_date(low):
            gte = max(gte, low)
        if is_date(high):
            lte = min(lte, high) if lte else high
    with_genres = params.get("with_genres")
    without = params.get("without_genres", "").replace("|", ",")
    languages = params.get("with_original_language")
    sort, descending = parse_sort(media, params.get("sort_by"))
    return DiscoverQuery(
        date_gte=gte,
        date_lte=lte,
        with_genres=None if with_genres is None else parse_genres(with_genres),
        without_genres=frozenset(_genre_id(t) for t in without.split(",") if t.strip()),
        vote_count_gte=_number(params.get("vote_count.gte")),
        vote_count_lte=_number(params.get("vote_count.lte")),
        include_adult=params.get("include_adult", "").strip().lower() == "true",
        languages=(
            None
            if not languages or not languages.strip(" |,")
            else frozenset(t.strip().lower() for t in languages.replace(",", "|").split("|") if t.strip())
        ),
        sort=sort,
        descending=descending,
    )


def parse_page(text: str | None) -> int | None:
    """The page asked for (1 when absent), or None when TMDB refuses it (HTTP 400, status 22)."""
    if text is None:
        return 1
    if not text.isascii() or not text.isdigit():
        return None
    page = int(text)
    return page if 1 <= page <= MAX_PAGE else None


def _matches(t: DiscoverTitle, q: DiscoverQuery) -> bool:
    """The reference predicate: a plain reading of the query, used by the pure helpers."""
    if (q.date_gte and t.date < q.date_gte) or (q.date_lte and t.date > q.date_lte):
        return False
    if t.adult and not q.include_adult:
        return False
    if q.with_genres is not None and not any(all(g in t.genre_ids for g in grp) for grp in q.with_genres):
        return False
    if any(g in q.without_genres for g in t.genre_ids):
        return False
    if q.vote_count_gte is not None and t.vote_count < q.vote_count_gte:
        return False
    if q.vote_count_lte is not None and t.vote_count > q.vote_count_lte:
        return False
    return q.languages is None or t.original_language in q.languages


def sort_key(sort: str, descending: bool) -> Callable[[DiscoverTitle], tuple[Any, ...]]:
    """The order of a sort_by, ties broken on id ascending in both directions."""
    if sort == "date":
        if descending:
            return lambda t: (-Date.fromisoformat(t.date).toordinal(), t.tmdb_id)
        return lambda t: (t.date, t.tmdb_id)
    if sort not in SORT_FIELDS:
        raise ValueError(f"unknown sort field {sort!r}")
    index = DiscoverTitle._fields.index(sort)
    sign = -1 if descending else 1
    return lambda t: (sign * t[index], t.tmdb_id)


# ---------------------------------------------------------------------------------------------
# The universe


def _discover_title(media: Media, n: int) -> DiscoverTitle:
    imdb_id = imdb_id_from_number(n)
    f = title_facts(media, imdb_id)
    language, vote_average = template_language(media, template_index(media, imdb_id))
    return DiscoverTitle(
        tmdb_id_for_number(media, n),
        f.date,
        f.genre_ids,
        f.vote_count,
        f.adult,
        f.popularity,
        language,
        vote_average,
        imdb_id,
    )


@lru_cache(maxsize=8)
def _population(
    media: Media, count: int, overrides: tuple[tuple[str, Kind], ...]
) -> tuple[DiscoverTitle, ...]:
    """The universe's titles in population order (IMDb number ascending), with their own dates."""
    return tuple(_discover_title(media, n) for n in population_numbers(media, count, overrides))


@dataclass(eq=False)
class Universe:
    """The titles of one media sorted by (date, id), with what the indexed queries need."""

    media: Media
    titles: tuple[DiscoverTitle, ...]
    crowded: dict[str, str]  # IMDb id -> the date crowded_day gave it
    dates: list[str] = field(init=False)
    masks: list[int] = field(init=False)  # genre bit sets
    clean: list[int] = field(init=False)  # positions of the titles that are not adult
    clean_dates: list[str] = field(init=False)
    _ranks: dict[tuple[str, bool], list[int]] = field(init=False, default_factory=dict)
    _results: OrderedDict[DiscoverQuery, list[int]] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self._bits = {
            gid: 1 << i for i, (gid, _) in enumerate(MOVIE_GENRES if self.media == "movie" else TV_GENRES)
        }
        bits = self._bits
        self.dates = [t.date for t in self.titles]
        self.masks = [sum(bits.get(g, 0) for g in t.genre_ids) for t in self.titles]
        self.clean = [p for p, t in enumerate(self.titles) if not t.adult]
        self.clean_dates = [self.dates[p] for p in self.clean]

    def _rank(self, sort: str, descending: bool) -> list[int]:
        """rank[position] = the place of that title in the whole universe for this order."""
        key = (sort, descending)
        rank = self._ranks.get(key)
        if rank is None:
            by = sort_key(sort, descending)
            titles = self.titles
            order = sorted(range(len(titles)), key=lambda p: by(titles[p]))
            rank = [0] * len(order)
            for place, p in enumerate(order):
                rank[p] = place
            self._ranks[key] = rank
        return rank

    def _window(self, q: DiscoverQuery) -> tuple[list[int] | None, int, int]:
        """(positions or None for all, lo, hi): the titles of q's date range are view[lo:hi]."""
        view, dates = (None, self.dates) if q.include_adult else (self.clean, self.clean_dates)
        lo = bisect.bisect_left(dates, q.date_gte) if q.date_gte else 0
        hi = bisect.bisect_right(dates, q.date_lte) if q.date_lte else len(dates)
        return view, lo, max(lo, hi)

    def _ordered(self, q: DiscoverQuery) -> list[int]:
        """All positions q selects, in q's order (cached)."""
        cached = self._results.get(q)
        if cached is not None:
            self._results.move_to_end(q)
            return cached
        view, lo, hi = self._window(q)
        candidates: list[int] = list(range(lo, hi)) if view is None else view[lo:hi]
        if q.filtered:
            keep = self._predicate(q)
            candidates = [p for p in candidates if keep(p)]
        if q.sort != "date" or q.descending:
            candidates.sort(key=self._rank(q.sort, q.descending).__getitem__)
        self._results[q] = candidates
        if len(self._results) > _CACHED_RESULTS:
            self._results.popitem(last=False)
        return candidates

    def _predicate(self, q: DiscoverQuery) -> Callable[[int], bool]:
        """Whether the title at a position passes q's filters other than dates and adult."""
        bits, titles, masks = self._bits, self.titles, self.masks
        # An AND-group naming a genre this media lacks can match nothing: it is dropped.
        groups = None if q.with_genres is None else [
            sum(bits[g] for g in set(grp)) for grp in q.with_genres if all(g in bits for g in grp)
        ]  # fmt: skip
        without = sum(bits.get(g, 0) for g in q.without_genres)
        low = -math.inf if q.vote_count_gte is None else q.vote_count_gte
        high = math.inf if q.vote_count_lte is None else q.vote_count_lte
        languages = q.languages

        def keep(p: int) -> bool:
            m = masks[p]
            if groups is not None and not any(m & g == g for g in groups):
                return False
            if m & without:
                return False
            t = titles[p]
            return low <= t.vote_count <= high and (languages is None or t.original_language in languages)

        return keep

    def page(self, q: DiscoverQuery, page: int) -> tuple[list[DiscoverTitle], int]:
        """(the titles of this page, total_results)."""
        start = (page - 1) * PAGE_SIZE
        if not q.filtered and q.sort == "date" and not q.descending:
            view, lo, hi = self._window(q)  # O(log n + 20): the window is already in order
            a, b = min(hi, lo + start), min(hi, lo + start + PAGE_SIZE)
            picked = range(a, b) if view is None else (view[i] for i in range(a, b))
            return [self.titles[p] for p in picked], hi - lo
        ordered = self._ordered(q)
        return [self.titles[p] for p in ordered[start : start + PAGE_SIZE]], len(ordered)


@lru_cache(maxsize=8)
def _universe(
    media: Media,
    count: int,
    crowded_day: str | None,
    crowded_count: int,
    overrides: tuple[tuple[str, Kind], ...],
) -> Universe:
    titles = list(_population(media, count, overrides))
    crowded: dict[str, str] = {}
    if crowded_day and titles:
        c = min(crowded_count, len(titles))
        for i in range(c):
            p = i * len(titles) // c  # evenly spread over the population, distinct since c <= len
            titles[p] = titles[p]._replace(date=crowded_day)
            crowded[titles[p].imdb_id] = crowded_day
    titles.sort(key=lambda t: (t.date, t.tmdb_id))
    return Universe(media, tuple(titles), crowded)


@lru_cache(maxsize=4)
def _universe_on_day(
    media: Media,
    count: int,
    crowded_day: str | None,
    crowded_count: int,
    overrides: tuple[tuple[str, Kind], ...],
    key: days.TimelineKey,
    day: int,
) -> Universe:
    """The day-0 universe as `day` leaves it (days.py): gone titles out, appeared ones in, changed
    ones with their revised popularity and vote count."""
    base = _universe(media, count, crowded_day, crowded_count, overrides)
    line = days.timeline_of(key)
    titles = []
    for t in base.titles:
        n = parse_imdb_id(t.imdb_id)
        assert n is not None  # the universe holds canonical ids only
        if not line.alive(n, day):
            continue
        revision = line.revision(n, day)
        if revision:
            f = revised_facts(media, t.imdb_id, t.facts, revision)
            t = t._replace(vote_count=f.vote_count, popularity=f.popularity)
        titles.append(t)
    for n in line.appeared_until(day):
        if line.alive(n, day):
            t = _discover_title(media, n)
            f = revised_facts(media, t.imdb_id, t.facts, line.revision(n, day))
            titles.append(t._replace(vote_count=f.vote_count, popularity=f.popularity))
    titles.sort(key=lambda t: (t.date, t.tmdb_id))
    return Universe(media, tuple(titles), base.crowded)


def _arguments(
    media: Media, config: UniverseConfig
) -> tuple[Media, int, str | None, int, tuple[tuple[str, Kind], ...]]:
    count = config.discover_movies if media == "movie" else config.discover_tv
    overrides = tuple(sorted(config.kind_overrides.items())) if config.kind_overrides else ()
    crowded_day = config.crowded_day or None
    return media, count, crowded_day, config.crowded_count if crowded_day else 0, overrides


def universe(media: Media, config: UniverseConfig) -> Universe:
    """The universe of this media for this configuration on the server's day (built at first use,
    then cached)."""
    if not days.moved(config):
        return _universe(*_arguments(media, config))
    key = days.timeline_key(media, config)
    return _universe_on_day(*_arguments(media, config), key, config.day)


def warm(config: UniverseConfig) -> None:
    """Build both universes now (about 1.5 s for the defaults) rather than at the first request."""
    for media in ("movie", "tv"):
        universe(media, config)


def crowded_date(media: Media, config: UniverseConfig, imdb_id: str) -> str | None:
    """The date crowded_day gave this title, or None (its own date stands). Cheap when unset."""
    if not config.crowded_day:
        return None
    return _universe(*_arguments(media, config)).crowded.get(imdb_id)  # the same on every day


# ---------------------------------------------------------------------------------------------
# HTTP answers


def page_body(
    media: Media, config: UniverseConfig, params: Mapping[str, str], page: int, language: str
) -> bytes:
    """The body of GET /discover/{media} for an already validated page."""
    titles, total = universe(media, config).page(parse_query(media, params), page)
    line = days.timeline(media, config) if days.moved(config) else None
    out: list[bytes | memoryview] = [b'{"page":%d,"results":[' % page]
    for i, t in enumerate(titles):
        if i:
            out.append(b",")
        revision = 0
        if line is not None:
            n = parse_imdb_id(t.imdb_id)
            revision = 0 if n is None else line.revision(n, config.day)
        video = video_of(media, t.imdb_id, config.video_share)
        discover_result(media, t.imdb_id, t.facts, language, out, revision, video)
    total_pages = -(-total // PAGE_SIZE)  # not capped at MAX_PAGE: see the module docstring
    out.append(b'],"total_pages":%d,"total_results":%d}' % (total_pages, total))
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# Pure helpers for tests: plain scans, independent of the indexed path


def discover_universe(media: Media, config: UniverseConfig) -> Sequence[DiscoverTitle]:
    """Every title of the universe, sorted by (date, tmdb_id); crowded_day applied."""
    return universe(media, config).titles


def _filters_query(
    media: Media,
    date_gte: str | None,
    date_lte: str | None,
    with_genres: str | None,
    without_genres: str | None,
    vote_count_gte: float | None,
    vote_count_lte: float | None,
    include_adult: bool,
    with_original_language: str | None,
    sort_by: str,
) -> DiscoverQuery:
    name = DATE_PARAMS[media][0]
    params = {
        f"{name}.gte": date_gte,
        f"{name}.lte": date_lte,
        "with_genres": with_genres,
        "without_genres": without_genres,
        "vote_count.gte": None if vote_count_gte is None else str(vote_count_gte),
        "vote_count.lte": None if vote_count_lte is None else str(vote_count_lte),
        "include_adult": "true" if include_adult else "false",
        "with_original_language": with_original_language,
        "sort_by": sort_by,
    }
    return parse_query(media, {k: v for k, v in params.items() if v is not None})


def discover_ids(
    media: Media,
    config: UniverseConfig,
    *,
    date_gte: str | None = None,
    date_lte: str | None = None,
    with_genres: str | None = None,
    without_genres: str | None = None,
    vote_count_gte: float | None = None,
    vote_count_lte: float | None = None,
    include_adult: bool = False,
    with_original_language: str | None = None,
    sort_by: str = "popularity.desc",
) -> list[int]:
    """The TMDB ids a discover query yields, in its order, all pages together (no 500-page cap).

    Filters use TMDB's syntax (with_genres "18,10749" = AND, "18|10749" = OR); dates are
    primary_release_date (movie) or first_air_date (tv), inclusive.
    """
    q = _filters_query(
        media, date_gte, date_lte, with_genres, without_genres, vote_count_gte, vote_count_lte,
        include_adult, with_original_language, sort_by,
    )  # fmt: skip
    selected = [t for t in discover_universe(media, config) if _matches(t, q)]
    selected.sort(key=sort_key(q.sort, q.descending))
    return [t.tmdb_id for t in selected]


def discover_count(media: Media, config: UniverseConfig, **filters: Any) -> int:
    """total_results of a discover query (the filters of `discover_ids`)."""
    return len(discover_ids(media, config, **filters))
