"""People: `/person/{id}` and its sub-resources, `/person/changes` and the `person_ids` daily export.

Who exists: exactly the people the credit pools name (credits.py; every `credits` and
`aggregate_credits` body is cut from them), so an id read from any credits body answers
`/person/{id}` with the entry's `id`, `name`, `known_for_department` (the person's: the same in all
of their entries), `gender`, `profile_path`, `adult` and, on day 0, `popularity`. An id no credit
names answers 404, status_code 34. So does a share `person_missing_share` of the credited ids
(StandinConfig; default 0, drawn from the seed): TMDB merges and deletes people while credits keep
naming them (tmdb-quirks.md: merged or deleted ids answer 404, status_code 34, no redirect). Those
are in no export. `person_exists`, `all_person_ids` and `credit_entries` say which, for tests.

The rest of a body is drawn from a hash of the id: `birthday` (null for ~20%), `deathday` (mostly
null), `place_of_birth` (null for ~30%), `imdb_id` ("nm" + 7 digits; null for ~10%), `homepage`
(mostly null), `also_known_as`, `biography` ("" for ~15%; other languages than en-US show
" (<language>)" after it, as title overviews do). Quirk "holes" (at `quirk_rate` of people, a
property of the person drawn from the seed): `popularity` null, `imdb_id` null or "".

Appends (`append_to_response`: at most 20, the server refuses a 21st as for titles; unknown names
are left out) and the sub-resources `/person/{id}/{name}` (an unknown name: 404, status_code 34):
    combined_credits  {"cast": [...], "crew": [...], "id"}: each entry a title summary as /find shows
                      it (with `media_type`) and the credit: `character`, `credit_id`, `order` (movie)
                      or `episode_count` (tv) for cast; `credit_id`, `department`, `job` for crew. A
                      bounded sample: the person's credits among the first SAMPLE_TITLES titles of
                      each media (the start of the population discover and the export list), at most
                      MAX_CREDITS cast and MAX_CREDITS crew entries. Each names a title whose
                      `credits` (/movie/{id}/credits, /tv/{id}/credits) do hold this person with that
                      credit_id (titles as on day 0).
    movie_credits, tv_credits   the same for one media, without `media_type` (as TMDB)
    external_ids      {"id", "freebase_mid", "freebase_id", "imdb_id", "tvrage_id", "wikidata_id",
                      "facebook_id", "instagram_id", "tiktok_id", "twitter_id", "youtube_id"}
    images            {"id", "profiles": [...]} (the profile_path first)
    translations      {"id", "translations": [...]} (`data`: the biography)
    changes           {"changes": [...]}: the person's change of today or yesterday, if any
    tagged_images     {"id", "page": 1, "results": [], "total_pages": 0, "total_results": 0}

Days (days.py): on each day d >= 1, round(changed_share * N) of the N credited people change (the
titles' share; drawn from the seed, missing people included: TMDB lists deleted ids too). From d
on their bodies show revision r (the number of days up to d they changed on): `popularity` drawn
afresh, `biography` ending "[revision r]"; the export agrees. `/person/changes` lists them through
changes.py (the same window, paging, errors and quirk "changes" as /movie/changes).

Export (exports.py): `person_ids_MM_DD_YYYY.json.gz`, one line per person that answers, ids
ascending: {"adult":false,"id":16767,"name":"Aki Kaurismäki","popularity":2.57} (popularity as the
body shows it that day, holes aside). `adult_person_ids_...` is an empty file: no credited person is
adult.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date as Date
from datetime import timedelta
from functools import cache, lru_cache
from typing import Any, Final, Literal, NamedTuple, Protocol

import orjson

from .bodies import DAY_ZERO, DEFAULT_LANGUAGE, credits_cut, find_entries_body
from .credits import CreditBlock, credit_pools
from .days import DaysConfig, day_of
from .draws import HashDraws, digest, hex_id, image_path
from .titles import FindEntry, imdb_id_from_number, population_numbers, tmdb_id_for_number

Subject = Literal["movie", "tv", "person"]  # what a change list or an export file lists
TitleMedia = Literal["movie", "tv"]  # what a credit names
APPENDS: Final = frozenset(
    {
        "combined_credits", "movie_credits", "tv_credits", "external_ids", "images", "translations",
        "changes", "tagged_images",
    }
)  # fmt: skip
SAMPLE_TITLES: Final[dict[TitleMedia, int]] = {"movie": 2_000, "tv": 500}
MAX_CREDITS: Final = 25  # of cast, and of crew, in combined_credits
DEFAULT_MISSING_SHARE: Final = 0.0
_POOLS: Final = ("movie_cast", "tv_cast", "crew", "agg_cast", "agg_crew")
_PERSON_KEYS: Final = ("adult", "gender", "id", "known_for_department", "name", "popularity", "profile_path")
_PLACES: Final = (
    "London, England, UK", "Lyon, France", "Tokyo, Japan", "São Paulo, Brazil",
    "Los Angeles, California, USA", "Helsinki, Finland", "Seoul, South Korea",
    "Mumbai, Maharashtra, India", "Toronto, Ontario, Canada", "Berlin, Germany", "Rome, Lazio, Italy",
    "Brooklyn, New York, USA", "Stockholm, Sweden", "Mexico City, Mexico",
)  # fmt: skip
_OTHER_NAMES: Final = ("Ivan Petrov", "イワン", "이반", "Jean Dupont", "Ιωάννης")
_BAD_IMDB: Final = (None, "")  # what holes show for a person's imdb_id


class PeopleConfig(DaysConfig, Protocol):
    """What the people depend on (StandinConfig has these fields)."""

    @property
    def person_missing_share(self) -> float: ...

    @property
    def quirks(self) -> frozenset[str]: ...

    @property
    def quirk_rate(self) -> float: ...


# ---------------------------------------------------------------------------------------------
# Who the credits name


class CreditEntry(NamedTuple):
    """One credit of a title's `credits` body, as the person in it (department/job None for cast)."""

    person_id: int
    name: str
    known_for_department: str
    department: str | None
    job: str | None
    credit_id: str


class _Ref(NamedTuple):
    pool: str  # a CreditPools field
    block: int  # its index in that pool
    position: int  # the entry's index in the block
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Index:
    people: dict[int, dict[str, Any]]  # id -> the person's fields, as the entries show them
    refs: dict[int, list[_Ref]]  # id -> every entry naming the person
    entries: dict[str, tuple[tuple[dict[str, Any], ...], ...]]  # pool -> blocks -> entries


def _entries(block: CreditBlock) -> list[dict[str, Any]]:
    return list(orjson.loads(b"[" + bytes(block.data) + b"]"))


@cache
def _index() -> _Index:
    """The pools read back (once: ~16,000 entries, a few tens of ms)."""
    pools = credit_pools()
    people: dict[int, dict[str, Any]] = {}
    refs: dict[int, list[_Ref]] = {}
    entries: dict[str, tuple[tuple[dict[str, Any], ...], ...]] = {}
    for pool in _POOLS:
        blocks = []
        for b, block in enumerate(getattr(pools, pool)):
            parsed = _entries(block)
            blocks.append(tuple(parsed))
            for position, e in enumerate(parsed):
                people.setdefault(e["id"], {k: e[k] for k in _PERSON_KEYS})
                refs.setdefault(e["id"], []).append(_Ref(pool, b, position, e))
        entries[pool] = tuple(blocks)
    return _Index(people, refs, entries)


@cache
def all_person_ids() -> tuple[int, ...]:
    """Every person id the credits name, ascending (those `person_missing_share` drops included)."""
    return tuple(sorted(_index().people))


def credit_name(person_id: int) -> str:
    """The person's name as every credit (and the body, and the export untouched) shows it."""
    return str(_index().people[person_id]["name"])


def warm(config: DaysConfig) -> None:
    """Read the pools back and sample the titles now, not during the first /person request."""
    _index()
    _sample(tuple(sorted(config.kind_overrides.items())))


def missing(person_id: int, config: PeopleConfig) -> bool:
    """Whether TMDB has merged or deleted this credited person (drawn from the seed)."""
    share = config.person_missing_share
    return share > 0 and HashDraws(digest(f"person-missing:{config.seed}:{person_id}")).unit() < share


def person_exists(person_id: int, config: PeopleConfig) -> bool:
    """Whether /person/{person_id} answers 200."""
    return person_id in _index().people and not missing(person_id, config)


def _prefix_count(block: CreditBlock, nbytes: int) -> int:
    return max(1, bisect.bisect_right(block.ends, nbytes))  # CreditBlock.prefix's count


class _Slices(NamedTuple):
    """Which entries a title's `credits` show: the first cast_count of a cast block, and so on."""

    cast_pool: str
    cast_block: int
    cast_count: int
    crew_block: int
    crew_count: int


def _slices(media: TitleMedia, imdb_id: str) -> _Slices:
    """What credits.append_credits cuts for the title (not aggregate)."""
    pools, cut = credit_pools(), credits_cut(media, imdb_id)
    cast_bytes = int(cut.nbytes * cut.cast_share)
    cast_pool = "movie_cast" if media == "movie" else "tv_cast"
    crew_block = (cut.variant * 7 + 3) % len(pools.crew)
    cast_count = _prefix_count(getattr(pools, cast_pool)[cut.variant], cast_bytes)
    crew_count = _prefix_count(pools.crew[crew_block], cut.nbytes - cast_bytes)
    return _Slices(cast_pool, cut.variant, cast_count, crew_block, crew_count)


def credit_entries(media: TitleMedia, imdb_id: str) -> list[CreditEntry]:
    """The people of a title's `credits` body (cast first, in order), without rendering it."""
    s, entries = _slices(media, imdb_id), _index().entries
    cast = entries[s.cast_pool][s.cast_block][: s.cast_count]
    crew = entries["crew"][s.crew_block][: s.crew_count]
    return [
        CreditEntry(
            e["id"], e["name"], e["known_for_department"], e.get("department"), e.get("job"), e["credit_id"]
        )
        for e in (*cast, *crew)
    ]


@lru_cache(maxsize=4)
def _sample(
    overrides: tuple[tuple[str, Any], ...],
) -> dict[tuple[str, int], list[tuple[int, TitleMedia, str]]]:
    """(pool, block) -> (entries shown, media, IMDb id) of each sampled title that shows the block."""
    out: dict[tuple[str, int], list[tuple[int, TitleMedia, str]]] = {}
    for media, count in SAMPLE_TITLES.items():
        for n in population_numbers(media, count, overrides):
            imdb_id = imdb_id_from_number(n)
            s = _slices(media, imdb_id)
            out.setdefault((s.cast_pool, s.cast_block), []).append((s.cast_count, media, imdb_id))
            out.setdefault(("crew", s.crew_block), []).append((s.crew_count, media, imdb_id))
    return out


@lru_cache(maxsize=8_192)
def _summary(media: TitleMedia, imdb_id: str) -> dict[str, Any]:
    """The title's /find summary (with media_type), as on day 0."""
    number = int(imdb_id[2:])
    entry = FindEntry(media, imdb_id, tmdb_id_for_number(media, number))
    body = orjson.loads(find_entries_body([(entry, DAY_ZERO)]))
    result: dict[str, Any] = body["movie_results" if media == "movie" else "tv_results"][0]
    return result


def _credit(ref: _Ref, media: TitleMedia, imdb_id: str) -> dict[str, Any]:
    e = ref.entry
    out = dict(_summary(media, imdb_id))
    if ref.pool == "crew":
        out.update(credit_id=e["credit_id"], department=e["department"], job=e["job"])
    else:
        out.update(character=e["character"], credit_id=e["credit_id"])
        if media == "movie":
            out["order"] = e["order"]
    if media == "tv":  # TMDB's TV credits of a person count the episodes
        out["episode_count"] = 1 + digest(f"episodes:{e['credit_id']}:{imdb_id}")[0] % 40
    return out


def _credits(person_id: int, config: PeopleConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(cast, crew) of the person among the sampled titles, at most MAX_CREDITS each, by title."""
    sample = _sample(tuple(sorted(config.kind_overrides.items())))
    cast: list[dict[str, Any]] = []
    crew: list[dict[str, Any]] = []
    for ref in _index().refs.get(person_id, ()):
        if ref.pool not in ("movie_cast", "tv_cast", "crew"):
            continue
        out = crew if ref.pool == "crew" else cast
        for shown, media, imdb_id in sample.get((ref.pool, ref.block), ()):
            if shown > ref.position and len(out) < MAX_CREDITS:
                out.append(_credit(ref, media, imdb_id))
    return cast, crew


# ---------------------------------------------------------------------------------------------
# Days: who changed when


@dataclass(frozen=True, slots=True)
class DaysKey:
    """What the people's days depend on."""

    seed: int
    share: float


class _PeopleDays:
    """The people changed on each day d >= 1, drawn in order as far as asked and kept."""

    def __init__(self, key: DaysKey) -> None:
        self._key = key
        self._days: list[tuple[int, ...]] = [()]  # day 0 changed nobody
        self._changed_on: dict[int, list[int]] = {}

    def day(self, d: int) -> tuple[int, ...]:
        """Ids changed on day d, ascending (none for d <= 0)."""
        if d <= 0:
            return ()
        ids = all_person_ids()
        k = round(self._key.share * len(ids))
        while len(self._days) <= d:
            rng = random.Random(f"standin-people-days:{self._key.seed}:{len(self._days)}")
            drawn = tuple(sorted(ids[p] for p in rng.sample(range(len(ids)), k)))
            for pid in drawn:
                self._changed_on.setdefault(pid, []).append(len(self._days))
            self._days.append(drawn)
        return self._days[d]

    def revision(self, person_id: int, d: int) -> int:
        self.day(d)
        days = self._changed_on.get(person_id)
        return 0 if days is None else bisect.bisect_right(days, d)


def days_key(config: DaysConfig) -> DaysKey:
    return DaysKey(config.seed, config.changed_share)


@lru_cache(maxsize=8)
def _days_of(key: DaysKey) -> _PeopleDays:
    return _PeopleDays(key)


def changed_ids(config: DaysConfig, day: int) -> list[int]:
    """Person ids changed on `day` (ascending): what /person/changes lists for that day."""
    return list(_days_of(days_key(config)).day(day))


def revision_of(config: DaysConfig, person_id: int, day: int | None = None) -> int:
    """How many days up to `day` (default: the server's day) the person changed on."""
    d = config.day if day is None else day
    if d <= 0 or config.changed_share <= 0:
        return 0
    return _days_of(days_key(config)).revision(person_id, d)


def listed(config: DaysConfig, lo: Date, hi: Date) -> list[tuple[int, bool]]:
    """(id, adult) of every person /person/changes lists for [lo, hi]: latest day first, each day's
    ids ascending, each id once (days before day 1 and after today list nothing)."""
    first, last = max(1, day_of(config, lo)), min(config.day, day_of(config, hi))
    if config.changed_share <= 0:
        return []
    line = _days_of(days_key(config))
    seen: set[int] = set()
    out: list[tuple[int, bool]] = []
    for d in range(last, first - 1, -1):
        for pid in line.day(d):
            if pid not in seen:
                seen.add(pid)
                out.append((pid, False))  # no credited person is adult
    return out


# ---------------------------------------------------------------------------------------------
# Bodies


@dataclass(frozen=True, slots=True)
class _Drawn:
    """What the hash of a person's id decides, beyond what the credits show."""

    birthday: str | None
    deathday: str | None
    place_of_birth: str | None
    imdb_id: str | None
    homepage: str | None
    also_known_as: tuple[str, ...]
    has_biography: bool
    slug: str
    wikidata: int | None
    socials: tuple[bool, bool, bool, bool, bool]  # facebook, instagram, tiktok, twitter, youtube
    extra_images: int


@lru_cache(maxsize=16_384)
def _drawn(person_id: int, name: str) -> _Drawn:
    d = HashDraws.of(f"person:{person_id}")
    birthday = deathday = None
    if d.below(5):
        year = 1925 + d.below(80)
        birthday = f"{year:04d}-{1 + d.below(12):02d}-{1 + d.below(28):02d}"
        if year < 1960 and d.below(3) == 0:
            deathday = f"{min(2024, year + 40 + d.below(45)):04d}-{1 + d.below(12):02d}-{1 + d.below(28):02d}"
    place = d.pick(_PLACES) if d.below(10) >= 3 else None
    imdb_id = f"nm{1 + d.below(9_999_999):07d}" if d.below(10) else None
    slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or f"person{person_id}"
    homepage = f"https://www.{slug}.com" if d.below(10) == 0 else None
    first, _, last = name.partition(" ")
    aka = (f"{first[:1]}. {last}", d.pick(_OTHER_NAMES), f"{last}, {first}")[: d.below(4)]
    return _Drawn(
        birthday=birthday,
        deathday=deathday,
        place_of_birth=place,
        imdb_id=imdb_id,
        homepage=homepage,
        also_known_as=aka,
        has_biography=d.below(100) >= 15,
        slug=slug,
        wikidata=1_000 + d.below(120_000_000) if d.below(10) >= 2 else None,
        socials=(d.below(3) == 0, d.below(2) == 0, d.below(5) == 0, d.below(2) == 0, d.below(6) == 0),
        extra_images=d.below(4),
    )


class _Holes(NamedTuple):
    popularity: bool
    imdb_id: str | Literal[False] | None  # False: the record's own


def _holes(person_id: int, config: PeopleConfig) -> _Holes | None:
    """The person's holes with quirk "holes" on (a property of the record, drawn from the seed)."""
    if "holes" not in config.quirks:
        return None
    d = HashDraws(digest(f"person-holes:{config.seed}:{person_id}", 16))
    if d.unit() >= config.quirk_rate:
        return None
    bad = d.below(2 * len(_BAD_IMDB))
    return _Holes(popularity=d.below(2) == 0, imdb_id=_BAD_IMDB[bad] if bad < len(_BAD_IMDB) else False)


def revised_popularity(person_id: int, popularity: float, revision: int) -> float:
    """A changed person's popularity: drawn afresh for each revision (day 0: the credits' value)."""
    if revision <= 0:
        return popularity
    u = HashDraws(digest(f"person-popularity:{person_id}:{revision}")).unit()
    return round(0.6 + 40 * u**4, 3)


@dataclass(frozen=True, slots=True)
class _Person:
    """One person as they stand on the server's day (or None from `_person`: no such person)."""

    base: dict[str, Any]
    drawn: _Drawn
    revision: int
    holes: _Holes | None

    @property
    def id(self) -> int:
        return int(self.base["id"])

    def imdb_id(self) -> str | None:
        if self.holes is not None and self.holes.imdb_id is not False:
            return self.holes.imdb_id
        return self.drawn.imdb_id

    def popularity(self) -> float | None:
        if self.holes is not None and self.holes.popularity:
            return None
        return revised_popularity(self.id, self.base["popularity"], self.revision)

    def biography(self, language: str) -> str:
        if not self.drawn.has_biography:
            return ""
        b, dept = self.base, self.base["known_for_department"].lower()
        born = f" (born {self.drawn.birthday})" if self.drawn.birthday else ""
        text = f"{b['name']}{born} is known for {dept} work in film and television."
        if self.revision > 0:
            text = f"{text} [revision {self.revision}]"
        return text if language == DEFAULT_LANGUAGE else f"{text} ({language})"


def _person(person_id: int, config: PeopleConfig) -> _Person | None:
    base = _index().people.get(person_id)
    if base is None or missing(person_id, config):
        return None
    return _Person(
        base, _drawn(person_id, base["name"]), revision_of(config, person_id), _holes(person_id, config)
    )


def _details(p: _Person, language: str) -> dict[str, Any]:
    b, d = p.base, p.drawn
    return {
        "adult": b["adult"],
        "also_known_as": list(d.also_known_as),
        "biography": p.biography(language),
        "birthday": d.birthday,
        "deathday": d.deathday,
        "gender": b["gender"],
        "homepage": d.homepage,
        "id": p.id,
        "imdb_id": p.imdb_id(),
        "known_for_department": b["known_for_department"],
        "name": b["name"],
        "place_of_birth": d.place_of_birth,
        "popularity": p.popularity(),
        "profile_path": b["profile_path"],
    }


def _without_media_type(entries: Sequence[dict[str, Any]], media: TitleMedia) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "media_type"} for e in entries if e["media_type"] == media]


def _external_ids(p: _Person) -> dict[str, Any]:
    d, slug = p.drawn, p.drawn.slug
    facebook, instagram, tiktok, twitter, youtube = d.socials
    return {
        "id": p.id,
        "freebase_mid": None,
        "freebase_id": None,
        "imdb_id": p.imdb_id(),
        "tvrage_id": None,
        "wikidata_id": None if d.wikidata is None else f"Q{d.wikidata}",
        "facebook_id": slug if facebook else None,
        "instagram_id": slug if instagram else None,
        "tiktok_id": slug if tiktok else None,
        "twitter_id": slug if twitter else None,
        "youtube_id": slug if youtube else None,
    }


def _images(p: _Person) -> dict[str, Any]:
    paths = [p.base["profile_path"]] if p.base["profile_path"] else []
    paths += [image_path(f"person:{p.id}:{k}") for k in range(p.drawn.extra_images)]
    profiles = []
    for k, path in enumerate(paths):
        d = HashDraws(digest(f"person-image:{path}"))
        height = 750 + 250 * d.below(10)
        profiles.append(
            {
                "aspect_ratio": 0.667,
                "height": height,
                "iso_639_1": None,
                "file_path": path,
                "vote_average": round(5.0 + d.below(500) / 100, 3) if k == 0 else 0.0,
                "vote_count": d.below(12) if k == 0 else 0,
                "width": round(height * 0.667),
            }
        )
    return {"id": p.id, "profiles": profiles}


def _translations(p: _Person) -> dict[str, Any]:
    items = [("US", "en", "English", "English", DEFAULT_LANGUAGE)]
    if p.drawn.has_biography:
        items += [("FR", "fr", "Français", "French", "fr-FR"), ("DE", "de", "Deutsch", "German", "de-DE")]
    return {
        "id": p.id,
        "translations": [
            {
                "iso_3166_1": c,
                "iso_639_1": lang,
                "name": name,
                "english_name": english,
                "data": {"biography": p.biography(tag)},
            }
            for c, lang, name, english, tag in items
        ],
    }


def _changes(p: _Person, config: PeopleConfig) -> dict[str, Any]:
    """The person's changes of the default window (yesterday and today), as /person/{id}/changes."""
    items = []
    for d in (config.day, config.day - 1):
        if d >= 1 and revision_of(config, p.id, d) > revision_of(config, p.id, d - 1):
            when = config.base_date + timedelta(days=d)
            items.append(
                {
                    "id": hex_id(f"person-change:{p.id}:{d}"),
                    "action": "updated",
                    "time": f"{when.isoformat()} 10:{d % 60:02d}:00 UTC",
                    "iso_639_1": "en",
                    "iso_3166_1": "US",
                    "value": f"[revision {revision_of(config, p.id, d)}]",
                }
            )
    return {"changes": [{"key": "biography", "items": items}] if items else []}


def _section(p: _Person, name: str, config: PeopleConfig) -> dict[str, Any] | None:
    """One appended section (or sub-resource) of the person; None: TMDB has no such name."""
    if name in ("combined_credits", "movie_credits", "tv_credits"):
        cast, crew = _credits(p.id, config)
        if name != "combined_credits":
            media: TitleMedia = "movie" if name == "movie_credits" else "tv"
            cast, crew = _without_media_type(cast, media), _without_media_type(crew, media)
        return {"cast": cast, "crew": crew, "id": p.id}
    if name == "external_ids":
        return _external_ids(p)
    if name == "images":
        return _images(p)
    if name == "translations":
        return _translations(p)
    if name == "changes":
        return _changes(p, config)
    if name == "tagged_images":
        return {"id": p.id, "page": 1, "results": [], "total_pages": 0, "total_results": 0}
    return None


def person_body(
    person_id: int, config: PeopleConfig, append: Sequence[str] = (), language: str = DEFAULT_LANGUAGE
) -> bytes | None:
    """The body of /person/{id} with one key per known appended name (None: 404, status_code 34).

    `append` should already be split and de-duplicated (the server checks TMDB's limit of 20).
    """
    p = _person(person_id, config)
    if p is None:
        return None
    body = _details(p, language)
    for name in append:
        section = _section(p, name, config)
        if section is not None:
            body[name] = section
    return orjson.dumps(body)


def sub_resource_body(person_id: int, name: str, config: PeopleConfig) -> bytes | None:
    """The body of /person/{id}/{name} (None: 404, status_code 34; no such person or name)."""
    p = _person(person_id, config)
    section = None if p is None else _section(p, name, config)
    return None if section is None else orjson.dumps(section)


# ---------------------------------------------------------------------------------------------
# The export


def export_records(config: PeopleConfig, adult: bool, day: int) -> Iterator[tuple[int, str, float]]:
    """(id, name, popularity) of each line of the person export of `day`, in file order."""
    if adult:
        return  # no credited person is adult: the adult file is empty
    people = _index().people
    for pid in all_person_ids():
        if not missing(pid, config):
            base = people[pid]
            yield (
                pid,
                base["name"],
                revised_popularity(pid, base["popularity"], revision_of(config, pid, day)),
            )


def export_key(config: PeopleConfig, day: int) -> tuple[object, ...]:
    """What a person export file's content depends on (for its ETag)."""
    moved = day > 0 and config.changed_share > 0
    return ("person", config.seed, config.person_missing_share, config.changed_share if moved else None)
