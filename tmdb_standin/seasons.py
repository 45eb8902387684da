"""TV seasons with their episodes: `/tv/{id}/season/{n}` and `season/N` in append_to_response.

Which seasons a series has is its template's plan (seasonplan.py): the details' `seasons` list and
these bodies agree. A season body is built like every other body here (templates.py): once per
(template, season), its episodes are serialized with slots for what belongs to the title (the show's
id, the air dates, the vote counts, which grow with the title's revision, days.py); a request joins
the bytes with those values. Episode crews and guest stars are small arrays pre-serialized once from
the people of the series credits (credits.py), so every person in them is a person the catalogue's
credits name, and are shared by reference, not copied, between the episodes that show them.

Season and episode ids, names, overviews and credit ids belong to the template (as the stand-in's
other small ids do): the titles sharing one template show the same ones. Names are not localised.

For tests: `season_numbers(series, config)` and `episode_counts(series, config)` are what the server
answers for a series (by TMDB id, or by the series' IMDb id), days included: a series gone on the
server's day has none.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import orjson

from . import days, titles
from .bodies import DAY_ZERO, TitleState
from .credits import credit_pools
from .draws import hex_id, image_path
from .seasonplan import SeasonPlan, episode_id, is_long_template, iso, schedule
from .templates import SlottedJson, TemplateFacts, season_entry, template_bodies, template_index
from .vocabulary import ADJECTIVES, GOALS, NOUNS, TWISTS

PREFIX = "season/"
_VARIANTS = 64  # pre-serialized arrays of each size
_CREW_SIZES = range(1, 7)
_GUEST_SIZES = range(9)
_LONG_CREW_SIZES = range(1, 3)  # long-running series (soaps, talk shows): small episode credits
_LONG_GUEST_SIZES = range(3)
_PERSON_KEYS = (
    "adult", "gender", "id", "known_for_department", "name", "original_name", "popularity", "profile_path",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Episode credits: pre-serialized arrays of the credits' people


@dataclass(frozen=True, slots=True)
class _EpisodeCredits:
    crews: Mapping[int, tuple[bytes, ...]]  # size -> serialized arrays of that many crew entries
    guests: Mapping[int, tuple[bytes, ...]]  # size -> serialized arrays of guest stars


def _pool_entries(blocks: Iterable[Any]) -> list[dict[str, Any]]:
    return [e for block in blocks for e in orjson.loads(b"[" + bytes(block.data) + b"]")]


@cache
def _episode_credits() -> _EpisodeCredits:
    pools = credit_pools()
    # The people the series credits name (cast and crew as credits.py serialized them).
    cast, crew = _pool_entries(pools.tv_cast), _pool_entries(pools.crew)
    rng = random.Random(20_240_602)  # fixed: part of the catalogue's deterministic output

    def credit_id() -> str:
        return f"{rng.getrandbits(96):024x}"

    def crew_array(size: int) -> bytes:
        entries = []
        for _ in range(size):
            e = rng.choice(crew)
            person = {k: e[k] for k in _PERSON_KEYS}
            entries.append(
                {"job": e["job"], "department": e["department"], "credit_id": credit_id(), **person}
            )
        return orjson.dumps(entries)

    def guest_array(size: int) -> bytes:
        entries = []
        for order in range(size):
            e = rng.choice(cast)
            person = {k: e[k] for k in _PERSON_KEYS}
            entries.append({"character": e["character"], "credit_id": credit_id(), "order": order, **person})
        return orjson.dumps(entries)

    return _EpisodeCredits(
        crews={n: tuple(crew_array(n) for _ in range(_VARIANTS)) for n in _CREW_SIZES},
        guests={n: tuple(guest_array(n) for _ in range(_VARIANTS)) for n in _GUEST_SIZES},
    )


# ---------------------------------------------------------------------------------------------
# One season of one template, serialized with slots


@dataclass(frozen=True, slots=True)
class _Skeleton:
    body: SlottedJson  # slots: ID, SEASON_AIR, A<e> (air dates), V<e> (vote counts), C<e>, G<e>
    constants: Mapping[str, bytes]  # the C<e> and G<e> values: credit arrays, shared
    index: int  # the season's place in the plan (schedule order)
    votes: tuple[int, ...]  # each episode's vote_count on day 0


def _slot(name: str) -> str:
    return f"@@{name}@@"


def _compile(obj: Any) -> SlottedJson:
    # templates.py's sentinel format: a slot is the JSON string "@@NAME@@"
    pieces = orjson.dumps(obj).split(b'"@@')
    literals, fields = [pieces[0]], []
    for piece in pieces[1:]:
        name, _, rest = piece.partition(b'@@"')
        fields.append(name.decode())
        literals.append(rest)
    return SlottedJson(tuple(literals), tuple(fields))


def _episode_name(rng: random.Random, e: int) -> str:
    form = rng.randrange(4)
    if form == 0:
        return f"Episode {e}"
    if form == 1:
        return f"The {rng.choice(NOUNS)}"
    return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"


def _episodes(
    f: TemplateFacts, k: int, number: int, count: int
) -> tuple[list[dict[str, Any]], dict[str, bytes], list[int]]:
    rng = random.Random(f"episodes:tv:{k}:{number}")
    arrays = _episode_credits()
    long = is_long_template(k)
    crew_sizes = _LONG_CREW_SIZES if long else _CREW_SIZES
    guest_sizes = _LONG_GUEST_SIZES if long else _GUEST_SIZES
    runtime = f.runtime // 2 or 42
    mid = count // 2 if number and count >= 12 and rng.random() < 0.3 else 0
    episodes, constants, votes = [], {}, []
    for e in range(1, count + 1):
        crew = arrays.crews[rng.choice(crew_sizes)]
        guests = arrays.guests[rng.choice(guest_sizes)]
        constants[f"C{e}"] = crew[rng.randrange(_VARIANTS)]
        constants[f"G{e}"] = guests[rng.randrange(_VARIANTS)]
        votes.append(rng.randrange(f.vote_count // 200 + 5))
        overview = "" if rng.random() < 0.15 else f"They {rng.choice(GOALS)}. {rng.choice(TWISTS)}"
        kind = "finale" if number and e == count else "mid_season" if e == mid else "standard"
        episodes.append(
            {
                "air_date": _slot(f"A{e}"),
                "episode_number": e,
                "episode_type": kind,
                "id": episode_id(f.number, number, e),
                "name": _episode_name(rng, e),
                "overview": overview,
                "production_code": f"{number}X{e:02d}" if f.number % 3 == 0 else "",
                "runtime": None if rng.random() < 0.03 else max(5, runtime + rng.randrange(-3, 4)),
                "season_number": number,
                "show_id": _slot("ID"),
                "still_path": image_path(f"still:{f.key}:{number}:{e}") if rng.random() < 0.93 else None,
                "vote_average": round(min(10.0, max(0.0, f.vote_average + rng.uniform(-1.2, 1.2))), 1),
                "vote_count": _slot(f"V{e}"),
                "crew": _slot(f"C{e}"),
                "guest_stars": _slot(f"G{e}"),
            }
        )
    return episodes, constants, votes


@cache
def _skeleton(k: int, number: int) -> _Skeleton | None:
    """Season `number` of TV template k (None: the template's series have no such season)."""
    f = template_bodies("tv", k).facts
    index = f.plan.index(number)
    if index is None:
        return None
    entry = season_entry(f, index)
    episodes, constants, votes = _episodes(f, k, number, entry["episode_count"])
    network_id, network_name, network_country = f.network
    body = {
        "_id": hex_id(f"season:{f.key}:{number}"),
        "air_date": _slot("SEASON_AIR"),
        "episodes": episodes,
        "name": entry["name"],
        "networks": [
            {
                "id": network_id,
                "logo_path": image_path(f"network:{network_id}"),
                "name": network_name,
                "origin_country": network_country,
            }
        ],
        "overview": entry["overview"],
        "id": entry["id"],
        "poster_path": entry["poster_path"],
        "season_number": number,
        "vote_average": entry["vote_average"],
    }
    return _Skeleton(_compile(body), constants, index, tuple(votes))


def warm() -> None:
    """Build the episode credit arrays now (tens of ms), not during a request."""
    _episode_credits()


# ---------------------------------------------------------------------------------------------
# A title's seasons


@dataclass(frozen=True, slots=True)
class _Series:
    """What a title's season bodies take from the title: its template, first air date, revision."""

    template: int
    first_air: str
    revision: int
    show_id: bytes

    @classmethod
    def of(cls, imdb_id: str, state: TitleState, tmdb_id: int | None) -> _Series:
        n = titles.parse_imdb_id(imdb_id)
        if n is None:
            raise ValueError(f"not a canonical IMDb id: {imdb_id!r}")
        first_air = state.date or titles.title_facts("tv", imdb_id).date  # as bodies._on shows it
        shown = tmdb_id or titles.tmdb_id_for_number("tv", n)
        return cls(template_index("tv", imdb_id), first_air, state.revision, b"%d" % shown)

    def append(self, number: int, out: list[bytes | memoryview]) -> bool:
        """Append season `number`'s body to `out`; False (nothing appended) if there is none."""
        skeleton = _skeleton(self.template, number)
        if skeleton is None:
            return False
        plan = template_bodies("tv", self.template).facts.plan
        first, step = schedule(plan, self.first_air)[skeleton.index]
        values = dict(skeleton.constants)
        values["ID"] = self.show_id
        values["SEASON_AIR"] = b'"%s"' % iso(first).encode()
        grow = 3 * self.revision  # votes only grow, as the details' do (titles.revised_facts)
        for e, base in enumerate(skeleton.votes, 1):
            values[f"A{e}"] = b'"%s"' % iso(first + step * (e - 1)).encode()
            values[f"V{e}"] = b"%d" % (base + grow)
        skeleton.body.fill(values, out)
        return True


def season_items(append: Iterable[str]) -> list[tuple[str, int]]:
    """The `season/N` items of an append_to_response list, with their numbers (canonical N only)."""
    out = []
    for name in append:
        digits = name[len(PREFIX) :] if name.startswith(PREFIX) else ""
        if digits.isascii() and digits.isdigit() and str(int(digits)) == digits:
            out.append((name, int(digits)))
    return out


def append_seasons(
    details: bytes,
    imdb_id: str,
    items: Iterable[tuple[str, int]],
    state: TitleState = DAY_ZERO,
    tmdb_id: int | None = None,
) -> tuple[bytes, int]:
    """The details body with a `"season/N"` key per item whose season exists (the others silently
    left out, as TMDB does), and how many were added. `tmdb_id` as in bodies.details_body."""
    series = _Series.of(imdb_id, state, tmdb_id)
    out: list[bytes | memoryview] = [memoryview(details)[:-1]]  # reopen the object
    added = 0
    for name, number in items:
        out.append(b',"%s":' % name.encode())
        if series.append(number, out):
            added += 1
        else:
            out.pop()
    if not added:
        return details, 0
    out.append(b"}")
    return b"".join(out), added


def season_body(
    imdb_id: str, number: int, state: TitleState = DAY_ZERO, tmdb_id: int | None = None
) -> bytes | None:
    """The body of /tv/{id}/season/{number} (None: the series has no such season, a 404)."""
    out: list[bytes | memoryview] = []
    return b"".join(out) if _Series.of(imdb_id, state, tmdb_id).append(number, out) else None


# ---------------------------------------------------------------------------------------------
# The truth, for tests


class SeasonsConfig(titles.QuirkConfig, days.DaysConfig, Protocol):
    """What resolving a series as the server does depends on (StandinConfig has these fields)."""


def plan_of(imdb_id: str) -> SeasonPlan:
    """The seasons of the series with this IMDb id (any id: its template's plan)."""
    return template_bodies("tv", template_index("tv", imdb_id)).facts.plan


def _series_imdb_id(series: int | str, config: SeasonsConfig | None) -> str | None:
    """The IMDb id behind /tv/{series} (a TMDB id) or of the series itself, None when it answers 404."""
    overrides = config.kind_overrides if config is not None else None
    if isinstance(series, int):
        imdb_id = titles.imdb_id_for("tv", series, overrides)
        if imdb_id is None and config is not None:
            imdb_id = titles.find_twin("tv", series, config)
    else:
        imdb_id = series if titles.kind_of(series, overrides) == "tv" else None
    if imdb_id is None or config is None or not days.moved(config):
        return imdb_id
    n = titles.parse_imdb_id(imdb_id)
    return imdb_id if n is not None and days.timeline("tv", config).alive(n, config.day) else None


def season_numbers(series: int | str, config: SeasonsConfig | None = None) -> tuple[int, ...]:
    """The season numbers the server serves for a series, ascending (0: Specials); () when
    /tv/{id} answers 404 (not a series, or gone on the config's day). `series`: its TMDB id, or the
    series' IMDb id (a movie's id gives ())."""
    imdb_id = _series_imdb_id(series, config)
    return () if imdb_id is None else plan_of(imdb_id).numbers


def episode_counts(series: int | str, config: SeasonsConfig | None = None) -> dict[int, int]:
    """Season number -> episode_count, for what `season_numbers` names."""
    imdb_id = _series_imdb_id(series, config)
    if imdb_id is None:
        return {}
    plan = plan_of(imdb_id)
    return dict(zip(plan.numbers, plan.episodes, strict=True))
