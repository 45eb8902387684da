"""How a series' seasons are laid out: which season numbers exist, their episode counts, their air dates.

One plan per TV template (templates.py), drawn once from its own seeded generator (random.Random
with a str seed hashes with SHA-512: the same plan in every process), so the details' `seasons`
list, `number_of_seasons`, `number_of_episodes` and the season bodies (seasons.py) all agree.
Air dates belong to the title: they follow its first air date (`schedule`).

What the plans hold, as TMDB's catalogue does:
    long        every LONG_EVERY-th template (8 of 256, ~3%): 20..60 seasons of 12..40 episodes
                (soaps, talk shows), more than one request of 20 appends can fetch
    specials    ~30%: a season 0 "Specials" (listed in `seasons`, not counted in number_of_seasons)
    gap         ~4% of the others: one inner season number missing (1, 2, 4: TMDB lists what it has)
    late start  ~2% of the others: numbering from 2..4 (a record continuing another's seasons)
The others keep the template's own draw of 1..8 seasons (number_of_seasons as before plans existed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date as Date

from .titles import LAST_YEAR

LONG_EVERY = 32
LONG_OFFSET = 5  # templates 5, 37, 69, ... are the long ones
LONG_SEASONS = (20, 60)
SPECIALS_SHARE = 0.30
GAP_SHARE = 0.04
LATE_START_SHARE = 0.02
_LAST_ORDINAL = Date(LAST_YEAR, 12, 31).toordinal()  # the catalogue's last day: seasons air by then
_YEAR = 365
_WEEK = 7


@dataclass(frozen=True, slots=True)
class SeasonPlan:
    """The seasons of the titles sharing one template: numbers ascending (0 is "Specials")."""

    numbers: tuple[int, ...]
    episodes: tuple[int, ...]  # each season's episode_count, in the order of `numbers`

    @property
    def regular(self) -> int:
        """number_of_seasons: the seasons but Specials."""
        return sum(1 for n in self.numbers if n > 0)

    @property
    def regular_episodes(self) -> int:
        """number_of_episodes: the episodes of the regular seasons."""
        return sum(e for n, e in zip(self.numbers, self.episodes, strict=True) if n > 0)

    def index(self, number: int) -> int | None:
        """Where season `number` sits in `numbers` (None: the series has no such season)."""
        try:
            return self.numbers.index(number)
        except ValueError:
            return None


NO_SEASONS = SeasonPlan((), ())


def is_long_template(k: int) -> bool:
    return k % LONG_EVERY == LONG_OFFSET


def draw_plan(k: int, regular: int, episodes: int) -> SeasonPlan:
    """TV template k's plan; `regular` (1..8) and `episodes` are the template's own draws."""
    rng = random.Random(f"seasons:tv:{k}")
    if is_long_template(k):
        lo, hi = LONG_SEASONS
        regular, per_season = lo + rng.randrange(hi - lo + 1), 12 + rng.randrange(29)
        numbers = list(range(1, regular + 1))
    else:
        per_season = min(26, max(6, episodes // regular))
        first = 2 + rng.randrange(3) if rng.random() < LATE_START_SHARE else 1
        numbers = list(range(first, first + regular + 1))
        if regular >= 3 and rng.random() < GAP_SHARE:
            del numbers[1 + rng.randrange(regular - 1)]  # an inner one: first and last stay
        else:
            numbers.pop()
    counts = [max(1, per_season + rng.randrange(-2, 3)) for _ in numbers]
    if rng.random() < SPECIALS_SHARE:
        numbers.insert(0, 0)
        counts.insert(0, 1 + rng.randrange(12))
    return SeasonPlan(tuple(numbers), tuple(counts))


def schedule(plan: SeasonPlan, first_air: str) -> list[tuple[int, int]]:
    """Per season of the plan, in its order: (the date ordinal of its first episode, days between
    episodes). Regular seasons a year apart from `first_air` on, closer when a year each would pass
    the catalogue's last day; Specials spread over the series' run from its first day."""
    start = Date.fromisoformat(first_air).toordinal()
    regular = plan.regular
    room = max(0, _LAST_ORDINAL - start)
    gap = _YEAR if room >= _YEAR * regular else max(1, room // max(1, regular))
    out, i = [], 0
    for number, count in zip(plan.numbers, plan.episodes, strict=True):
        if number == 0:
            out.append((start, max(1, gap * regular // (count + 1))))
            continue
        out.append((start + i * gap, max(1, min(_WEEK, gap // count))))
        i += 1
    return out


def iso(ordinal: int) -> str:
    return Date.fromordinal(ordinal).isoformat()


def last_air_ordinal(plan: SeasonPlan, first_air: str) -> int:
    """The day the last episode of the last regular season airs (last_air_date, last_episode_to_air)."""
    first, step = schedule(plan, first_air)[-1]
    return first + step * (plan.episodes[-1] - 1)


def season_id(number: int, season: int) -> int:
    """A season's TMDB id, from the template's `number` (shared by the titles of the template)."""
    return 100_000 + (number * 16 + season) % 5_000_000


def episode_id(number: int, season: int, episode: int) -> int:
    """An episode's TMDB id: distinct within a series (season < 64, episode < 256), below 2^31."""
    return 1_000_000 + (number * 16_384 + season * 256 + episode) % 900_000_000
