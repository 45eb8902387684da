"""From a title to TMDB's details body, with the fewest requests.

Movies by IMDb id, `lookup = "direct"`: `GET /movie/tt...` (undocumented but long relied upon; one
request) accepted only when the body's `imdb_id` is the one asked for; on 404 or a mismatch, the
documented `/find`, then details by TMDB id. `lookup = "find"` skips the direct attempt.
TV by IMDb id always goes through `/find` (TMDB does not accept `/tv/tt...`), then `/tv/{id}`.
Titles that carry a TMDB id go straight to details; titles that carry their discover summary (with
`details = false`) cost no request at all.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..config import TmdbSettings
from ..items import Failed, Found, Miss, Outcome, Title
from .client import Reply, RequestFailed, TmdbClient

_RESULTS_KEY = {"movie": "movie_results", "tv": "tv_results"}


class _DetailsHead(msgspec.Struct):
    """The one field of a details body the lookup reads. Decoding into it validates the whole body
    (10-60 KB) while building no Python objects for the rest: about 5x cheaper than parsing it all,
    and the body itself goes to the chunk verbatim."""

    imdb_id: object = None
    id: object = None


_decode_details = msgspec.json.Decoder(_DetailsHead).decode
_OTHER = {"movie": "tv", "tv": "movie"}


class Lookup:
    def __init__(self, client: TmdbClient, settings: TmdbSettings) -> None:
        self._client = client
        self._direct = settings.lookup == "direct"
        self._details_params = {"language": settings.language}
        if settings.append:
            self._details_params["append_to_response"] = ",".join(settings.append)
        self._find_params = {"external_source": "imdb_id", "language": settings.language}

    async def __call__(self, title: Title) -> Outcome:
        try:
            return await self._lookup(title)
        except RequestFailed as exc:
            return Failed(title, exc.reason, exc.transient)

    async def _lookup(self, title: Title) -> Outcome:
        if title.refresh == "left":
            return Miss(title, "left")  # no longer in the selection: recorded, no request
        if title.summary is not None:
            return Found(title, title.summary, title.tmdb_id)  # discover, details = false: no request
        if title.tmdb_id is not None:
            reply = await self._details(title.media, str(title.tmdb_id))
            if reply.status == 200:
                return Found(title, reply.body, title.tmdb_id)
            return Miss(title, "removed" if title.refresh == "changed" else "not_found")
        imdb_id = title.imdb_id
        assert imdb_id is not None, "a title has an IMDb id or a TMDB id"
        if title.media == "movie" and self._direct:
            reply = await self._details("movie", imdb_id)
            if reply.status == 200 and reply.data.imdb_id == imdb_id:
                return Found(title, reply.body, _int(reply.data.id))
        found = await self._client.get(f"/find/{imdb_id}", self._find_params)
        if found.status != 200:
            return Miss(title, "not_found")
        tmdb_id = _first_id(found.data, _RESULTS_KEY[title.media])
        if tmdb_id is None:
            other = _OTHER[title.media]
            return Miss(
                title, other if _first_id(found.data, _RESULTS_KEY[other]) is not None else "not_found"
            )
        reply = await self._details(title.media, str(tmdb_id))
        if reply.status != 200:
            return Miss(title, "not_found")  # /find knows it but details do not: TMDB removed it
        return Found(title, reply.body, tmdb_id)

    async def _details(self, media: str, ident: str) -> Reply:
        return await self._client.get(f"/{media}/{ident}", self._details_params, _decode_details)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _first_id(data: Any, key: str) -> int | None:
    results = _field(data, key)
    if isinstance(results, list) and results and isinstance(results[0], dict):
        ident = results[0].get("id")
        if isinstance(ident, int):
            return ident
    return None
