"""Fixtures for tests that talk to TMDB: a running stand-in with known credentials.

Used from tests/conftest.py with `from fixtures_tmdb import *`. The `standin` fixture starts the
server on 127.0.0.1 (a free port) per test; tests may change `standin.config` (faults, limits)
at any time, since the server reads it on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tmdb_standin import RunningStandin, StandinConfig, running_standin
from tmdb_standin.server import CONTENT_TYPE

TOKEN = "test-read-token-3f9a1c7e5b2d4a68"
API_KEY = "test-api-key-8c41d2e9"
AUTH_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
GENEROUS_RATE_LIMIT = 10_000.0  # far above what a test sends; tests of the limiter set their own


def standin_config(**changes: Any) -> StandinConfig:
    """A config accepting TOKEN and API_KEY, with a generous rate limit; keyword args override."""
    fields: dict[str, Any] = {
        "valid_tokens": frozenset({TOKEN}),
        "valid_api_keys": frozenset({API_KEY}),
        "rate_limit": GENEROUS_RATE_LIMIT,
    }
    fields.update(changes)
    return StandinConfig(**fields)


class ManualClock:
    """A clock for `running_standin(clock=...)`: time moves only when a test advances it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def standin() -> AsyncIterator[RunningStandin]:
    async with running_standin(standin_config()) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session sending the stand-in's valid token."""
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body) of a GET; every answer must be TMDB's JSON content type."""
    async with session.get(url, params=params) as r:
        assert r.headers["Content-Type"] == CONTENT_TYPE
        return r.status, orjson.loads(await r.read())


__all__ = [
    "API_KEY",
    "AUTH_HEADERS",
    "GENEROUS_RATE_LIMIT",
    "TOKEN",
    "ManualClock",
    "client",
    "get",
    "standin",
    "standin_config",
]
