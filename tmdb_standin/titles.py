"""Which titles exist: kinds, ids, and each title's date, genres, votes and adult flag.

Pure and deterministic: everything derives from a keyed hash of the IMDb id (draws.py), so the same
id gives the same answer in every process; tests compute the expected outcome with `kind_of`,
`tmdb_id_of` and `direct_lookup`.

Kinds (share of canonical ids):
    movie         92%  /find -> movie_results; /movie/tt... -> this movie
    tv             3%  /find -> tv_results;    /movie/tt... -> 404 (status 34)
    unknown        3%  /find -> all arrays empty; /movie/tt... -> 404 (status 34)
    direct_404     1%  /find -> movie_results; /movie/tt... -> 404 although TMDB has it
    direct_wrong   1%  /find -> movie_results; /movie/tt... -> the body of ANOTHER movie

TMDB ids: an affine permutation of the IMDb number modulo a prime, one for movies and another for
TV, so each media has its own id space (as on TMDB) and the inverse is exact. Ids above the prime
are free: a duplicate entry (find case "ambiguous") lives there.

Quirks a title carries (the server's "holes" and "find", at `quirk_rate` of titles, drawn from the
seed): holes in its details (`holes_of`) and a /find answer with more than one entry (`find_case`,
`find_entries`). A real catalogue's holes belong to the record, so the same title shows the same
ones on every request.
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import itertools
import math
from array import array
from collections.abc import Iterator, Mapping
from datetime import date as Date
from functools import cache, lru_cache
from itertools import islice
from typing import Literal, NamedTuple, Protocol, get_args

from harvester.items import Media, TitleMedia

from .draws import HASH_PERSON, HashDraws, digest

Kind = Literal["movie", "tv", "unknown", "direct_404", "direct_wrong"]
KINDS: tuple[Kind, ...] = get_args(Kind)

MOVIE_GENRES: tuple[tuple[int, str], ...] = (
    (28, "Action"), (12, "Adventure"), (16, "Animation"), (35, "Comedy"), (80, "Crime"),
    (99, "Documentary"), (18, "Drama"), (10751, "Family"), (14, "Fantasy"), (36, "History"),
    (27, "Horror"), (10402, "Music"), (9648, "Mystery"), (10749, "Romance"),
    (878, "Science Fiction"), (10770, "TV Movie"), (53, "Thriller"), (10752, "War"), (37, "Western"),
)  # fmt: skip
TV_GENRES: tuple[tuple[int, str], ...] = (
    (10759, "Action & Adventure"), (16, "Animation"), (35, "Comedy"), (80, "Crime"),
    (99, "Documentary"), (18, "Drama"), (10751, "Family"), (10762, "Kids"), (9648, "Mystery"),
    (10763, "News"), (10764, "Reality"), (10765, "Sci-Fi & Fantasy"), (10766, "Soap"),
    (10767, "Talk"), (10768, "War & Politics"), (37, "Western"),
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Identity: kinds and ids

_MAX_IMDB = 100_000_000  # tt + 7 or 8 digits
_PRIME = 100_000_007  # the smallest prime above _MAX_IMDB: the affine maps below are bijections
_AFFINE: dict[Media, tuple[int, int]] = {"movie": (48_271, 1_234_567), "tv": (69_621, 7_654_321)}
_AFFINE_INV: dict[Media, int] = {m: pow(a, -1, _PRIME) for m, (a, _) in _AFFINE.items()}
_KIND_BY_PERMILLE: tuple[tuple[int, Kind], ...] = (
    (920, "movie"),
    (950, "tv"),
    (980, "unknown"),
    (990, "direct_404"),
    (1000, "direct_wrong"),
)


def parse_imdb_id(imdb_id: str) -> int | None:
    """The number of a canonical IMDb id ('tt' + 7 digits, or 8 without a leading zero), else None.

    Only the canonical spelling is known, so every number has exactly one id and the id maps are
    bijections ('tt00000009' is not 'tt0000009').
    """
    digits = imdb_id[2:]
    if not imdb_id.startswith("tt") or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) == 7 or (len(digits) == 8 and digits[0] != "0"):
        n = int(digits)
        return n if n > 0 else None
    return None


def imdb_id_from_number(n: int) -> str:
    return f"tt{n:07d}"


def _kind_of_canonical(imdb_id: str) -> Kind:
    permille = int.from_bytes(digest(imdb_id), "big") % 1000
    for bound, kind in _KIND_BY_PERMILLE:
        if permille < bound:
            return kind
    raise AssertionError("unreachable: the last bound is 1000")


@lru_cache(maxsize=65_536)
def _natural_kind(imdb_id: str) -> Kind:
    return "unknown" if parse_imdb_id(imdb_id) is None else _kind_of_canonical(imdb_id)


def kind_of_number(n: int) -> Kind:
    """`kind_of(imdb_id_from_number(n))` without overrides or caching: for scanning many numbers."""
    return _kind_of_canonical(imdb_id_from_number(n)) if 0 < n < _MAX_IMDB else "unknown"


def kind_of(imdb_id: str, overrides: Mapping[str, Kind] | None = None) -> Kind:
    """What TMDB knows about this IMDb id. `overrides` pins chosen ids (e.g. real series ids to 'tv')."""
    if overrides:
        pinned = overrides.get(imdb_id)
        if pinned is not None:
            return pinned
    return _natural_kind(imdb_id)


def media_of_kind(kind: Kind) -> TitleMedia | None:
    if kind == "tv":
        return "tv"
    return None if kind == "unknown" else "movie"


def _tmdb_id(media: Media, n: int) -> int:
    a, b = _AFFINE[media]
    return (a * n + b) % _PRIME + 1


def tmdb_id_for_number(media: Media, n: int) -> int:
    """The TMDB id of IMDb number n in this media's id space (whatever its kind)."""
    return _tmdb_id(media, n)


def tmdb_id_of(imdb_id: str, overrides: Mapping[str, Kind] | None = None) -> int:
    """The TMDB id (movie or TV space, by kind). Raises LookupError for ids TMDB does not know."""
    media = media_of_kind(kind_of(imdb_id, overrides))
    n = parse_imdb_id(imdb_id)
    if media is None or n is None:
        raise LookupError(f"TMDB does not know {imdb_id!r}")
    return _tmdb_id(media, n)


def _number_of(media: Media, tmdb_id: int) -> int:
    """The inverse of `_tmdb_id` (for 1 <= tmdb_id <= _PRIME; 0 or >= _MAX_IMDB: no IMDb number)."""
    _, b = _AFFINE[media]
    return ((tmdb_id - 1 - b) * _AFFINE_INV[media]) % _PRIME


def imdb_id_for(media: Media, tmdb_id: int, overrides: Mapping[str, Kind] | None = None) -> str | None:
    """The inverse of `tmdb_id_of`: the IMDb id behind /movie/{tmdb_id} or /tv/{tmdb_id}, or None."""
    if not 1 <= tmdb_id <= _PRIME:
        return None
    n = _number_of(media, tmdb_id)
    if not 0 < n < _MAX_IMDB:
        return None
    imdb_id = imdb_id_from_number(n)
    return imdb_id if media_of_kind(kind_of(imdb_id, overrides)) == media else None


def direct_lookup(imdb_id: str, overrides: Mapping[str, Kind] | None = None) -> str | None:
    """The IMDb id of the movie whose body `GET /movie/{imdb_id}` returns, or None for a 404."""
    kind = kind_of(imdb_id, overrides)
    if kind == "movie":
        return imdb_id
    if kind != "direct_wrong":
        return None
    n = parse_imdb_id(imdb_id)
    assert n is not None  # only canonical ids hash to a known kind, unless pinned by an override
    # The next plain movie: a stable, plausible mix-up (a neighbouring id).
    return next(_neighbours("movie", n, overrides), None)


def _neighbours(kind: Kind, n: int, overrides: Mapping[str, Kind] | None) -> Iterator[str]:
    """The IMDb ids after number n whose kind is plainly `kind`, in order."""
    for m in range(n + 1, _MAX_IMDB):
        other = imdb_id_from_number(m)
        if kind_of(other, overrides) == kind:
            yield other


# ---------------------------------------------------------------------------------------------
# Per-title facts
#
# What discover filters and sorts on is drawn per title, not per template (1,024 templates would
# give only 1,024 distinct dates): the release (first air) date, genres, vote count, popularity and
# the adult flag. Details, /find results and discover results all splice in these same values.

FIRST_YEAR, LAST_YEAR = 1900, 2025
# Titles per year grow by a factor e every 25 years: 2025 has ~150x as many as 1900, and the
# 25 years 2001..2025 hold ~63% of all titles. Within a year, every day is equally likely.
_YEAR_SCALE = 25.0
_YEAR_CUMULATIVE: tuple[int, ...] = tuple(
    itertools.accumulate(
        round(1000 * math.exp((y - FIRST_YEAR) / _YEAR_SCALE)) for y in range(FIRST_YEAR, LAST_YEAR + 1)
    )
)
# Genre draws, repeated ids likelier (Drama and Comedy dominate TMDB as they do IMDb).
_GENRE_DRAW: dict[Media, tuple[int, ...]] = {
    "movie": (*(gid for gid, _ in MOVIE_GENRES), *(18,) * 5, *(35,) * 3, 53, 28, 27, 99, 10749, 80),
    "tv": (*(gid for gid, _ in TV_GENRES), *(18,) * 4, *(35,) * 3, 99, 10764, 80, 16),
}
# (offset of January 1st in day_strings(), days in the year), per year
_YEAR_SPANS: tuple[tuple[int, int], ...] = tuple(
    (Date(y, 1, 1).toordinal() - Date(FIRST_YEAR, 1, 1).toordinal(), 366 if calendar.isleap(y) else 365)
    for y in range(FIRST_YEAR, LAST_YEAR + 1)
)
_GENRE_ORDER: dict[Media, dict[int, int]] = {
    "movie": {gid: i for i, (gid, _) in enumerate(MOVIE_GENRES)},
    "tv": {gid: i for i, (gid, _) in enumerate(TV_GENRES)},
}
_ADULT_PERMILLE: dict[Media, int] = {"movie": 15, "tv": 5}


class TitleFacts(NamedTuple):
    """The per-title facts every body of a title agrees on (see `title_facts`)."""

    date: str  # YYYY-MM-DD: release_date (movie) or first_air_date (tv)
    genre_ids: tuple[int, ...]  # in the order of the media's genre list
    vote_count: int
    popularity: float
    adult: bool


def title_facts(media: Media, imdb_id: str) -> TitleFacts:
    """The date, genres, vote count, popularity and adult flag of a title (pure, one hash).

    The discover universe may move a title's date (StandinConfig.crowded_day): details then take
    the date as an argument, see `bodies.details_body`. Inlined draws: the universe calls this 80,000 times.
    """
    v = int.from_bytes(digest(f"facts:{media}:{imdb_id}", 16), "big")  # 128 bits; ~85 are drawn
    v, r = divmod(v, _YEAR_CUMULATIVE[-1])
    first, days = _YEAR_SPANS[bisect.bisect_right(_YEAR_CUMULATIVE, r)]
    v, r = divmod(v, days)
    day = day_strings()[first + r]
    pool = _GENRE_DRAW[media]
    size = len(pool)
    v, extra = divmod(v, 3)
    v, r = divmod(v, size)
    picked = {pool[r]}
    for _ in range(extra):
        v, r = divmod(v, size)
        picked.add(pool[r])
    v, r = divmod(v, 1_000_000)
    popular = r / 1_000_000
    v, noise = divmod(v, 40)
    return TitleFacts(
        date=day,
        genre_ids=tuple(sorted(picked, key=_GENRE_ORDER[media].__getitem__)),
        vote_count=int(20_000 * popular**4) + noise,
        popularity=round(0.6 + 120 * popular**3, 3),
        adult=v % 1000 < _ADULT_PERMILLE[media],
    )


@cache
def day_strings() -> tuple[str, ...]:
    """Every date FIRST_YEAR-01-01 .. LAST_YEAR-12-31 as YYYY-MM-DD (about 46,000 strings)."""
    start = Date(FIRST_YEAR, 1, 1).toordinal()
    end = Date(LAST_YEAR, 12, 31).toordinal()
    return tuple(Date.fromordinal(o).isoformat() for o in range(start, end + 1))


def media_numbers(media: Media, start: int = 1) -> Iterator[int]:
    """The IMDb numbers from `start` up whose natural kind (no overrides) is of this media, in order.

    `media_of_kind(kind_of_number(n)) == media`, computed with a copied hash state: the discover
    universe scans some 700,000 numbers to find 20,000 TV titles.
    """
    base = hashlib.blake2b(digest_size=8, person=HASH_PERSON)
    from_bytes = int.from_bytes
    tv = media == "tv"
    for n in range(max(1, start), _MAX_IMDB):
        h = base.copy()
        h.update(b"tt%07d" % n)
        permille = from_bytes(h.digest(), "big") % 1000
        # movie: plain, direct_404 and direct_wrong (< 920 or >= 980); tv: 920..949
        if (920 <= permille < 950) if tv else (permille < 920 or permille >= 980):
            yield n


def population_numbers(media: Media, count: int, overrides: tuple[tuple[str, Kind], ...] = ()) -> array[int]:
    """The first `count` IMDb numbers, ascending, that the catalogue knows as this media, `overrides`
    (sorted (IMDb id, kind) pairs) applied: the population listings (discover, the export) draw from.

    A smaller count gives a prefix of a larger one, so the discover and the export populations agree.
    """
    pinned: dict[int, Media | None] = {}
    for imdb_id, kind in overrides:
        n = parse_imdb_id(imdb_id)
        if n is not None:
            pinned[n] = media_of_kind(kind)
    numbers: list[int] = list(islice(media_numbers(media), count + len(pinned)))
    if pinned:
        kept = {n for n in numbers if pinned.get(n, media) == media}
        kept.update(n for n, m in pinned.items() if m == media)
        numbers = sorted(kept)
    return array("q", numbers[:count])


# ---------------------------------------------------------------------------------------------
# Facts that move with the days (days.py) and the video flag


def revised_facts(media: Media, imdb_id: str, facts: TitleFacts, revision: int) -> TitleFacts:
    """The facts of a title after `revision` changes: popularity drawn afresh, a few more votes.

    Revision 0 is the title as it is on day 0. Votes only grow (by 1 to 9 a revision).
    """
    if revision <= 0:
        return facts
    d = HashDraws(digest(f"revision:{media}:{imdb_id}:{revision}", 16))
    votes = facts.vote_count + 5 * revision + d.below(5)  # jitter in [0, 4]: still strictly increasing
    popularity = round(max(0.6, facts.popularity * (0.7 + 0.6 * d.unit())), 3)
    return facts._replace(vote_count=votes, popularity=popularity)


def video_of(media: Media, imdb_id: str, share: float) -> bool:
    """Whether a movie is a direct-to-video release (`"video": true`): `share` of movies, none of TV."""
    if media != "movie" or share <= 0:
        return False
    return int.from_bytes(digest(f"video:{imdb_id}"), "big") % 1_000_000 < share * 1_000_000


# ---------------------------------------------------------------------------------------------
# Quirks a title carries (tmdb-quirks.md): holes in its details, more than one /find entry


class QuirkConfig(Protocol):
    """What the per-title quirks depend on (StandinConfig has these fields)."""

    @property
    def seed(self) -> int: ...

    @property
    def quirks(self) -> frozenset[str]: ...

    @property
    def quirk_rate(self) -> float: ...

    @property
    def kind_overrides(self) -> Mapping[str, Kind]: ...

    @property
    def find_overrides(self) -> Mapping[str, FindCase]: ...


def _drawn(key: str, rate: float) -> HashDraws | None:
    """The title's draws when it falls in the share `rate` (1.0: every title), else None."""
    d = HashDraws(digest(key, 16))
    return d if d.unit() < rate else None


# What TMDB has shown for a record's imdb_id besides the id itself: JSON values, as served.
BAD_IMDB_IDS: tuple[bytes, ...] = (b"null", b'""', b'"tt12"', b'"nm0000001"')
BIG_ID_FLOOR = 2**32  # ids "larger than 2^32" (tmdb-quirks.md): past any 32-bit integer


class TitleHoles(NamedTuple):
    """What a title's details show instead of a value (None / False: the value itself)."""

    imdb_id: bytes | None  # one of BAD_IMDB_IDS (movie details and external_ids)
    date: bool  # release_date (first_air_date) ""
    popularity: bool  # null
    runtime: bool  # null (movies)
    big_id: int | None  # its first production company's id (and a series' tvdb_id), >= BIG_ID_FLOOR


def holes_of(media: Media, imdb_id: str, config: QuirkConfig) -> TitleHoles | None:
    """The holes of a title's details with the "holes" quirk on (None: a whole record).

    A title whose record lacks a usable imdb_id (half of them) cannot be found by that IMDb id:
    /find and the direct lookup miss it (see `find_entries`); it is reached by its TMDB id.
    """
    if "holes" not in config.quirks:
        return None
    d = _drawn(f"holes:{config.seed}:{media}:{imdb_id}", config.quirk_rate)
    if d is None:
        return None
    bad = d.below(2 * len(BAD_IMDB_IDS))
    return TitleHoles(
        imdb_id=BAD_IMDB_IDS[bad] if bad < len(BAD_IMDB_IDS) else None,
        date=d.below(2) == 0,
        popularity=d.below(2) == 0,
        runtime=media == "movie" and d.below(2) == 0,
        big_id=BIG_ID_FLOOR + d.below(2**31),
    )


def misread(holes: TitleHoles | None, asked: str) -> TitleHoles:
    """The holes of a direct lookup `/movie/{asked}` misbehaving: the body's imdb_id unusable."""
    bad = BAD_IMDB_IDS[digest(f"misread:{asked}")[0] % len(BAD_IMDB_IDS)]
    return (holes or TitleHoles(None, False, False, False, None))._replace(imdb_id=bad)


# /find naming more than the title (tmdb-quirks.md, "Looking titles up"):
#   dual       also in the other media's results: TMDB holds the IMDb id as a movie and as a series,
#              and both records claim it (/tv/{id} of a movie's twin answers the series)
#   merged     another title of the media listed first, whose details carry its own IMDb id (TMDB
#              keeps an IMDb id that IMDb has since merged into another)
#   ambiguous  the title and a duplicate record (an id above the prime): both claim the IMDb id
#   unclaimed  two other titles of the media, neither claiming it
# The quirk draws dual and merged; ambiguous and unclaimed only come from StandinConfig.find_overrides.
FindCase = Literal["dual", "merged", "ambiguous", "unclaimed"]
FIND_CASES: tuple[FindCase, ...] = get_args(FindCase)
OTHER_MEDIA: dict[Media, Media] = {"movie": "tv", "tv": "movie"}


def find_case(imdb_id: str, config: QuirkConfig) -> FindCase | None:
    """How /find names this IMDb id beside the title itself (None: the title alone)."""
    pinned = config.find_overrides.get(imdb_id)
    if pinned is not None:
        return pinned
    if "find" not in config.quirks:
        return None
    d = _drawn(f"find:{config.seed}:{imdb_id}", config.quirk_rate)
    return None if d is None else ("dual" if d.below(2) == 0 else "merged")


class FindEntry(NamedTuple):
    media: Media
    imdb_id: str  # the title whose summary the entry shows
    tmdb_id: int  # the id /find names (a duplicate's is not the title's own)


def duplicate_id(n: int) -> int:
    """The TMDB id of the duplicate record of IMDb number n (find case "ambiguous"): above the prime."""
    return _PRIME + n


def find_entries(imdb_id: str, config: QuirkConfig) -> list[FindEntry]:
    """The entries /find?external_source=imdb_id lists for an IMDb id, in order (empty: none)."""
    overrides = config.kind_overrides
    media = media_of_kind(kind_of(imdb_id, overrides))
    n = parse_imdb_id(imdb_id)
    if media is None or n is None:
        return []
    holes = holes_of(media, imdb_id, config)
    if holes is not None and holes.imdb_id is not None:
        return []  # the record holds no usable IMDb id: nothing to match it by
    own = FindEntry(media, imdb_id, _tmdb_id(media, n))
    case = find_case(imdb_id, config)
    if case == "dual":
        other = OTHER_MEDIA[media]
        twin_holes = holes_of(other, imdb_id, config)
        if twin_holes is None or twin_holes.imdb_id is None:
            return [own, FindEntry(other, imdb_id, _tmdb_id(other, n))]
    elif case == "merged":
        merged = next(_neighbours(media, n, overrides))
        return [FindEntry(media, merged, tmdb_id_of(merged, overrides)), own]
    elif case == "ambiguous":
        return [own, FindEntry(media, imdb_id, duplicate_id(n))]
    elif case == "unclaimed":
        others = islice(_neighbours(media, n, overrides), 2)
        return [FindEntry(media, i, tmdb_id_of(i, overrides)) for i in others]
    return [own]


def find_twin(media: Media, tmdb_id: int, config: QuirkConfig) -> str | None:
    """The IMDb id behind /{media}/{tmdb_id} when only a /find case makes it answer: the other-media
    record of a "dual" title, or the duplicate record of an "ambiguous" one (else None)."""
    case: FindCase
    if tmdb_id < 1:
        return None
    if tmdb_id > _PRIME:
        n, owner, case = tmdb_id - _PRIME, media, "ambiguous"
    else:
        n, owner, case = _number_of(media, tmdb_id), OTHER_MEDIA[media], "dual"
    if not 0 < n < _MAX_IMDB:
        return None
    imdb_id = imdb_id_from_number(n)
    if media_of_kind(kind_of(imdb_id, config.kind_overrides)) != owner:
        return None
    return imdb_id if find_case(imdb_id, config) == case else None
