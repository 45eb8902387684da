"""HTTP to TMDB: authentication, pacing, retries, and error translation at this boundary.

Every request waits for the shared `RateLimiter` right before it is sent. Answers are classified as
TMDB (and its CDN, ../shared/reference/tmdb-quirks.md) sends them:
  200, 404                  -> returned to the caller (a 404 is an answer: "no such title")
  200 with "success": false -> TMDB's error body on a 200 (codes 21 and 40): retried as below,
                               reason `error_body status_code N`
  401                       -> CredentialError: stop the run, retrying cannot help
  429, whatever its body    -> the limiter learns the server's real limit from it; every worker
  and headers                  pauses for Retry-After (seconds or an HTTP date), or backs off when
                               there is none and the limiter cannot explain the 429 (exponential,
                               jittered); retried, and never taken for an answer
  5xx (TMDB's JSON or the
  edge's HTML), reset,
  timeout, truncated or
  invalid JSON (say, HTML)  -> retried with back-off, up to `max_retries`
  anything else (400, 422)  -> RequestFailed: a bug in our request, recorded for that title
Exceptions from aiohttp carry the URL, which may hold an api_key: we keep only their class name.
Answers may come gzip-compressed, asked for or not: aiohttp decompresses them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import msgspec
import orjson
from yarl import URL

from ..config import Credentials, TmdbSettings
from ..errors import CredentialError, HarvesterError, SourceError, TmdbUnavailable
from .backoff import backoff_delay, retry_after_seconds
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
MAX_THROTTLED = 30  # 429s tolerated for one request before it is recorded as failed
# TMDB's error bodies are ~100 bytes and a title's 10-60 KB: only bodies below this are looked into.
ERROR_BODY_MAX = 1024
TMDB_API_HOST = "api.themoviedb.org"
CDN_CONNECTIONS = 20  # per IP, as TMDB staff have stated it for the CDN in front of the API


class RequestFailed(HarvesterError):
    """One request could not get a usable answer; the title is recorded as failed with `reason`.

    `transient`: the retries ran out (TMDB down, throttled, resets): asking again later may work.
    Otherwise TMDB refused the request itself (400, 422): asking again cannot help.
    """

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient

    def translated(self, what: str) -> HarvesterError:
        """For a request the whole run depends on (a listing, not one title): TMDB away is exit 5 (try
        later); TMDB refusing the query itself is the query's, hence the config's, fault (exit 2)."""
        if self.transient:
            return TmdbUnavailable(f"{what} failed: {self.reason}; TMDB looks unavailable, run again later")
        return SourceError(f"{what} was refused: {self.reason}")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int  # 200 or 404
    body: bytes
    data: Any  # what the request's decoder made of the body (the parsed JSON by default)


class UnusableBody(Exception):
    """Raised by a decoder for a 200 body that is valid JSON but not whole (say, an appended section
    missing): retried like a broken body, and `reason` names it when the retries run out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A decoder validates the whole body and returns what the caller needs of it; it raises one of
# these on a body that is not valid JSON (or not the expected shape), or UnusableBody.
Decoder = Callable[[bytes], Any]
INVALID_BODY = (orjson.JSONDecodeError, msgspec.DecodeError)


@dataclass
class ClientCounters:
    requests: int = 0
    throttled: int = 0
    retries: int = 0


def connection_warning(base_url: str, concurrency: int) -> str | None:
    """What to warn about at start when `concurrency` passes the connections TMDB's CDN allows an IP.
    Only for TMDB's own API: a stand-in or a proxy has limits of its own."""
    if concurrency <= CDN_CONNECTIONS or urlsplit(base_url).hostname != TMDB_API_HOST:
        return None
    return (
        f"tmdb.concurrency is {concurrency}, but TMDB's CDN is reported to allow {CDN_CONNECTIONS} "
        f"connections per IP: connections beyond that may be refused or reset; "
        f"set concurrency to {CDN_CONNECTIONS} or less"
    )


def refuse_error_body(body: bytes) -> None:
    """Raise UnusableBody for a 200 that carries TMDB's error body (`"success": false`; codes 21 and
    40 come on a 200). Checked before every decoder: a body of 1 KiB or more costs one length test."""
    if len(body) >= ERROR_BODY_MAX or b'"success"' not in body:
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the decoder will call it invalid
    if isinstance(data, dict) and data.get("success") is False:
        code = data.get("status_code")
        raise UnusableBody(f"error_body status_code {code if isinstance(code, int) else None}")


def _error_fields(body: bytes) -> tuple[int | None, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    code = data.get("status_code")
    message = data.get("status_message")
    errors = data.get("errors")  # list endpoints past page 500: HTTP 422 {"errors": [...]}, no code
    if message is None and isinstance(errors, list):
        message = "; ".join(map(str, errors))
    return (code if isinstance(code, int) else None), str(message or "")[:200]


def _refusal(status: int, body: bytes) -> str:
    code, message = _error_fields(body)
    return f"http_{status}" + (f" status_code {code}" if code is not None else "") + f": {message}"


class TmdbClient:
    def __init__(
        self,
        settings: TmdbSettings,
        credentials: Credentials,
        limiter: RateLimiter,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not credentials.present:
            raise CredentialError(
                "no TMDB credential: set TMDB_ACCESS_TOKEN (preferred), TMDB_API_KEY or TMDB_SECRET_ARN"
            )
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._limiter = limiter
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._headers = {"Accept": "application/json"}
        self._auth_params: dict[str, str] = {}
        if credentials.access_token:
            self._headers["Authorization"] = f"Bearer {credentials.access_token}"
        elif credentials.api_key:
            self._auth_params["api_key"] = str(credentials.api_key)
        self._session: aiohttp.ClientSession | None = None
        self.counters = ClientCounters()
        self._tallies: tuple[ClientCounters, ...] = (self.counters,)  # this view's, then its parents'

    async def __aenter__(self) -> TmdbClient:
        warning = connection_warning(self._base, self._settings.concurrency)
        if warning is not None:
            log.warning("%s", warning)
        # One pooled connection per worker: keep-alive saves a TCP (and TLS) handshake per request.
        connector = aiohttp.TCPConnector(
            limit=self._settings.concurrency, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s),
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def counted_apart(self) -> TmdbClient:
        """A view of this client (same session, limiter and pool) that also counts its own requests:
        one per harvest of a process, so each summary tells its own and the client all of them."""
        view = copy.copy(self)
        view.counters = ClientCounters()
        view._tallies = (view.counters, *self._tallies)
        return view

    async def check_credential(self) -> None:
        """Preflight: raise CredentialError unless TMDB accepts our credential, TmdbUnavailable when
        TMDB does not answer (nothing has been written yet: a scheduler may simply retry)."""
        try:
            reply = await self.get("/authentication")
        except RequestFailed as exc:
            if exc.transient:
                raise TmdbUnavailable(f"TMDB is unavailable ({exc.reason}); nothing was written") from None
            raise
        if reply.status != 200 or not (isinstance(reply.data, dict) and reply.data.get("success")):
            raise CredentialError(f"TMDB did not accept the credential (HTTP {reply.status})")

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, decode: Decoder = orjson.loads
    ) -> Reply:
        """GET with retries; the 200 body is validated by `decode` (an invalid one is retried)."""
        assert self._session is not None, "use TmdbClient as an async context manager"
        # Encoded here, once: yarl's per-request parsing and quoting is a measurable share of the
        # client's CPU at a few thousand requests a second.
        query = urlencode({**(params or {}), **self._auth_params})
        url = URL(f"{self._base}{quote(path)}{'?' if query else ''}{query}", encoded=True)
        failures = 0
        throttles = 0
        while True:
            grant = await self._limiter.acquire()
            for tally in self._tallies:
                tally.requests += 1
            try:
                async with self._session.get(url) as resp:
                    status = resp.status
                    body = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._limiter.lost(grant)
                reason = "timeout" if isinstance(exc, TimeoutError) else exc.__class__.__name__
            except BaseException:
                self._limiter.lost(grant)  # cancelled: a probe must not hold the limiter's ramp
                raise
            else:
                if status != 429:
                    self._limiter.accepted(grant)
                if status == 200:
                    try:
                        refuse_error_body(body)
                        data = decode(body)
                    except INVALID_BODY:
                        reason = "invalid_json"
                    except UnusableBody as exc:
                        reason = exc.reason
                    else:
                        return Reply(status, body, data)
                elif status == 404:
                    return Reply(status, body, None)
                elif status == 401:
                    code, message = _error_fields(body)
                    raise CredentialError(f"TMDB rejected the credential (status_code {code}: {message})")
                elif status == 429:
                    throttles += 1
                    for tally in self._tallies:
                        tally.throttled += 1
                    explained = self._limiter.throttled(grant)
                    if throttles > MAX_THROTTLED:
                        raise RequestFailed(f"throttled {throttles} times", transient=True)
                    # TMDB's CDN sends no Retry-After; a 0 (or a date already past: clocks differ)
                    # is no reason to hammer either when the limiter cannot explain the 429.
                    delay = retry_after_seconds(resp.headers.get("Retry-After"), time.time())
                    if not delay and not explained:
                        delay = backoff_delay(min(throttles - 1, 6), self._rng)
                    if delay:
                        self._limiter.pause(delay)
                    continue  # the limiter makes us wait; a 429 does not use up max_retries
                elif status in RETRYABLE_STATUS or status >= 500:
                    reason = f"http_{status}"
                else:
                    raise RequestFailed(_refusal(status, body), transient=False)
            failures += 1
            if failures > self._settings.max_retries:
                raise RequestFailed(f"{reason} after {failures} attempts", transient=True)
            for tally in self._tallies:
                tally.retries += 1
            log.debug("retrying %s after %s (attempt %d)", path, reason, failures)
            await self._sleep(backoff_delay(failures - 1, self._rng))
