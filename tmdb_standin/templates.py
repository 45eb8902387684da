"""Body templates: what a pool of titles shares, pre-serialized with slots for per-title values.

Building a details object per request costs ~100 us of Python. Instead each media has a pool of
templates: facts drawn once (overview, money, companies, ...) and pre-serialized, with "@@SLOT@@"
sentinels where per-title values go (ids, title, date, genres). A title hashes to a template; its
body is the template's byte literals joined with its own values (bodies.py). Details, the /find
summary, the discover summary and the sub-resources of a title all come from the same template, so
they agree with each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import orjson

from harvester.items import Media

from .draws import HashDraws, digest, hex_id, image_path
from .seasonplan import NO_SEASONS, SeasonPlan, draw_plan, episode_id, season_id
from .titles import MOVIE_GENRES, TV_GENRES
from .vocabulary import (
    CERTIFICATIONS,
    COMPANIES,
    FIRST_NAMES,
    GOALS,
    KEYWORDS,
    LAST_NAMES,
    NETWORKS,
    NOUNS,
    OBJECTS,
    ORIGIN_BR,
    ORIGIN_US,
    ORIGINS,
    PLACES,
    ROLES,
    TAGLINES,
    TV_RATINGS,
    TWISTS,
    VIDEO_KINDS,
)

TEMPLATES_PER_MEDIA: dict[Media, int] = {"movie": 1024, "tv": 256}
_SENTINEL = re.compile(rb'"@@([A-Z0-9_]+)@@"')


def _slot(name: str) -> str:
    return f"@@{name}@@"


@dataclass(frozen=True, slots=True)
class SlottedJson:
    """Serialized JSON split at its slots: literals[0] value(fields[0]) literals[1] ... literals[-1]."""

    literals: tuple[bytes, ...]
    fields: tuple[str, ...]

    def fill(self, values: Mapping[str, bytes], out: list[bytes | memoryview]) -> None:
        literals = self.literals
        out.append(literals[0])
        for i, name in enumerate(self.fields, 1):
            out.append(values[name])
            out.append(literals[i])


def _compile(obj: Any) -> SlottedJson:
    pieces = _SENTINEL.split(orjson.dumps(obj))
    return SlottedJson(tuple(pieces[0::2]), tuple(p.decode() for p in pieces[1::2]))


@dataclass(frozen=True, slots=True)
class TemplateFacts:
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
    seasons: int  # the plan's inputs (below): number_of_seasons is plan.regular, not this
    episodes: int
    network: tuple[int, str, str]
    number: int  # a per-template number for the small ids TMDB would assign (seasons, images...)
    # TV: the seasons (seasonplan.py), drawn from `seasons` (1..8) and `episodes` unless long.
    plan: SeasonPlan = NO_SEASONS


def _draw_template_facts(media: Media, k: int) -> TemplateFacts:
    d = HashDraws.of(f"template:{media}:{k}")
    overview = (
        f"When a {d.pick(ROLES)} from {d.pick(PLACES)} finds an old {d.pick(OBJECTS)}, "
        f"{d.pick(('she', 'he', 'they'))} must {d.pick(GOALS)}. {d.pick(TWISTS)}"
    )
    year = 2024 - min(d.below(105), d.below(105), d.below(130))  # skewed towards recent years
    genre_pool = MOVIE_GENRES if media == "movie" else TV_GENRES
    n_genres = 1 + d.below(3)
    # dict, not set: a set of str-bearing tuples iterates in a per-process (hash seed) order
    genres = tuple(sorted(dict.fromkeys(d.pick(genre_pool) for _ in range(n_genres)), key=genre_pool.index))
    popular = d.unit()
    budget = 0 if d.below(5) < 3 else 10_000 * (1 + d.below(20_000))
    revenue = 0 if budget == 0 and d.below(2) else int(budget * (0.2 + 5 * d.unit())) + d.below(99_999)
    facts = TemplateFacts(
        key=f"{media}{k}",
        overview=overview,
        tagline=d.pick(TAGLINES),
        date=f"{year:04d}-{1 + d.below(12):02d}-{1 + d.below(28):02d}",
        genres=genres,
        origin=d.pick(ORIGINS),
        popularity=round(0.6 + 120 * popular**3, 3),
        vote_average=round(3.0 + 5.8 * d.unit(), 3),
        vote_count=int(20_000 * popular**4) + d.below(40),
        runtime=0 if d.below(40) == 0 else 70 + d.below(110),
        budget=budget,
        revenue=revenue,
        companies=tuple(dict.fromkeys(d.pick(COMPANIES) for _ in range(1 + d.below(3)))),
        collection=d.below(10) == 0,
        homepage="" if d.below(5) < 3 else f"https://www.{d.pick(NOUNS).lower()}{k}-film.com/",
        status="Released" if d.below(40) else d.pick(("Post Production", "In Production", "Canceled")),
        seasons=1 + d.below(8),
        episodes=6 + d.below(120),
        network=d.pick(NETWORKS),
        number=1 + d.below(9_000_000),
    )
    if media == "tv":  # the plan has a generator of its own: the draws above stay as they were
        facts = replace(facts, plan=draw_plan(k, facts.seasons, facts.episodes))
    return facts


def _companies(f: TemplateFacts) -> list[dict[str, Any]]:
    # The first company's id is a slot: a title with holes shows an id beyond 2^32 there.
    return [
        {"id": _slot("COMPANY") if i == 0 else cid,
         "logo_path": image_path(f"logo:{cid}") if cid % 3 else None, "name": name, "origin_country": country}
        for i, (cid, name, country) in enumerate(f.companies)
    ]  # fmt: skip


def _tvdb_id(f: TemplateFacts) -> int:
    return 70_000 + f.number % 400_000


def _hole_slots(f: TemplateFacts) -> dict[str, bytes]:
    """The template's own values of the slots that a title's holes may replace (titles.TitleHoles)."""
    return {"RUNTIME": b"%d" % f.runtime, "COMPANY": b"%d" % f.companies[0][0], "TVDB": b"%d" % _tvdb_id(f)}


def _countries(f: TemplateFacts) -> list[dict[str, str]]:
    return [{"iso_3166_1": f.origin[0], "name": f.origin[1]}]


def _spoken(f: TemplateFacts) -> list[dict[str, str]]:
    spoken = [{"english_name": f.origin[3], "iso_639_1": f.origin[2], "name": f.origin[4]}]
    if f.origin[2] != "en" and f.vote_count % 2:
        spoken.append({"english_name": "English", "iso_639_1": "en", "name": "English"})
    return spoken


def _movie_details(f: TemplateFacts) -> dict[str, Any]:
    collection = None
    if f.collection:
        collection = {
            "id": 10_000 + f.number % 900_000,
            "name": _slot("COLLECTION"),
            "poster_path": image_path(f"cposter:{f.key}"),
            "backdrop_path": image_path(f"cbackdrop:{f.key}"),
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
        "runtime": _slot("RUNTIME"),
        "spoken_languages": _spoken(f),
        "status": f.status,
        "tagline": _slot("TAGLINE"),
        "title": _slot("TITLE"),
        "video": _slot("VIDEO"),
        "vote_average": f.vote_average,
        "vote_count": _slot("VOTES"),
    }


def season_entry(f: TemplateFacts, index: int) -> dict[str, Any]:
    """The `seasons` item of the details for the plan's index-th season; a season body (seasons.py)
    carries the same values. The air date is the title's (slot SEASON_<number>, bodies.py)."""
    number, count = f.plan.numbers[index], f.plan.episodes[index]
    d = HashDraws.of(f"season:{f.key}:{number}")
    overview = "" if d.below(5) < 2 else f"The story continues as they {d.pick(GOALS)}. {d.pick(TWISTS)}"
    return {
        "air_date": _slot(f"SEASON_{number}"),
        "episode_count": count,
        "id": season_id(f.number, number),
        "name": f"Season {number}" if number else "Specials",
        "overview": overview,
        "poster_path": image_path(f"season:{f.key}:{number}") if d.below(10) else None,
        "season_number": number,
        "vote_average": 0.0 if number == 0 else min(10.0, round(f.vote_average * (0.85 + number / 200), 1)),
    }


def _tv_details(f: TemplateFacts) -> dict[str, Any]:
    plan = f.plan
    ended = plan.regular > 3 or f.date < "2015"
    last_air = _slot("LAST_AIR")  # the last episode's air date, from the title's first (bodies.py)
    last_season, last_episode = plan.numbers[-1], plan.episodes[-1]
    creator = f"{FIRST_NAMES[f.number % len(FIRST_NAMES)]} {LAST_NAMES[f.number % len(LAST_NAMES)]}"
    network_id, network_name, network_country = f.network
    return {
        "adult": _slot("ADULT"),
        "backdrop_path": _slot("BACKDROP"),
        "created_by": [
            {
                "id": 1_000_000 + f.number % 3_000_000,
                "credit_id": hex_id(f"creator:{f.key}"),
                "name": creator,
                "original_name": creator,
                "gender": 1 + f.number % 2,
                "profile_path": image_path(f"creator:{f.key}"),
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
            "id": episode_id(f.number, last_season, last_episode),
            "name": f"Episode {last_episode}",
            "overview": "",
            "vote_average": round(f.vote_average * 0.9, 1),
            "vote_count": f.vote_count // 50,
            "air_date": last_air,
            "episode_number": last_episode,
            "episode_type": "finale",  # the last episode of its season, as in the season body
            "production_code": "",
            "runtime": f.runtime // 2 or 42,
            "season_number": last_season,
            "show_id": _slot("ID"),
            "still_path": image_path(f"still:{f.key}"),
        },
        "name": _slot("TITLE"),
        "next_episode_to_air": None,
        "networks": [
            {
                "id": network_id,
                "logo_path": image_path(f"network:{network_id}"),
                "name": network_name,
                "origin_country": network_country,
            }
        ],
        "number_of_episodes": plan.regular_episodes,
        "number_of_seasons": plan.regular,
        "origin_country": [f.origin[0]],
        "original_language": f.origin[2],
        "original_name": _slot("ORIGINAL"),
        "overview": _slot("OVERVIEW"),
        "popularity": _slot("POPULARITY"),
        "poster_path": _slot("POSTER"),
        "production_companies": _companies(f),
        "production_countries": _countries(f),
        "seasons": [season_entry(f, i) for i in range(len(plan.numbers))],
        "spoken_languages": _spoken(f),
        "status": "Ended" if ended else "Returning Series",
        "tagline": _slot("TAGLINE"),
        "type": "Scripted",
        "vote_average": f.vote_average,
        "vote_count": _slot("VOTES"),
    }


def _summary(media: Media, f: TemplateFacts) -> dict[str, Any]:
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
        common.update(release_date=_slot("DATE"), video=_slot("VIDEO"))
    else:
        common["first_air_date"] = _slot("DATE")
    common.update(vote_average=f.vote_average, vote_count=_slot("VOTES"))
    if media == "tv":
        common["origin_country"] = [f.origin[0]]
    return common


def _discover_summary(media: Media, f: TemplateFacts) -> dict[str, Any]:
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
            "video": _slot("VIDEO"),
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


def _images(f: TemplateFacts) -> dict[str, Any]:
    def image(kind: str, i: int, w: int, h: int, iso: str | None) -> dict[str, Any]:
        return {
            "aspect_ratio": round(w / h, 3),
            "height": h,
            "iso_639_1": iso,
            "file_path": image_path(f"{kind}{i}:{f.key}"),
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


def _videos(f: TemplateFacts) -> dict[str, Any]:
    return {
        "id": _slot("ID"),
        "results": [
            {
                "iso_639_1": _slot("LANG"),
                "iso_3166_1": _slot("REGION"),
                "name": f"Official {kind}",
                "key": image_path(f"yt{i}:{f.key}")[1:12],
                "site": "YouTube",
                "size": (1080, 720, 2160)[i % 3],
                "type": kind,
                "official": True,
                "published_at": f"{f.date}T1{i % 10}:00:0{i % 10}.000Z",
                "id": hex_id(f"video{i}:{f.key}"),
            }
            for i, kind in enumerate(VIDEO_KINDS[: 1 + f.number % 3])
        ],
    }


def _translations(media: Media, f: TemplateFacts) -> dict[str, Any]:
    out = []
    for country, _, lang, english, own in dict.fromkeys((f.origin, ORIGIN_US, ORIGIN_BR)):
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


def _external_ids(media: Media, f: TemplateFacts) -> dict[str, Any]:
    ids: dict[str, Any] = {"id": _slot("ID"), "imdb_id": _slot("IMDB")}
    if media == "tv":
        ids.update(freebase_mid=None, freebase_id=None, tvdb_id=_slot("TVDB"), tvrage_id=None)
    handle = f"{media}{f.number}"
    ids.update(
        wikidata_id=f"Q{10_000 + f.number}" if f.number % 3 else None,
        facebook_id=f"{handle}official" if f.number % 4 == 0 else None,
        instagram_id=handle if f.number % 5 == 0 else None,
        twitter_id=f"{handle}film" if f.number % 6 == 0 else None,
    )
    return ids


def _sub_resources(media: Media, f: TemplateFacts) -> dict[str, Any]:
    """Every small appended sub-resource TMDB knows for this media (credits are spliced apart)."""
    kws = [{"id": k, "name": n} for k, n in (KEYWORDS[(f.number + 5 * i) % len(KEYWORDS)] for i in range(4))]
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
        cert = CERTIFICATIONS[f.number % len(CERTIFICATIONS)]
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
        rating = TV_RATINGS[f.number % len(TV_RATINGS)]
        subs["lists"] = _paged_empty(with_id=True)
        subs["episode_groups"] = {"results": [], "id": _slot("ID")}
        subs["screened_theatrically"] = {"id": _slot("ID"), "results": []}
        subs["content_ratings"] = {
            "results": [{"descriptors": [], "iso_3166_1": c, "rating": rating} for c in ("US", "BR")],
            "id": _slot("ID"),
        }
    return subs


@dataclass(frozen=True, slots=True)
class TemplateBodies:
    """One template's facts and its compiled bodies (credits are spliced apart, see credits.py)."""

    facts: TemplateFacts
    details: SlottedJson
    summary: SlottedJson  # a /find result
    discover: SlottedJson  # a /discover result
    subs: Mapping[str, SlottedJson]
    hole_slots: Mapping[str, bytes]  # what details and sub-resources fill in where holes may go


@cache
def template_bodies(media: Media, k: int) -> TemplateBodies:
    """Template k of this media (0 <= k < TEMPLATES_PER_MEDIA[media]), built once."""
    f = _draw_template_facts(media, k)
    details = _movie_details(f) if media == "movie" else _tv_details(f)
    subs = {name: _compile(obj) for name, obj in _sub_resources(media, f).items()}
    summary, discover = _compile(_summary(media, f)), _compile(_discover_summary(media, f))
    return TemplateBodies(f, _compile(details), summary, discover, subs, _hole_slots(f))


def template_index(media: Media, imdb_id: str) -> int:
    """Which template a title uses (its original_language and vote_average come from it)."""
    return HashDraws(digest(f"{media}:{imdb_id}", 64)[:16]).below(TEMPLATES_PER_MEDIA[media])


def template_language(media: Media, index: int) -> tuple[str, float]:
    """(original_language, vote_average) of a template."""
    f = template_bodies(media, index).facts
    return f.origin[2], f.vote_average
