"""What flows through the pipeline: titles from a source, and one outcome per title."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Media = Literal["movie", "tv", "person"]  # person: a people harvest (source/people.py), /person/{id}
TitleMedia = Literal["movie", "tv"]  # what an IMDb id, a CSV row or /find can be
Refresh = Literal["changed", "entered", "left", "revisit"]
# The first word of a harvest's data object names, and what `{media}` renders in a partition.
OBJECT_NAMES: dict[Media, str] = {"movie": "movies", "tv": "series", "person": "people"}


@dataclass(frozen=True, slots=True)
class Title:
    """One title to look up.

    `pos` is its position in the source's deterministic enumeration (after de-duplication and
    filters, counting from 0); the saved state remembers which positions are done.
    """

    pos: int
    media: Media
    imdb_id: str | None = None
    tmdb_id: int | None = None
    summary: bytes | None = None  # a discover result, stored as is when details are not wanted
    refresh: Refresh | None = None  # why a refresh takes this title again (source/refresh.py)

    @property
    def label(self) -> str:
        return self.imdb_id or f"tmdb:{self.media}/{self.tmdb_id}"


@dataclass(frozen=True, slots=True)
class Found:
    title: Title
    body: bytes  # TMDB's details body exactly as returned (appended sub-resources included)
    tmdb_id: int | None = None  # the body's `id`: what a refresh keeps (lake/selection.py)
    seasons: tuple[bytes, ...] = ()  # a series' season records (tmdb/seasons.py), committed with it
    seasons_left_out: int = 0  # seasons its body lists that TMDB did not send


@dataclass(frozen=True, slots=True)
class Miss:
    """TMDB answered, and has no such title of this media: reason is 'not_found', 'tv' or 'movie', or
    'ambiguous' (/find names several titles of the media and not exactly one claims the IMDb id); in a
    refresh, 'removed' (a title the harvest holds now answers 404) or 'left' (it left the selection)."""

    title: Title
    reason: str

    @property
    def removed(self) -> bool:
        """A title the lake held and TMDB (or the selection) no longer has: recorded, not deleted."""
        return self.reason in ("removed", "left")


@dataclass(frozen=True, slots=True)
class Failed:
    """We could not get an answer: retries exhausted (`transient`: the title stays pending and a later run
    tries it again), or TMDB refused the request itself (permanent: recorded as a final failure)."""

    title: Title
    reason: str
    transient: bool = True


Outcome = Found | Miss | Failed
