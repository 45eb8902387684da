"""From a title to TMDB's details body, with the fewest requests.

Movies by IMDb id, `lookup = "direct"`: `GET /movie/tt...` (undocumented but long relied upon; one
request) accepted only when the body's `imdb_id` is the one asked for; on 404 or a mismatch (a body
whose `imdb_id` is null, "" or another id), the documented `/find`, then details by TMDB id.
`lookup = "find"` skips the direct attempt. TV by IMDb id always goes through `/find` (TMDB does not
accept `/tv/tt...`), then `/tv/{id}`. `/find` may name the id under both media (the harvest's own is
taken) or name several titles of the harvest's media: those are told apart by the IMDb id their own
records claim, and a title that stays ambiguous is a miss, never a guess.
Titles that carry a TMDB id go straight to details; titles that carry their discover summary (with
`details = false`) cost no request at all.

Every details body must hold each section the harvest appends: TMDB has answered without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..config import TmdbSettings
from ..items import Failed, Found, Miss, Outcome, Title
from .client import Decoder, Reply, RequestFailed, TmdbClient, UnusableBody

_RESULTS_KEY = {"movie": "movie_results", "tv": "tv_results"}
_OTHER = {"movie": "tv", "tv": "movie"}
MAX_CANDIDATES = 5  # /find naming more titles of one media than this is not worth more requests


class _DetailsHead(msgspec.Struct):
    """The one field of a details body the lookup reads. Decoding into it validates the whole body
    (10-60 KB) while building no Python objects for the rest: about 5x cheaper than parsing it all,
    and the body itself goes to the chunk verbatim. `details_decoder` adds the appended sections."""

    imdb_id: object = None
    id: object = None


class _ImdbId(msgspec.Struct):
    imdb_id: object = None  # of /tv/{id}/external_ids: TV details carry it only there


_decode_imdb_id = msgspec.json.Decoder(_ImdbId).decode
_NULL = msgspec.Raw(b"null")


def details_decoder(append: Sequence[str]) -> Decoder:
    """The decoder of a details body that must carry each section in `append`: `_DetailsHead` plus one
    `Raw` field per section (skipped, not parsed: the check costs nothing measurable), and
    UnusableBody("append_missing") for a body where one is absent or null."""
    # TMDB silently leaves out an appended season/N that does not exist (documented): not required.
    sections = [name for name in append if not name.startswith("season/")]
    if not sections:
        return msgspec.json.Decoder(_DetailsHead).decode
    fields = [(f"s{i}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for i in range(len(sections))]
    rename = {f"s{i}": name for i, name in enumerate(sections)}  # keys such as "watch/providers"
    head = msgspec.defstruct("_DetailsSections", fields, bases=(_DetailsHead,), rename=rename)
    decode = msgspec.json.Decoder(head).decode
    names = tuple(rename)

    def decode_whole(body: bytes) -> Any:
        data = decode(body)
        for name in names:
            section = getattr(data, name)
            if section is msgspec.UNSET or section == _NULL:
                raise UnusableBody("append_missing")
        return data

    return decode_whole


class Lookup:
    def __init__(self, client: TmdbClient, settings: TmdbSettings, extra_append: Sequence[str] = ()) -> None:
        """`extra_append`: details requests also ask for these, not required in the answer (seasons.py)."""
        self._client = client
        self._direct = settings.lookup == "direct"
        self._details_params = {"language": settings.language}
        append = (*settings.append, *extra_append)
        if append:
            self._details_params["append_to_response"] = ",".join(append)
        self._decode_details = details_decoder(settings.append)
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
            return Miss(title, "removed" if title.refresh in ("changed", "revisit") else "not_found")
        imdb_id = title.imdb_id
        assert imdb_id is not None, "a title has an IMDb id or a TMDB id"
        if title.media == "movie" and self._direct:
            reply = await self._details("movie", imdb_id)
            if reply.status == 200 and reply.data.imdb_id == imdb_id:
                return Found(title, reply.body, _int(reply.data.id))
        found = await self._client.get(f"/find/{imdb_id}", self._find_params)
        if found.status != 200:
            return Miss(title, "not_found")
        candidates = _ids(found.data, _RESULTS_KEY[title.media])  # the other media's are not ours
        if not candidates:
            other = _OTHER[title.media]
            return Miss(title, other if _ids(found.data, _RESULTS_KEY[other]) else "not_found")
        if len(candidates) > 1:
            return await self._resolve(title, imdb_id, candidates[:MAX_CANDIDATES])
        reply = await self._details(title.media, str(candidates[0]))
        if reply.status != 200:
            return Miss(title, "not_found")  # /find knows it but details do not: TMDB removed it
        return Found(title, reply.body, candidates[0])

    async def _resolve(self, title: Title, imdb_id: str, candidates: list[int]) -> Outcome:
        """Several candidates of the harvest's media: the one whose own record claims `imdb_id`, or a
        miss `ambiguous` when none or several do (never a guess)."""
        claims: list[tuple[int, Reply]] = []
        answered = False
        for tmdb_id in candidates:
            reply = await self._claim(title.media, tmdb_id)
            answered = answered or reply.status == 200
            if reply.status == 200 and reply.data.imdb_id == imdb_id:
                claims.append((tmdb_id, reply))
                if len(claims) > 1:
                    return Miss(title, "ambiguous")  # two records claim it: asking on cannot help
        if not claims:
            return Miss(title, "ambiguous" if answered else "not_found")
        tmdb_id, reply = claims[0]
        if title.media == "tv":
            reply = await self._details("tv", str(tmdb_id))
            if reply.status != 200:
                return Miss(title, "not_found")
        return Found(title, reply.body, tmdb_id)

    async def _claim(self, media: str, tmdb_id: int) -> Reply:
        """What tells the IMDb id a record claims: a movie's details (the body to keep, too), a
        series' external ids (TV details do not carry it)."""
        if media == "movie":
            return await self._details("movie", str(tmdb_id))
        return await self._client.get(f"/tv/{tmdb_id}/external_ids", None, _decode_imdb_id)

    async def _details(self, media: str, ident: str) -> Reply:
        return await self._client.get(f"/{media}/{ident}", self._details_params, self._decode_details)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _ids(data: Any, key: str) -> list[int]:
    """The TMDB ids of one `/find` results list, in order, each once."""
    results = _field(data, key)
    if not isinstance(results, list):
        return []
    ids = (_int(r.get("id")) for r in results if isinstance(r, dict))
    return list(dict.fromkeys(i for i in ids if i is not None))
