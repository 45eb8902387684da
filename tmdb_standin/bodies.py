"""The bodies TMDB returns for a title: details (with appends), sub-resources, /find, /discover.

Pure and I/O-free. A title's bodies are its template's bytes (templates.py) joined with the title's
own values (`TitleRendering`) and, for credits, a slice of pre-serialized blocks (credits.py): a body
costs a hash, a dozen tiny orjson calls and one bytes join, whatever its size (the stand-in shares
the cores with the harvester in benchmarks). A title's holes (titles.holes_of) are values like any
other: JSON null, "" or an id beyond 2^32 in its slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import orjson

from harvester.items import Media

from .credits import CreditsCut, append_credits, credit_pools
from .draws import HashDraws, digest, image_path
from .seasonplan import iso, last_air_ordinal, schedule
from .templates import TEMPLATES_PER_MEDIA, TemplateBodies, TemplateFacts, template_bodies
from .titles import (
    MOVIE_GENRES,
    TV_GENRES,
    FindEntry,
    Kind,
    TitleFacts,
    TitleHoles,
    day_strings,
    kind_of,
    media_of_kind,
    parse_imdb_id,
    revised_facts,
    title_facts,
    tmdb_id_for_number,
)
from .vocabulary import ADJECTIVES, FIRST_NAMES, NOUNS

DEFAULT_LANGUAGE = "en-US"

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
        "watch/providers", "changes", "lists", "episode_groups", "screened_theatrically",
    }
)  # fmt: skip

_GENRE_NAMES: dict[Media, dict[int, str]] = {"movie": dict(MOVIE_GENRES), "tv": dict(TV_GENRES)}


def warm() -> None:
    """Build the credit pools, the date table and every template now (well under a second).

    Lazily, the first body would stall the server's loop for ~60 ms (the date table alone), and the
    requests that queue meanwhile would be timestamped together: a false 429 for a well-paced client.
    """
    credit_pools()
    day_strings()
    for media, count in TEMPLATES_PER_MEDIA.items():
        for k in range(count):
            template_bodies(media, k)


# ---------------------------------------------------------------------------------------------
# One title: its template and the values for the template's slots


@dataclass(slots=True)
class TitleRendering:
    """What one title's bodies are rendered from: its template, its slot values, its credits cut."""

    media: Media
    title: str
    language: str
    date: str  # the release (first air) date shown
    template: TemplateBodies
    values: dict[str, bytes]
    credits: CreditsCut

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

    def add_holes(self, holes: TitleHoles) -> None:
        """Show the title's holes (after every slot they touch has its value)."""
        values = self.values
        if holes.imdb_id is not None:
            values["IMDB"] = holes.imdb_id
        if holes.date:
            values["DATE"] = b'""'
        if holes.popularity:
            values["POPULARITY"] = b"null"
        if holes.runtime:
            values["RUNTIME"] = b"null"
        if holes.big_id is not None:
            values["COMPANY"] = values["TVDB"] = b"%d" % holes.big_id

    def append_credits(self, out: list[bytes | memoryview], aggregate: bool) -> None:
        append_credits(out, self.media, self.values["ID"], self.credits, aggregate)


def _localise(text: str, language: str) -> str:
    # Visible proof that `language` reached the server (TMDB would translate).
    return text if language == DEFAULT_LANGUAGE or not text else f"{text} ({language})"


@lru_cache(maxsize=4096)
def _genre_bytes(media: Media, genre_ids: tuple[int, ...]) -> tuple[bytes, bytes]:
    """(the details' "genres" array, the summaries' "genre_ids" array), serialized."""
    names = _GENRE_NAMES[media]
    objs = [{"id": gid, "name": names.get(gid, "")} for gid in genre_ids]
    return orjson.dumps(objs), orjson.dumps(list(genre_ids))


def _draw_title(d: HashDraws) -> str:
    form = d.below(6)
    adj, noun = d.pick(ADJECTIVES), d.pick(NOUNS)
    if form == 0:
        return f"The {adj} {noun}"
    if form == 1:
        return f"{adj} {noun}"
    if form == 2:
        return f"{noun} of the {adj} {d.pick(NOUNS)}"
    if form == 3:
        return f"The {noun}"
    if form == 4:
        return f"{d.pick(FIRST_NAMES)}'s {noun}"
    return f"{adj} {noun} {d.pick(('II', 'III', 'Returns', 'Reloaded', '2'))}"


def _original(title: str, f: TemplateFacts) -> str:
    return title if f.origin[2] == "en" else f"{title} ({f.origin[3]} title)"


def _seed(media: Media, imdb_id: str) -> bytes:
    return digest(f"{media}:{imdb_id}", 64)  # one hash per title: 16 bytes of draws, 2 image paths


def original_title(media: Media, imdb_id: str) -> str:
    """The title's `original_title` (`original_name` for TV), as its details show it: the export's."""
    d = HashDraws(_seed(media, imdb_id)[:16])
    template = template_bodies(media, d.below(TEMPLATES_PER_MEDIA[media]))
    return _original(_draw_title(d), template.facts)


def credits_cut(media: Media, imdb_id: str) -> CreditsCut:
    """Which credits the title's details show (the draws of `_render`, in its order): people.py
    finds the titles that name a person from it without rendering them."""
    d = HashDraws(_seed(media, imdb_id)[:16])
    d.below(TEMPLATES_PER_MEDIA[media])
    _draw_title(d)
    return CreditsCut.draw(d)


def revised_overview(overview: str, revision: int) -> str:
    # What a day's change shows in the text (days.py): bodies of a changed title differ visibly.
    return overview if revision <= 0 else f"{overview} [revision {revision}]"


def _render(
    media: Media,
    imdb_id: str,
    language: str,
    facts: TitleFacts,
    revision: int = 0,
    video: bool = False,
    tmdb_id: int | None = None,
) -> TitleRendering:
    """The title's template, slot values and credits cut (`imdb_id` must be canonical).

    `facts` are the ones to show (already revised, see titles.revised_facts); `revision` marks the
    overview of a title changed since day 0; `video` is the movie's direct-to-video flag; `tmdb_id`
    the id to show when it is not the title's own (a duplicate record, titles.find_entries).
    """
    n = parse_imdb_id(imdb_id)
    if n is None:
        raise ValueError(f"not a canonical IMDb id: {imdb_id!r}")
    seed = _seed(media, imdb_id)
    d = HashDraws(seed[:16])
    template = template_bodies(media, d.below(TEMPLATES_PER_MEDIA[media]))
    f = template.facts
    title = _draw_title(d)
    dumps = orjson.dumps
    values = {
        "ID": b"%d" % (tmdb_id or tmdb_id_for_number(media, n)),
        "IMDB": dumps(imdb_id),
        "TITLE": dumps(_localise(title, language)),
        "ORIGINAL": dumps(_original(title, f)),
        "OVERVIEW": dumps(_localise(revised_overview(f.overview, revision), language)),
        "TAGLINE": dumps(_localise(f.tagline, language)),
        "POSTER": dumps(image_path("", seed[16:37])),
        "BACKDROP": dumps(image_path("", seed[37:58])),
    }
    if f.collection:
        values["COLLECTION"] = dumps(f"{title} Collection")
    genres, genre_ids = _genre_bytes(media, facts.genre_ids)
    day = facts.date
    values.update(
        ADULT=b"true" if facts.adult else b"false",
        VIDEO=b"true" if video else b"false",
        GENRES=genres,
        GENRE_IDS=genre_ids,
        DATE=b'"%s"' % day.encode(),
        POPULARITY=dumps(facts.popularity),
        VOTES=b"%d" % facts.vote_count,
    )
    if media == "tv":
        plan = f.plan
        for number, (first, _) in zip(plan.numbers, schedule(plan, day), strict=True):
            values[f"SEASON_{number}"] = b'"%s"' % iso(first).encode()
        values["LAST_AIR"] = b'"%s"' % iso(last_air_ordinal(plan, day)).encode()
    return TitleRendering(media, title, language, day, template, values, CreditsCut.draw(d))


# ---------------------------------------------------------------------------------------------
# Public body builders


@dataclass(frozen=True, slots=True)
class TitleState:
    """How a title stands on the server's day (days.py): its own date unless the discover universe
    moved it (crowded_day), its revision since day 0, and its video flag. The default is day 0's."""

    date: str | None = None
    revision: int = 0
    video: bool = False


DAY_ZERO = TitleState()


def _on(
    media: Media, imdb_id: str, language: str, state: TitleState, tmdb_id: int | None = None
) -> TitleRendering:
    facts = revised_facts(media, imdb_id, title_facts(media, imdb_id), state.revision)
    if state.date is not None:
        facts = facts._replace(date=state.date)
    return _render(media, imdb_id, language, facts, state.revision, state.video, tmdb_id)


def _is_credits(media: Media, name: str) -> bool:
    return name == "credits" or (name == "aggregate_credits" and media == "tv")


def details_body(
    media: Media,
    imdb_id: str,
    append: Sequence[str] = (),
    language: str = DEFAULT_LANGUAGE,
    state: TitleState = DAY_ZERO,
    holes: TitleHoles | None = None,
    tmdb_id: int | None = None,
) -> bytes:
    """The details body of /movie/{id} or /tv/{id} with one key per known appended sub-resource.

    `imdb_id` names the title (its TMDB id derives from it, unless `tmdb_id` names a duplicate
    record); `append` should already be split and de-duplicated. Names TMDB does not know for this
    media are silently ignored, as TMDB does. `state` is how the title stands on the server's day
    (the crowded day's date, a revision, video); `holes` what its record lacks (titles.holes_of).
    """
    r = _on(media, imdb_id, language, state, tmdb_id)
    subs = r.template.subs
    r.values.update(r.template.hole_slots)
    if any(name in subs for name in append):
        r.add_sub_values()
    if holes is not None:
        r.add_holes(holes)
    out: list[bytes | memoryview] = []
    r.template.details.fill(r.values, out)
    if append:
        out[-1] = out[-1][:-1]  # reopen the object: drop its closing brace
        for name in append:
            if name in subs:
                out.append(b',"%s":' % name.encode())
                subs[name].fill(r.values, out)
            elif _is_credits(media, name):
                out.append(b',"%s":' % name.encode())
                r.append_credits(out, name == "aggregate_credits")
        out.append(b"}")
    return b"".join(out)


def sub_resource_body(
    media: Media,
    imdb_id: str,
    name: str,
    language: str = DEFAULT_LANGUAGE,
    state: TitleState = DAY_ZERO,
    holes: TitleHoles | None = None,
    tmdb_id: int | None = None,
) -> bytes | None:
    """The body of /movie/{id}/{name} or /tv/{id}/{name} alone (None: no such sub-resource).

    The same object `details_body(..., append=[name])` embeds under `name`: the course scripts'
    "details, then credits" makes two requests where append_to_response makes one.
    """
    r = _on(media, imdb_id, language, state, tmdb_id)
    out: list[bytes | memoryview] = []
    template = r.template.subs.get(name)
    if template is not None:
        r.values.update(r.template.hole_slots)
        r.add_sub_values()
        if holes is not None:
            r.add_holes(holes)
        template.fill(r.values, out)
    elif _is_credits(media, name):
        r.append_credits(out, name == "aggregate_credits")
    else:
        return None
    return b"".join(out)


FIND_EMPTY = (  # /find of an id TMDB does not know
    b'{"movie_results":[],"person_results":[],"tv_results":[],"tv_episode_results":[],"tv_season_results":[]}'
)


def find_body(
    imdb_id: str,
    language: str = DEFAULT_LANGUAGE,
    overrides: Mapping[str, Kind] | None = None,
    state: TitleState = DAY_ZERO,
) -> bytes:
    """The body of /find/{imdb_id}?external_source=imdb_id (HTTP 200 even when nothing matches).

    `state` as in `details_body`. The title alone: what the server lists, quirks included, is
    `find_entries_body(titles.find_entries(...))`.
    """
    media = media_of_kind(kind_of(imdb_id, overrides))
    n = parse_imdb_id(imdb_id)
    if media is None or n is None:
        return FIND_EMPTY
    return find_entries_body([(FindEntry(media, imdb_id, tmdb_id_for_number(media, n)), state)], language)


def find_entries_body(
    entries: Sequence[tuple[FindEntry, TitleState]], language: str = DEFAULT_LANGUAGE
) -> bytes:
    """The body of /find listing these entries (titles.find_entries), each as it stands, in order."""
    results: dict[Media, list[bytes | memoryview]] = {"movie": [], "tv": []}
    for entry, state in entries:
        r = _on(entry.media, entry.imdb_id, language, state, entry.tmdb_id)
        out = results[entry.media]
        if out:
            out.append(b",")
        r.template.summary.fill(r.values, out)
    return b"".join(
        [
            b'{"movie_results":[',
            *results["movie"],
            b'],"person_results":[],"tv_results":[',
            *results["tv"],
            b'],"tv_episode_results":[],"tv_season_results":[]}',
        ]
    )


def discover_result(
    media: Media,
    imdb_id: str,
    facts: TitleFacts,
    language: str,
    out: list[bytes | memoryview],
    revision: int = 0,
    video: bool = False,
) -> None:
    """Append one /discover result (a summary object, serialized) for this title to `out`.

    `facts` as the universe holds them (revised already); `revision` and `video` as in TitleState.
    """
    r = _render(media, imdb_id, language, facts, revision, video)
    r.template.discover.fill(r.values, out)


def _genre_objs(genres: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"id": gid, "name": name} for gid, name in genres]


@cache
def genre_list_body(media: Media) -> bytes:
    return orjson.dumps({"genres": _genre_objs(MOVIE_GENRES if media == "movie" else TV_GENRES)})
