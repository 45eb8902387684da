"""A deterministic fake TMDB catalogue: which IMDb ids TMDB knows, and the bodies it returns.

Pure and I/O-free. Everything derives from a keyed BLAKE2b hash of the IMDb id (never Python's
randomised `hash()`), so the same id gives the same answer in every process; tests compute the
expected outcome with `kind_of`, `tmdb_id_of` and `direct_lookup`.

Kinds (share of canonical ids):
    movie         92%  /find -> movie_results; /movie/tt... -> this movie
    tv             3%  /find -> tv_results;    /movie/tt... -> 404 (status 34)
    unknown        3%  /find -> all arrays empty; /movie/tt... -> 404 (status 34)
    direct_404     1%  /find -> movie_results; /movie/tt... -> 404 although TMDB has it
    direct_wrong   1%  /find -> movie_results; /movie/tt... -> the body of ANOTHER movie

TMDB ids: an affine permutation of the IMDb number modulo a prime, one for movies and another for
TV, so each media has its own id space (as on TMDB) and the inverse is exact.

Bodies must cost little CPU (the stand-in shares the cores with the harvester in benchmarks):
bodies are spliced from pre-serialized bytes (see "Templates" and "Credits" below), so a body costs
a hash, a dozen tiny orjson calls and one bytes join, whatever its size.
"""

from __future__ import annotations

import base64
import bisect
import calendar
import hashlib
import itertools
import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date as Date
from functools import cache, lru_cache
from typing import Any, Literal, NamedTuple, get_args

import orjson

Kind = Literal["movie", "tv", "unknown", "direct_404", "direct_wrong"]
Media = Literal["movie", "tv"]
KINDS: tuple[Kind, ...] = get_args(Kind)

MAX_APPENDS = 20  # TMDB answers the 21st append_to_response item with HTTP 400, status 27
DEFAULT_LANGUAGE = "en-US"

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

MOVIE_APPENDS = frozenset(
    {
        "credits", "external_ids", "keywords", "release_dates", "videos", "images", "translations",
        "alternative_titles", "recommendations", "similar", "reviews", "lists", "watch/providers",
        "changes",
    }
)  # fmt: skip
TV_APPENDS = frozenset(
    {
        "credits", "aggregate_credits", "external_ids", "keywords", "content_ratings", "videos",
        "images", "translations", "alternative_titles", "recommendations", "similar", "reviews",
        "watch/providers", "changes",
    }
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
_PERSON = b"tmdb-standin"  # BLAKE2b personalisation: our hashes differ from any other use


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


def _digest(key: str, size: int = 8) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=size, person=_PERSON).digest()


def _kind_of_canonical(imdb_id: str) -> Kind:
    permille = int.from_bytes(_digest(imdb_id), "big") % 1000
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


def media_of_kind(kind: Kind) -> Media | None:
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


def imdb_id_for(media: Media, tmdb_id: int, overrides: Mapping[str, Kind] | None = None) -> str | None:
    """The inverse of `tmdb_id_of`: the IMDb id behind /movie/{tmdb_id} or /tv/{tmdb_id}, or None."""
    if not 1 <= tmdb_id <= _PRIME:
        return None
    _, b = _AFFINE[media]
    n = ((tmdb_id - 1 - b) * _AFFINE_INV[media]) % _PRIME
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
    for m in range(n + 1, _MAX_IMDB):
        other = imdb_id_from_number(m)
        if kind_of(other, overrides) == "movie":
            return other
    return None


# ---------------------------------------------------------------------------------------------
# Deterministic draws


class _Draw:
    """Successive small choices taken from one hash (up to 512 bits): cheaper than seeding a Random."""

    __slots__ = ("_v",)

    def __init__(self, seed: bytes) -> None:
        self._v = int.from_bytes(seed, "big")

    @classmethod
    def of(cls, key: str) -> _Draw:
        return cls(_digest(key, 64))

    def below(self, n: int) -> int:
        self._v, r = divmod(self._v, n)
        return r

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def unit(self) -> float:
        return self.below(1_000_000) / 1_000_000


_B64_TO_ALNUM = bytes.maketrans(b"-_", b"xQ")


def _image_path(key: str, seed: bytes = b"") -> str:
    """A TMDB-style image path ('/' + 27 alphanumerics + '.jpg'), from 21 bytes of seed or of a hash."""
    raw = seed or _digest(key, 21)
    return "/" + base64.urlsafe_b64encode(raw).translate(_B64_TO_ALNUM)[:27].decode() + ".jpg"


def _hex_id(key: str) -> str:
    return _digest(key, 12).hex()


# ---------------------------------------------------------------------------------------------
# Word pools

_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret",
    "Paul", "Sandra", "Steven", "Ashley", "Andrew", "Emily", "Kenneth", "Donna", "Joshua", "Michelle",
    "José", "María", "Luis", "Ana", "João", "Beatriz", "François", "Amélie", "Hiroshi", "Yuki",
    "Giulia", "Marco", "Sven", "Ingrid", "Raj", "Priya", "Min-jun", "Seo-yeon", "Zoë", "Björn",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Silva", "Santos", "Oliveira", "Dubois", "Lefèvre", "Tanaka", "Suzuki", "Rossi", "Bianchi",
    "Johansson", "Müller", "Schneider", "Kapoor", "Sharma", "Kim", "Park", "O'Brien", "Novak",
)  # fmt: skip
_ADJ = (
    "Silent", "Last", "Broken", "Golden", "Hidden", "Crimson", "Lost", "Dark", "Eternal", "Wild",
    "Burning", "Frozen", "Secret", "Little", "Final", "Distant", "Savage", "Midnight", "Electric",
    "Forgotten", "Hollow", "Restless", "Iron", "Velvet", "Paper", "Northern", "Endless", "Quiet",
)  # fmt: skip
_NOUN = (
    "River", "Kingdom", "Promise", "Shadow", "Garden", "Horizon", "Empire", "Witness", "Harbor",
    "Journey", "Storm", "Mirror", "Frontier", "Dream", "Machine", "Heart", "Road", "City", "Island",
    "Summer", "Winter", "Orchard", "Lighthouse", "Circus", "Station", "Letter", "Crown", "Tide",
)  # fmt: skip
_ROLE = (
    "detective", "schoolteacher", "young widow", "retired boxer", "smuggler", "nurse", "journalist",
    "farmer", "runaway teenager", "disgraced surgeon", "pilot", "con artist", "priest", "musician",
)  # fmt: skip
_PLACE = (
    "a small harbor town", "the outskirts of Lisbon", "a mining village", "1970s Tokyo",
    "the Nevada desert", "a crumbling estate", "Rio de Janeiro", "the Scottish Highlands",
    "a Paris suburb", "a remote island",
)  # fmt: skip
_OBJECT = ("letter", "photograph", "map", "diary", "tape recording", "key", "painting", "ledger")
_GOAL = (
    "uncover the truth about a decades-old disappearance",
    "protect the only family they have left",
    "pull off one last job before leaving town for good",
    "win back the trust of a community that has turned against them",
    "cross a continent at war to deliver a message",
    "survive a winter that nobody expected to end",
    "prove the innocence of a stranger condemned to hang",
    "keep a failing travelling theatre alive",
)  # fmt: skip
_TWIST = (
    "But every answer leads to a harder question.",
    "What begins as a favour soon becomes an obsession.",
    "Old loyalties are tested as the past refuses to stay buried.",
    "Time is running out, and not everyone wants them to succeed.",
    "An unlikely friendship may be the only way through.",
    "Nothing in the small town is quite what it seems.",
)  # fmt: skip
_TAGLINE = (
    "Some promises are meant to be broken.", "The truth has a price.", "No one walks away.",
    "Every legend has a beginning.", "Hope is a dangerous thing.", "", "", "The end is only the start.",
    "Love knows no borders.", "Fear the silence.",
)  # fmt: skip
_CHARACTER = (
    "Detective {last}", "Dr. {last}", "{first}", "Young {first}", "Mrs. {last}", "Captain {last}",
    "Himself", "Narrator", "{first} {last}", "Officer {last}", "Sister {first}", "Bartender",
    "Reporter", "Uncle {first}", "The Stranger", "{first} (voice)",
)  # fmt: skip
_CREW_JOBS = (
    ("Directing", "Director"), ("Writing", "Screenplay"), ("Writing", "Novel"), ("Writing", "Writer"),
    ("Production", "Producer"), ("Production", "Executive Producer"), ("Production", "Casting"),
    ("Sound", "Original Music Composer"), ("Sound", "Sound Designer"), ("Sound", "Boom Operator"),
    ("Camera", "Director of Photography"), ("Camera", "Camera Operator"), ("Editing", "Editor"),
    ("Art", "Production Design"), ("Art", "Art Direction"), ("Art", "Set Decoration"),
    ("Costume & Make-Up", "Costume Design"), ("Costume & Make-Up", "Makeup Artist"),
    ("Crew", "Stunt Coordinator"), ("Crew", "Stunts"), ("Visual Effects", "Visual Effects Supervisor"),
    ("Lighting", "Gaffer"), ("Lighting", "Electrician"),
)  # fmt: skip
_COMPANIES = (
    (174, "Warner Bros. Pictures", "US"), (33, "Universal Pictures", "US"), (4, "Paramount Pictures", "US"),
    (5, "Columbia Pictures", "US"), (25, "20th Century Fox", "US"), (21, "Metro-Goldwyn-Mayer", "US"),
    (2, "Walt Disney Pictures", "US"), (41077, "A24", "US"), (9, "Gaumont", "FR"), (694, "StudioCanal", "FR"),
    (882, "Toho", "JP"), (7981, "Pathé", "FR"), (2597, "Globo Filmes", "BR"), (12, "New Line Cinema", "US"),
    (1632, "Lionsgate", "US"), (10163, "Working Title Films", "GB"), (1115, "Rai Cinema", "IT"),
    (4171, "Warner Bros. Television", "US"), (11073, "Sony Pictures Television Studios", "US"),
)  # fmt: skip
_NETWORKS = (
    (49, "HBO", "US"), (213, "Netflix", "US"), (6, "NBC", "US"), (16, "CBS", "US"), (4, "BBC One", "GB"),
    (2, "ABC", "US"), (88, "FX", "US"), (1024, "Prime Video", "US"), (318, "TV Globo", "BR"),
)  # fmt: skip
# (country, country name, language, language's English name, its own name); repeated = likelier
_ORIGINS = (
    *[("US", "United States of America", "en", "English", "English")] * 11,
    *[("GB", "United Kingdom", "en", "English", "English")] * 2,
    ("FR", "France", "fr", "French", "Français"),
    ("BR", "Brazil", "pt", "Portuguese", "Português"),
    ("JP", "Japan", "ja", "Japanese", "日本語"),
    ("IT", "Italy", "it", "Italian", "Italiano"),
    ("DE", "Germany", "de", "German", "Deutsch"),
    ("ES", "Spain", "es", "Spanish", "Español"),
    ("IN", "India", "hi", "Hindi", "हिन्दी"),
    ("KR", "South Korea", "ko", "Korean", "한국어/조선말"),
    ("MX", "Mexico", "es", "Spanish", "Español"),
    ("CA", "Canada", "en", "English", "English"),
)
_US, _BR = _ORIGINS[0], ("BR", "Brazil", "pt", "Portuguese", "Português")
_CERTIFICATIONS = ("G", "PG", "PG-13", "R", "R", "PG-13", "NC-17", "")
_TV_RATINGS = ("TV-Y", "TV-G", "TV-PG", "TV-14", "TV-14", "TV-MA")
_VIDEO_KINDS = ("Trailer", "Teaser", "Clip", "Featurette", "Behind the Scenes")
_KEYWORDS = (
    (818, "based on novel or book"), (9672, "based on true story"), (10683, "coming of age"),
    (4565, "dystopia"), (6149, "police"), (1701, "hero"), (9748, "revenge"), (13088, "summer"),
    (10183, "independent film"), (5565, "biography"), (9951, "alien"), (12377, "zombie"),
    (155477, "neo-noir"), (3799, "ranch"), (1721, "fight"), (14544, "small town"), (10084, "rescue"),
)  # fmt: skip

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
# (offset of January 1st in _day_strings(), days in the year), per year
_YEAR_SPANS: tuple[tuple[int, int], ...] = tuple(
    (Date(y, 1, 1).toordinal() - Date(FIRST_YEAR, 1, 1).toordinal(), 366 if calendar.isleap(y) else 365)
    for y in range(FIRST_YEAR, LAST_YEAR + 1)
)
_GENRE_NAMES: dict[Media, dict[int, str]] = {"movie": dict(MOVIE_GENRES), "tv": dict(TV_GENRES)}
_GENRE_ORDER: dict[Media, dict[int, int]] = {
    m: {g: i for i, g in enumerate(n)} for m, n in _GENRE_NAMES.items()
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
    the date as an argument, see `details_body`. Inlined draws: the universe calls this 80,000 times.
    """
    v = int.from_bytes(_digest(f"facts:{media}:{imdb_id}", 16), "big")  # 128 bits; ~85 are drawn
    v, r = divmod(v, _YEAR_CUMULATIVE[-1])
    first, days = _YEAR_SPANS[bisect.bisect_right(_YEAR_CUMULATIVE, r)]
    v, r = divmod(v, days)
    day = _day_strings()[first + r]
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
def _day_strings() -> tuple[str, ...]:
    """Every date FIRST_YEAR-01-01 .. LAST_YEAR-12-31 as YYYY-MM-DD (about 46,000 strings)."""
    start = Date(FIRST_YEAR, 1, 1).toordinal()
    end = Date(LAST_YEAR, 12, 31).toordinal()
    return tuple(Date.fromordinal(o).isoformat() for o in range(start, end + 1))


@lru_cache(maxsize=4096)
def _genre_bytes(media: Media, genre_ids: tuple[int, ...]) -> tuple[bytes, bytes]:
    """(the details' "genres" array, the summaries' "genre_ids" array), serialized."""
    names = _GENRE_NAMES[media]
    objs = [{"id": gid, "name": names.get(gid, "")} for gid in genre_ids]
    return orjson.dumps(objs), orjson.dumps(list(genre_ids))


def media_numbers(media: Media, start: int = 1) -> Iterator[int]:
    """The IMDb numbers from `start` up whose natural kind (no overrides) is of this media, in order.

    `media_of_kind(kind_of_number(n)) == media`, computed with a copied hash state: the discover
    universe scans some 700,000 numbers to find 20,000 TV titles.
    """
    base = hashlib.blake2b(digest_size=8, person=_PERSON)
    from_bytes = int.from_bytes
    tv = media == "tv"
    for n in range(max(1, start), _MAX_IMDB):
        h = base.copy()
        h.update(b"tt%07d" % n)
        permille = from_bytes(h.digest(), "big") % 1000
        # movie: plain, direct_404 and direct_wrong (< 920 or >= 980); tv: 920..949
        if (920 <= permille < 950) if tv else (permille < 920 or permille >= 980):
            yield n


def template_index(media: Media, imdb_id: str) -> int:
    """Which template a title uses (its original_language and vote_average come from it)."""
    return _Draw(_digest(f"{media}:{imdb_id}", 64)[:16]).below(_TEMPLATES[media])


def template_language(media: Media, index: int) -> tuple[str, float]:
    """(original_language, vote_average) of a template."""
    f = _shapes(media, index).facts
    return f.origin[2], f.vote_average


# ---------------------------------------------------------------------------------------------
# Templates
#
# Building a details object per request costs ~100 us of Python. Instead each media has a pool of
# templates: facts drawn once (dates, genres, money, companies, ...) and pre-serialized, with
# "@@SLOT@@" sentinels where per-title values go (ids, title). A title hashes to a template; its
# body is the template's byte literals joined with its own values. Details, the /find summary and
# the sub-resources of a title all come from the same template, so they agree with each other.

_TEMPLATES: dict[Media, int] = {"movie": 1024, "tv": 256}
_SENTINEL = re.compile(rb'"@@([A-Z0-9_]+)@@"')


def _slot(name: str) -> str:
    return f"@@{name}@@"


@dataclass(frozen=True, slots=True)
class _Template:
    """Serialized JSON split at its slots: literals[0] value(fields[0]) literals[1] ... literals[-1]."""

    literals: tuple[bytes, ...]
    fields: tuple[str, ...]

    def fill(self, values: Mapping[str, bytes], out: list[bytes | memoryview]) -> None:
        literals = self.literals
        out.append(literals[0])
        for i, name in enumerate(self.fields, 1):
            out.append(values[name])
            out.append(literals[i])


def _compile(obj: Any) -> _Template:
    pieces = _SENTINEL.split(orjson.dumps(obj))
    return _Template(tuple(pieces[0::2]), tuple(p.decode() for p in pieces[1::2]))


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the titles sharing one template have in common (all but ids and title)."""

    key: str
    overview: str
    tagline: str
    date: str  # YYYY-MM-DD
    genres: tuple[tuple[int, str], ...]
    origin: tuple[str, str, str, str, str]
    popularity: float
    vote_average: float
    vote_count: int
    runtime: int
    budget: int
    revenue: int
    companies: tuple[tuple[int, str, str], ...]
    collection: bool
    homepage: str
    status: str
    seasons: int
    episodes: int
    network: tuple[int, str, str]
    number: int  # a per-template number for the small ids TMDB would assign (seasons, images...)


def _make_facts(media: Media, k: int) -> _Facts:
    d = _Draw.of(f"template:{media}:{k}")
    overview = (
        f"When a {d.pick(_ROLE)} from {d.pick(_PLACE)} finds an old {d.pick(_OBJECT)}, "
        f"{d.pick(('she', 'he', 'they'))} must {d.pick(_GOAL)}. {d.pick(_TWIST)}"
    )
    year = 2024 - min(d.below(105), d.below(105), d.below(130))  # skewed towards recent years
    genre_pool = MOVIE_GENRES if media == "movie" else TV_GENRES
    n_genres = 1 + d.below(3)
    # dict, not set: a set of str-bearing tuples iterates in a per-process (hash seed) order
    genres = tuple(sorted(dict.fromkeys(d.pick(genre_pool) for _ in range(n_genres)), key=genre_pool.index))
    popular = d.unit()
    budget = 0 if d.below(5) < 3 else 10_000 * (1 + d.below(20_000))
    revenue = 0 if budget == 0 and d.below(2) else int(budget * (0.2 + 5 * d.unit())) + d.below(99_999)
    return _Facts(
        key=f"{media}{k}",
        overview=overview,
        tagline=d.pick(_TAGLINE),
        date=f"{year:04d}-{1 + d.below(12):02d}-{1 + d.below(28):02d}",
        genres=genres,
        origin=d.pick(_ORIGINS),
        popularity=round(0.6 + 120 * popular**3, 3),
        vote_average=round(3.0 + 5.8 * d.unit(), 3),
        vote_count=int(20_000 * popular**4) + d.below(40),
        runtime=0 if d.below(40) == 0 else 70 + d.below(110),
        budget=budget,
        revenue=revenue,
        companies=tuple(dict.fromkeys(d.pick(_COMPANIES) for _ in range(1 + d.below(3)))),
        collection=d.below(10) == 0,
        homepage="" if d.below(5) < 3 else f"https://www.{d.pick(_NOUN).lower()}{k}-film.com/",
        status="Released" if d.below(40) else d.pick(("Post Production", "In Production", "Canceled")),
        seasons=1 + d.below(8),
        episodes=6 + d.below(120),
        network=d.pick(_NETWORKS),
        number=1 + d.below(9_000_000),
    )


def _genre_objs(genres: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"id": gid, "name": name} for gid, name in genres]


def _companies(f: _Facts) -> list[dict[str, Any]]:
    return [
        {"id": cid, "logo_path": _image_path(f"logo:{cid}") if cid % 3 else None, "name": name,
         "origin_country": country}
        for cid, name, country in f.companies
    ]  # fmt: skip


def _countries(f: _Facts) -> list[dict[str, str]]:
    return [{"iso_3166_1": f.origin[0], "name": f.origin[1]}]


def _spoken(f: _Facts) -> list[dict[str, str]]:
    spoken = [{"english_name": f.origin[3], "iso_639_1": f.origin[2], "name": f.origin[4]}]
    if f.origin[2] != "en" and f.vote_count % 2:
        spoken.append({"english_name": "English", "iso_639_1": "en", "name": "English"})
    return spoken


def _add_years(date: str, years: int) -> str:
    year, rest = int(date[:4]) + years, date[4:]
    if rest == "-02-29" and not calendar.isleap(year):
        rest = "-02-28"
    return f"{year:04d}{rest}"


def _movie_details(f: _Facts) -> dict[str, Any]:
    collection = None
    if f.collection:
        collection = {
            "id": 10_000 + f.number % 900_000,
            "name": _slot("COLLECTION"),
            "poster_path": _image_path(f"cposter:{f.key}"),
            "backdrop_path": _image_path(f"cbackdrop:{f.key}"),
        }
    return {
        "adult": _slot("ADULT"),
        "backdrop_path": _slot("BACKDROP"),
        "belongs_to_collection": collection,
        "budget": f.budget,
        "genres": _slot("GENRES"),
        "homepage": f.homepage,
        "id": _slot("ID"),
        "imdb_id": _slot("IMDB"),
        "origin_country": [f.origin[0]],
        "original_language": f.origin[2],
        "original_title": _slot("ORIGINAL"),
        "overview": _slot("OVERVIEW"),
        "popularity": _slot("POPULARITY"),
        "poster_path": _slot("POSTER"),
        "production_companies": _companies(f),
        "production_countries": _countries(f),
        "release_date": _slot("DATE"),
        "revenue": f.revenue,
        "runtime": f.runtime,
        "spoken_languages": _spoken(f),
        "status": f.status,
        "tagline": _slot("TAGLINE"),
        "title": _slot("TITLE"),
        "video": False,
        "vote_average": f.vote_average,
        "vote_count": _slot("VOTES"),
    }


def _tv_details(f: _Facts) -> dict[str, Any]:
    ended = f.seasons > 3 or f.date < "2015"
    last_air = _slot("LAST_AIR")  # the first air date (a per-title slot) plus seasons - 1 years
    per_season = max(1, f.episodes // f.seasons)
    creator = f"{_FIRST[f.number % len(_FIRST)]} {_LAST[f.number % len(_LAST)]}"
    network_id, network_name, network_country = f.network
    return {
        "adult": _slot("ADULT"),
        "backdrop_path": _slot("BACKDROP"),
        "created_by": [
            {
                "id": 1_000_000 + f.number % 3_000_000,
                "credit_id": _hex_id(f"creator:{f.key}"),
                "name": creator,
                "original_name": creator,
                "gender": 1 + f.number % 2,
                "profile_path": _image_path(f"creator:{f.key}"),
            }
        ],
        "episode_run_time": [f.runtime // 2 or 42],
        "first_air_date": _slot("DATE"),
        "genres": _slot("GENRES"),
        "homepage": f.homepage,
        "id": _slot("ID"),
        "in_production": not ended,
        "languages": [f.origin[2]],
        "last_air_date": last_air,
        "last_episode_to_air": {
            "id": 5_000_000 + f.number % 4_000_000,
            "name": f"Episode {per_season}",
            "overview": "",
            "vote_average": round(f.vote_average * 0.9, 1),
            "vote_count": f.vote_count // 50,
            "air_date": last_air,
            "episode_number": per_season,
            "episode_type": "finale" if ended else "standard",
            "production_code": "",
            "runtime": f.runtime // 2 or 42,
            "season_number": f.seasons,
            "show_id": _slot("ID"),
            "still_path": _image_path(f"still:{f.key}"),
        },
        "name": _slot("TITLE"),
        "next_episode_to_air": None,
        "networks": [
            {
                "id": network_id,
                "logo_path": _image_path(f"network:{network_id}"),
                "name": network_name,
                "origin_country": network_country,
            }
        ],
        "number_of_episodes": per_season * f.seasons,
        "number_of_seasons": f.seasons,
        "origin_country": [f.origin[0]],
        "original_language": f.origin[2],
        "original_name": _slot("ORIGINAL"),
        "overview": _slot("OVERVIEW"),
        "popularity": _slot("POPULARITY"),
        "poster_path": _slot("POSTER"),
        "production_companies": _companies(f),
        "production_countries": _countries(f),
        "seasons": [
            {
                "air_date": _slot(f"SEASON_{s}"),
                "episode_count": per_season,
                "id": 100_000 + (f.number * 16 + s) % 5_000_000,
                "name": f"Season {s}",
                "overview": "",
                "poster_path": _image_path(f"season:{f.key}:{s}"),
                "season_number": s,
                "vote_average": round(f.vote_average * (0.85 + s / 100), 1),
            }
            for s in range(1, f.seasons + 1)
        ],
        "spoken_languages": _spoken(f),
        "status": "Ended" if ended else "Returning Series",
        "tagline": _slot("TAGLINE"),
        "type": "Scripted",
        "vote_average": f.vote_average,
        "vote_count": _slot("VOTES"),
    }


def _summary(media: Media, f: _Facts) -> dict[str, Any]:
    """A /find result: the details' summary fields (TMDB's own order)."""
    common: dict[str, Any] = {
        "adult": _slot("ADULT"),
        "backdrop_path": _slot("BACKDROP"),
        "id": _slot("ID"),
        ("title" if media == "movie" else "name"): _slot("TITLE"),
        ("original_title" if media == "movie" else "original_name"): _slot("ORIGINAL"),
        "overview": _slot("OVERVIEW"),
        "poster_path": _slot("POSTER"),
        "media_type": media,
        "original_language": f.origin[2],
        "genre_ids": _slot("GENRE_IDS"),
        "popularity": _slot("POPULARITY"),
    }
    if media == "movie":
        common.update(release_date=_slot("DATE"), video=False)
    else:
        common["first_air_date"] = _slot("DATE")
    common.update(vote_average=f.vote_average, vote_count=_slot("VOTES"))
    if media == "tv":
        common["origin_country"] = [f.origin[0]]
    return common


def _discover_summary(media: Media, f: _Facts) -> dict[str, Any]:
    """A /discover result: TMDB's summary shape for discover listings (its own key order)."""
    if media == "movie":
        return {
            "adult": _slot("ADULT"),
            "backdrop_path": _slot("BACKDROP"),
            "genre_ids": _slot("GENRE_IDS"),
            "id": _slot("ID"),
            "original_language": f.origin[2],
            "original_title": _slot("ORIGINAL"),
            "overview": _slot("OVERVIEW"),
            "popularity": _slot("POPULARITY"),
            "poster_path": _slot("POSTER"),
            "release_date": _slot("DATE"),
            "title": _slot("TITLE"),
            "video": False,
            "vote_average": f.vote_average,
            "vote_count": _slot("VOTES"),
        }
    return {
        "adult": _slot("ADULT"),
        "backdrop_path": _slot("BACKDROP"),
        "genre_ids": _slot("GENRE_IDS"),
        "id": _slot("ID"),
        "origin_country": [f.origin[0]],
        "original_language": f.origin[2],
        "original_name": _slot("ORIGINAL"),
        "overview": _slot("OVERVIEW"),
        "popularity": _slot("POPULARITY"),
        "poster_path": _slot("POSTER"),
        "first_air_date": _slot("DATE"),
        "name": _slot("TITLE"),
        "vote_average": f.vote_average,
        "vote_count": _slot("VOTES"),
    }


def _paged_empty(with_id: bool) -> dict[str, Any]:
    page: dict[str, Any] = {"page": 1, "results": [], "total_pages": 0, "total_results": 0}
    return {"id": _slot("ID"), **page} if with_id else page


def _images(f: _Facts) -> dict[str, Any]:
    def image(kind: str, i: int, w: int, h: int, iso: str | None) -> dict[str, Any]:
        return {
            "aspect_ratio": round(w / h, 3),
            "height": h,
            "iso_639_1": iso,
            "file_path": _image_path(f"{kind}{i}:{f.key}"),
            "vote_average": round(5.0 + (f.number + i) % 7 * 0.1, 3),
            "vote_count": (f.number + i) % 9,
            "width": w,
        }

    return {
        "backdrops": [image("b", i, 1920, 1080, None) for i in range(1 + f.number % 3)],
        "id": _slot("ID"),
        "logos": [image("l", 0, 500, 200, _slot("LANG"))] if f.number % 2 else [],
        "posters": [image("p", i, 2000, 3000, _slot("LANG")) for i in range(1 + f.number % 4)],
    }


def _videos(f: _Facts) -> dict[str, Any]:
    return {
        "id": _slot("ID"),
        "results": [
            {
                "iso_639_1": _slot("LANG"),
                "iso_3166_1": _slot("REGION"),
                "name": f"Official {kind}",
                "key": _image_path(f"yt{i}:{f.key}")[1:12],
                "site": "YouTube",
                "size": (1080, 720, 2160)[i % 3],
                "type": kind,
                "official": True,
                "published_at": f"{f.date}T1{i % 10}:00:0{i % 10}.000Z",
                "id": _hex_id(f"video{i}:{f.key}"),
            }
            for i, kind in enumerate(_VIDEO_KINDS[: 1 + f.number % 3])
        ],
    }


def _translations(media: Media, f: _Facts) -> dict[str, Any]:
    out = []
    for country, _, lang, english, own in dict.fromkeys((f.origin, _US, _BR)):
        if lang == f.origin[2]:
            title, overview = _slot("ORIGINAL"), f.overview
        elif lang == "en":
            title, overview = _slot("BASE_TITLE"), f.overview
        else:
            title, overview = "", ""  # TMDB leaves untranslated fields empty
        data: dict[str, Any] = {
            "homepage": f.homepage if lang == f.origin[2] else "",
            "overview": overview,
            ("title" if media == "movie" else "name"): title,
            "tagline": f.tagline if overview else "",
        }
        if media == "movie":
            data["runtime"] = f.runtime
        out.append({"iso_3166_1": country, "iso_639_1": lang, "name": own, "english_name": english,
                    "data": data})  # fmt: skip
    return {"id": _slot("ID"), "translations": out}


def _external_ids(media: Media, f: _Facts) -> dict[str, Any]:
    ids: dict[str, Any] = {"id": _slot("ID"), "imdb_id": _slot("IMDB")}
    if media == "tv":
        ids.update(freebase_mid=None, freebase_id=None, tvdb_id=70_000 + f.number % 400_000, tvrage_id=None)
    handle = f"{media}{f.number}"
    ids.update(
        wikidata_id=f"Q{10_000 + f.number}" if f.number % 3 else None,
        facebook_id=f"{handle}official" if f.number % 4 == 0 else None,
        instagram_id=handle if f.number % 5 == 0 else None,
        twitter_id=f"{handle}film" if f.number % 6 == 0 else None,
    )
    return ids


def _sub_resources(media: Media, f: _Facts) -> dict[str, Any]:
    """Every small appended sub-resource TMDB knows for this media (credits are spliced apart)."""
    kws = [
        {"id": k, "name": n} for k, n in (_KEYWORDS[(f.number + 5 * i) % len(_KEYWORDS)] for i in range(4))
    ]
    alt = [
        {"iso_3166_1": "US", "title": _slot("ALT_TITLE"), "type": "promotional"},
        {"iso_3166_1": "BR", "title": _slot("BR_TITLE"), "type": ""},
    ]
    subs: dict[str, Any] = {
        "external_ids": _external_ids(media, f),
        "keywords": {"id": _slot("ID"), ("keywords" if media == "movie" else "results"): kws},
        "videos": _videos(f),
        "images": _images(f),
        "translations": _translations(media, f),
        "alternative_titles": {"id": _slot("ID"), ("titles" if media == "movie" else "results"): alt},
        "recommendations": _paged_empty(with_id=False),
        "similar": _paged_empty(with_id=False),
        "reviews": _paged_empty(with_id=True),
        "watch/providers": {"id": _slot("ID"), "results": {}},
        "changes": {"changes": []},
    }
    if media == "movie":
        cert = _CERTIFICATIONS[f.number % len(_CERTIFICATIONS)]
        subs["lists"] = _paged_empty(with_id=True)
        subs["release_dates"] = {
            "id": _slot("ID"),
            "results": [
                {"iso_3166_1": country, "release_dates": [
                    {"certification": cert if country == "US" else "", "descriptors": [], "iso_639_1": "",
                     "note": "", "release_date": _slot("RELEASE_TS"), "type": 3}]}
                for country in dict.fromkeys((f.origin[0], "US", "BR"))
            ],
        }  # fmt: skip
    else:
        rating = _TV_RATINGS[f.number % len(_TV_RATINGS)]
        subs["content_ratings"] = {
            "results": [{"descriptors": [], "iso_3166_1": c, "rating": rating} for c in ("US", "BR")],
            "id": _slot("ID"),
        }
    return subs


@dataclass(frozen=True, slots=True)
class _Shapes:
    facts: _Facts
    details: _Template
    summary: _Template  # a /find result
    discover: _Template  # a /discover result
    subs: Mapping[str, _Template]


@cache
def _shapes(media: Media, k: int) -> _Shapes:
    f = _make_facts(media, k)
    details = _movie_details(f) if media == "movie" else _tv_details(f)
    subs = {name: _compile(obj) for name, obj in _sub_resources(media, f).items()}
    summary, discover = _compile(_summary(media, f)), _compile(_discover_summary(media, f))
    return _Shapes(f, _compile(details), summary, discover, subs)


# ---------------------------------------------------------------------------------------------
# Credits: pre-serialized blocks, sliced per title


_VARIANTS = 32  # distinct casts; each title slices a prefix of one of them
_BLOCK_ENTRIES = 200  # enough for the largest credits target


@dataclass(frozen=True, slots=True)
class _Block:
    """Entries serialized and comma-joined; ends[i] is the byte offset just after entry i."""

    data: memoryview
    ends: tuple[int, ...]

    def prefix(self, nbytes: int) -> memoryview:
        """The longest run of whole entries from the start that fits nbytes (at least one entry)."""
        count = max(1, bisect.bisect_right(self.ends, nbytes))
        return self.data[: self.ends[count - 1]]


def _block(entries: Iterable[dict[str, Any]]) -> _Block:
    parts = [orjson.dumps(e) for e in entries]
    ends, pos = [], -1
    for p in parts:
        pos += len(p) + 1  # the comma before every entry but the first
        ends.append(pos)
    return _Block(memoryview(b",".join(parts)), tuple(ends))


@dataclass(frozen=True, slots=True)
class _Pools:
    movie_cast: tuple[_Block, ...]
    tv_cast: tuple[_Block, ...]
    crew: tuple[_Block, ...]
    agg_cast: tuple[_Block, ...]
    agg_crew: tuple[_Block, ...]


def _people(rng: random.Random, n: int) -> list[dict[str, Any]]:
    people = []
    for _ in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        pid = rng.randrange(1, 5_000_000)
        people.append(
            {
                "adult": False,
                "gender": rng.choice((0, 1, 2, 2)),
                "id": pid,
                "known_for_department": "Acting",
                "name": f"{first} {last}",
                "original_name": f"{first} {last}",
                "popularity": round(0.6 + 40 * rng.random() ** 4, 3),
                "profile_path": _image_path(f"person:{pid}") if rng.random() < 0.7 else None,
            }
        )
    return people


def _character(rng: random.Random) -> str:
    return rng.choice(_CHARACTER).format(first=rng.choice(_FIRST), last=rng.choice(_LAST))


@cache
def _pools() -> _Pools:
    rng = random.Random(20_240_601)  # fixed: the pools are part of the catalogue's deterministic output
    people = _people(rng, 4_000)

    def credit_id() -> str:
        return f"{rng.getrandbits(96):024x}"

    def cast(with_cast_id: bool) -> _Block:
        out = []
        for order in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            if with_cast_id:
                e["cast_id"] = order + 2 + rng.randrange(3)
            e["character"] = _character(rng)
            e["credit_id"] = credit_id()
            e["order"] = order
            out.append(e)
        return _block(out)

    def crew() -> _Block:
        out = []
        for _ in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            department, job = rng.choice(_CREW_JOBS)
            e["known_for_department"] = department
            e["credit_id"] = credit_id()
            e["department"] = department
            e["job"] = job
            out.append(e)
        return _block(out)

    def agg_cast() -> _Block:
        out = []
        for order in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            roles = [
                {
                    "credit_id": credit_id(),
                    "character": _character(rng),
                    "episode_count": rng.randrange(1, 60),
                }
                for _ in range(1 + (rng.random() < 0.2))
            ]
            e["roles"] = roles
            e["total_episode_count"] = sum(r["episode_count"] for r in roles)
            e["order"] = order
            out.append(e)
        return _block(out)

    def agg_crew() -> _Block:
        out = []
        for _ in range(_BLOCK_ENTRIES):
            e = dict(rng.choice(people))
            department, job = rng.choice(_CREW_JOBS)
            jobs = [{"credit_id": credit_id(), "job": job, "episode_count": rng.randrange(1, 40)}]
            e["known_for_department"] = department
            e["jobs"] = jobs
            e["department"] = department
            e["total_episode_count"] = jobs[0]["episode_count"]
            out.append(e)
        return _block(out)

    return _Pools(
        movie_cast=tuple(cast(True) for _ in range(_VARIANTS)),
        tv_cast=tuple(cast(False) for _ in range(_VARIANTS)),
        crew=tuple(crew() for _ in range(_VARIANTS)),
        agg_cast=tuple(agg_cast() for _ in range(_VARIANTS // 4)),
        agg_crew=tuple(agg_crew() for _ in range(_VARIANTS // 4)),
    )


def warm() -> None:
    """Build the credit pools, the date table and every template now (well under a second).

    Lazily, the first body would stall the server's loop for ~60 ms (the date table alone), and the
    requests that queue meanwhile would be timestamped together: a false 429 for a well-paced client.
    """
    _pools()
    _day_strings()
    for media, count in _TEMPLATES.items():
        for k in range(count):
            _shapes(media, k)


# ---------------------------------------------------------------------------------------------
# One title: its template and the values for the template's slots


@dataclass(slots=True)
class _Subject:
    media: Media
    title: str
    language: str
    date: str  # the release (first air) date shown
    shapes: _Shapes
    values: dict[str, bytes]
    credits_bytes: int  # how many bytes of cast + crew this title's credits carry
    cast_share: float
    variant: int

    def add_sub_values(self) -> None:
        """The slots only sub-resources use: filled on demand, most requests append only credits."""
        title, dumps = self.title, orjson.dumps
        lang, _, region = self.language.partition("-")
        self.values.update(
            BASE_TITLE=dumps(title),
            ALT_TITLE=dumps(f"{title}: The Movie" if self.media == "movie" else title.upper()),
            BR_TITLE=dumps(f"O {title}"),
            LANG=dumps(lang),
            REGION=dumps(region or "US"),
            RELEASE_TS=dumps(f"{self.date}T00:00:00.000Z"),
        )


def _localise(text: str, language: str) -> str:
    # Visible proof that `language` reached the server (TMDB would translate).
    return text if language == DEFAULT_LANGUAGE or not text else f"{text} ({language})"


def _subject(
    media: Media, imdb_id: str, tmdb_id: int, language: str, facts: TitleFacts | None = None
) -> _Subject:
    """The title's template and slot values; `facts` default to `title_facts(media, imdb_id)`."""
    if facts is None:
        facts = title_facts(media, imdb_id)
    seed = _digest(f"{media}:{imdb_id}", 64)  # one hash per title: 16 bytes of draws, 2 image paths
    d = _Draw(seed[:16])
    shapes = _shapes(media, d.below(_TEMPLATES[media]))
    f = shapes.facts
    shape = d.below(6)
    adj, noun = d.pick(_ADJ), d.pick(_NOUN)
    if shape == 0:
        title = f"The {adj} {noun}"
    elif shape == 1:
        title = f"{adj} {noun}"
    elif shape == 2:
        title = f"{noun} of the {adj} {d.pick(_NOUN)}"
    elif shape == 3:
        title = f"The {noun}"
    elif shape == 4:
        title = f"{d.pick(_FIRST)}'s {noun}"
    else:
        title = f"{adj} {noun} {d.pick(('II', 'III', 'Returns', 'Reloaded', '2'))}"
    dumps = orjson.dumps
    values = {
        "ID": b"%d" % tmdb_id,
        "IMDB": dumps(imdb_id),
        "TITLE": dumps(_localise(title, language)),
        "ORIGINAL": dumps(title if f.origin[2] == "en" else f"{title} ({f.origin[3]} title)"),
        "OVERVIEW": dumps(_localise(f.overview, language)),
        "TAGLINE": dumps(_localise(f.tagline, language)),
        "POSTER": dumps(_image_path("", seed[16:37])),
        "BACKDROP": dumps(_image_path("", seed[37:58])),
    }
    if f.collection:
        values["COLLECTION"] = dumps(f"{title} Collection")
    genres, genre_ids = _genre_bytes(media, facts.genre_ids)
    day = facts.date
    values.update(
        ADULT=b"true" if facts.adult else b"false",
        GENRES=genres,
        GENRE_IDS=genre_ids,
        DATE=b'"%s"' % day.encode(),
        POPULARITY=dumps(facts.popularity),
        VOTES=b"%d" % facts.vote_count,
    )
    if media == "tv":
        for season in range(1, f.seasons + 1):
            values[f"SEASON_{season}"] = b'"%s"' % _add_years(day, season - 1).encode()
        values["LAST_AIR"] = values[f"SEASON_{f.seasons}"]
    return _Subject(
        media=media,
        title=title,
        language=language,
        date=day,
        shapes=shapes,
        values=values,
        # Body with credits lands in 10.3..54 KB before other appends (TMDB: typically 10 to 60 KB).
        credits_bytes=10_000 + d.below(42_000),
        cast_share=0.40 + d.below(250) / 1000,
        variant=d.below(_VARIANTS),
    )


def _credits_parts(media: Media, s: _Subject, aggregate: bool, out: list[bytes | memoryview]) -> None:
    pools = _pools()
    size = s.credits_bytes // 2 if aggregate else s.credits_bytes
    cast_bytes = int(size * s.cast_share)
    if aggregate:
        cast = pools.agg_cast[s.variant % len(pools.agg_cast)].prefix(cast_bytes)
        crew = pools.agg_crew[s.variant % len(pools.agg_crew)].prefix(size - cast_bytes)
    else:
        cast = (pools.movie_cast if media == "movie" else pools.tv_cast)[s.variant].prefix(cast_bytes)
        crew = pools.crew[(s.variant * 7 + 3) % _VARIANTS].prefix(size - cast_bytes)
    out += (b'{"id":', s.values["ID"], b',"cast":[', cast, b'],"crew":[', crew, b"]}")


# ---------------------------------------------------------------------------------------------
# Public body builders


def _facts_on(media: Media, imdb_id: str, date: str | None) -> TitleFacts:
    facts = title_facts(media, imdb_id)
    return facts if date is None else facts._replace(date=date)


def details_body(
    media: Media,
    imdb_id: str,
    append: Sequence[str] = (),
    language: str = DEFAULT_LANGUAGE,
    date: str | None = None,
) -> bytes:
    """The details body of /movie/{id} or /tv/{id} with one key per known appended sub-resource.

    `imdb_id` names the title (its TMDB id derives from it); `append` should already be split and
    de-duplicated. Names TMDB does not know for this media are silently ignored, as TMDB does.
    `date` replaces the title's own date (the discover universe's crowded day).
    """
    n = parse_imdb_id(imdb_id)
    if n is None:
        raise ValueError(f"not a canonical IMDb id: {imdb_id!r}")
    s = _subject(media, imdb_id, _tmdb_id(media, n), language, _facts_on(media, imdb_id, date))
    out: list[bytes | memoryview] = []
    s.shapes.details.fill(s.values, out)
    if append:
        out[-1] = out[-1][:-1]  # reopen the object: drop its closing brace
        subs = s.shapes.subs
        for name in append:
            if name in subs:
                if "LANG" not in s.values:
                    s.add_sub_values()
                out.append(b',"%s":' % name.encode())
                subs[name].fill(s.values, out)
            elif name == "credits" or (name == "aggregate_credits" and media == "tv"):
                out.append(b',"%s":' % name.encode())
                _credits_parts(media, s, name == "aggregate_credits", out)
        out.append(b"}")
    return b"".join(out)


def sub_resource_body(
    media: Media, imdb_id: str, name: str, language: str = DEFAULT_LANGUAGE, date: str | None = None
) -> bytes | None:
    """The body of /movie/{id}/{name} or /tv/{id}/{name} alone (None: no such sub-resource).

    The same object `details_body(..., append=[name])` embeds under `name`: the course scripts'
    "details, then credits" makes two requests where append_to_response makes one.
    """
    n = parse_imdb_id(imdb_id)
    if n is None:
        raise ValueError(f"not a canonical IMDb id: {imdb_id!r}")
    s = _subject(media, imdb_id, _tmdb_id(media, n), language, _facts_on(media, imdb_id, date))
    out: list[bytes | memoryview] = []
    template = s.shapes.subs.get(name)
    if template is not None:
        if "LANG" not in s.values:
            s.add_sub_values()
        template.fill(s.values, out)
    elif name == "credits" or (name == "aggregate_credits" and media == "tv"):
        _credits_parts(media, s, name == "aggregate_credits", out)
    else:
        return None
    return b"".join(out)


_FIND_EMPTY = (
    b'{"movie_results":[],"person_results":[],"tv_results":[],"tv_episode_results":[],"tv_season_results":[]}'
)


def find_body(
    imdb_id: str,
    language: str = DEFAULT_LANGUAGE,
    overrides: Mapping[str, Kind] | None = None,
    date: str | None = None,
) -> bytes:
    """The body of /find/{imdb_id}?external_source=imdb_id (HTTP 200 even when nothing matches).

    `date` replaces the title's own date, as in `details_body`.
    """
    media = media_of_kind(kind_of(imdb_id, overrides))
    n = parse_imdb_id(imdb_id)
    if media is None or n is None:
        return _FIND_EMPTY
    s = _subject(media, imdb_id, _tmdb_id(media, n), language, _facts_on(media, imdb_id, date))
    out: list[bytes | memoryview] = [b'{"movie_results":[' if media == "movie" else b'{"movie_results":[],']
    if media == "tv":
        out.append(b'"person_results":[],"tv_results":[')
    s.shapes.summary.fill(s.values, out)
    if media == "movie":
        out.append(b'],"person_results":[],"tv_results":[],"tv_episode_results":[],"tv_season_results":[]}')
    else:
        out.append(b'],"tv_episode_results":[],"tv_season_results":[]}')
    return b"".join(out)


def discover_result(
    media: Media, imdb_id: str, facts: TitleFacts, language: str, out: list[bytes | memoryview]
) -> None:
    """Append one /discover result (a summary object, serialized) for this title to `out`."""
    n = parse_imdb_id(imdb_id)
    if n is None:
        raise ValueError(f"not a canonical IMDb id: {imdb_id!r}")
    s = _subject(media, imdb_id, _tmdb_id(media, n), language, facts)
    s.shapes.discover.fill(s.values, out)


@cache
def genre_list_body(media: Media) -> bytes:
    return orjson.dumps({"genres": _genre_objs(MOVIE_GENRES if media == "movie" else TV_GENRES)})
