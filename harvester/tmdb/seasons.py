"""A series' seasons with their episodes, in the fewest requests: `season/N` chained in
`append_to_response` (`[source] seasons = true`).

TMDB appends at most 20 items to a request and silently leaves out a `season/N` that does not exist.
So the details request itself carries, beside the harvest's own appends, the first seasons that fit
(0, TMDB's "Specials", then 1, 2, ...): a series with no more seasons than that costs that one request.
The body's `seasons` list then says which exist; the rest come in follow-up requests of
`FOLLOW_UP_SEASONS` each. Requests per series: 1 + ceil(max(0, S - first) / FOLLOW_UP_SEASONS), S the
seasons it lists, `first` = 20 - len(own appends).

A listed season an answer does not hold is either one TMDB leaves out or an answer that dropped its
appends altogether (TMDB has answered so: tmdb-quirks.md). Only an answer that holds a section asked
beside the seasons (a witness: the harvest's own appends, or `external_ids` in a follow-up) tells
them apart: then the season is counted as left out, never invented; otherwise the answer is retried.

Each season becomes one record of the seasons table, `{"series_id", "season_number", "season"}` with
the season body as TMDB sent it; the series record keeps every other section, without the seasons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from ..config import MAX_APPENDS
from ..items import Failed, Found, Outcome, Title
from .client import Decoder, RequestFailed, TmdbClient, UnusableBody

SEASON = "season/"
WITNESS = "external_ids"  # TMDB appends it to every series: present means the appends were honoured
FOLLOW_UP_SEASONS = MAX_APPENDS - 1  # a follow-up's slots: the witness, then seasons


class _Listed(msgspec.Struct):
    season_number: object = None


_decode_top = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_listed = msgspec.json.Decoder(list[_Listed] | None).decode


def first_seasons(own_appends: Sequence[str]) -> tuple[str, ...]:
    """The seasons the details request asks for beside the harvest's own appends."""
    return tuple(f"{SEASON}{n}" for n in range(MAX_APPENDS - len(own_appends)))


def follow_ups(missing: Sequence[int]) -> list[list[int]]:
    """The season numbers still to fetch, in requests of FOLLOW_UP_SEASONS."""
    return [list(missing[i : i + FOLLOW_UP_SEASONS]) for i in range(0, len(missing), FOLLOW_UP_SEASONS)]


def requests_for(listed: int, own_appends: int) -> int:
    """What a series listing `listed` seasons costs, its seasons numbered 0.. without gaps."""
    rest = max(0, listed - (MAX_APPENDS - own_appends))
    return 1 + -(-rest // FOLLOW_UP_SEASONS)


@dataclass(frozen=True, slots=True)
class Split:
    """A details body taken apart: the series record without its seasons, and the seasons it held."""

    series: bytes
    sections: dict[int, bytes]  # season number -> the season body as sent
    listed: tuple[int, ...]  # the season numbers the body's `seasons` list names, in its order


def split(body: bytes) -> Split:
    """Take the `season/N` sections out of a details body. The other top-level members keep their
    bytes as sent (TMDB's bodies are compact: only the separators are rewritten, which JSON ignores)."""
    top = _decode_top(body)
    kept: list[bytes] = []
    sections: dict[int, bytes] = {}
    for key, raw in top.items():
        number = _season_number(key)
        if number is None:
            kept.append(msgspec.json.encode(key) + b":" + bytes(raw))
        elif raw != _NULL:
            sections[number] = bytes(raw)
    listed = top.get("seasons")
    numbers = _numbers(_decode_listed(listed)) if listed is not None else ()
    return Split(b"{" + b",".join(kept) + b"}", sections, numbers)


_NULL = msgspec.Raw(b"null")


def _season_number(key: str) -> int | None:
    if not key.startswith(SEASON):
        return None
    digits = key[len(SEASON) :]
    return int(digits) if digits.isascii() and digits.isdigit() else None


def _numbers(listed: list[_Listed] | None) -> tuple[int, ...]:
    found = (s.season_number for s in listed or ())
    ints = (n for n in found if isinstance(n, int) and not isinstance(n, bool) and n >= 0)
    return tuple(dict.fromkeys(ints))


@lru_cache(maxsize=64)
def follow_up_decoder(numbers: tuple[int, ...]) -> Decoder:
    """The decoder of a follow-up answer: its season sections, and UnusableBody("append_missing")
    when the witness is absent (the answer dropped its appends: retried)."""
    fields = [("witness", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET)] + [
        (f"s{n}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for n in numbers
    ]
    rename = {"witness": WITNESS} | {f"s{n}": f"{SEASON}{n}" for n in numbers}
    decode = msgspec.json.Decoder(msgspec.defstruct("_FollowUp", fields, rename=rename)).decode

    def decode_seasons(body: bytes) -> dict[int, bytes]:
        data: Any = decode(body)
        if data.witness is msgspec.UNSET or data.witness == _NULL:
            raise UnusableBody("append_missing")
        found: dict[int, bytes] = {}
        for n in numbers:
            raw: Any = getattr(data, f"s{n}")
            if raw is not msgspec.UNSET and raw != _NULL:
                found[n] = bytes(raw)
        return found

    return decode_seasons


def record(series_id: int, number: int, season: bytes) -> bytes:
    return b'{"series_id":%d,"season_number":%d,"season":%s}' % (series_id, number, season)


@dataclass(frozen=True, slots=True)
class Seasons:
    """What a series' seasons came to: its record without them, a record per season, those left out."""

    series: bytes
    records: tuple[bytes, ...]
    left_out: int
    requests: int  # follow-up requests made


class SeasonFetcher:
    """Completes a details body (asked with `first_seasons`) with the seasons it lists."""

    def __init__(self, client: TmdbClient, language: str, own_appends: Sequence[str]) -> None:
        self._client = client
        self._language = language
        self._first = len(first_seasons(own_appends))
        # The details decoder refuses a body without the harvest's own appends: if it has any, a
        # details body that reaches us honoured its appends, and a season it asked for and lacks is
        # one TMDB leaves out.
        self._witnessed = bool(own_appends)

    async def __call__(self, series_id: int, body: bytes) -> Seasons:
        """Raises RequestFailed when a follow-up gets no usable answer (the series stays pending)."""
        parts = split(body)
        sections = parts.sections
        missing = [n for n in parts.listed if n not in sections]
        left_out = 0
        if self._witnessed:
            left_out = sum(1 for n in missing if n < self._first)
            missing = [n for n in missing if n >= self._first]
        requests = 0
        for batch in follow_ups(missing):
            params = {"language": self._language, "append_to_response": ",".join([WITNESS, *_names(batch)])}
            reply = await self._client.get(f"/tv/{series_id}", params, follow_up_decoder(tuple(batch)))
            requests += 1
            if reply.status != 200:
                left_out += len(batch)  # the series went between two requests: the next refresh sees it
                continue
            found: dict[int, bytes] = reply.data
            sections.update(found)
            left_out += len(batch) - len(found)
        records = tuple(record(series_id, n, sections[n]) for n in sorted(sections))
        return Seasons(parts.series, records, left_out, requests)


def _names(numbers: Sequence[int]) -> list[str]:
    return [f"{SEASON}{n}" for n in numbers]


class WithSeasons:
    """A lookup whose series come with their seasons: the wrapped lookup asks details with
    `first_seasons`, this takes them apart and fetches the rest."""

    def __init__(self, lookup: Callable[[Title], Awaitable[Outcome]], fetch: SeasonFetcher) -> None:
        self._lookup = lookup
        self._fetch = fetch

    async def __call__(self, title: Title) -> Outcome:
        outcome = await self._lookup(title)
        if not isinstance(outcome, Found) or outcome.tmdb_id is None:
            return outcome
        try:
            got = await self._fetch(outcome.tmdb_id, outcome.body)
        except RequestFailed as exc:
            return Failed(title, exc.reason, exc.transient)
        return Found(title, got.series, outcome.tmdb_id, got.records, got.left_out)
