"""Start-up at the limit: everything that needs no TMDB comes before TMDB's first request, so the
paced lookups follow it at once (a server that counts per second loses for good what a pause after its
first request leaves unused). Observed as the order of the steps, never as a duration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures_tmdb import TOKEN

from harvester.config import Credentials, Deployment, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.fleet import harvest_all
from harvester.lake.state import StateStore
from harvester.runner import harvest
from harvester.source.csv_source import CsvSource
from harvester.tmdb.client import TmdbClient
from harvester.tmdb.lookup import Lookup
from tmdb_standin import RunningStandin, write_movies_csv

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The steps of a harvest in the order they happen (the first lookup only)."""
    seen: list[str] = []

    def spy(cls: type, name: str, step: str, once: bool = False) -> None:
        real: Callable[..., Awaitable[Any]] = getattr(cls, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            if not (once and step in seen):
                seen.append(step)
            return await real(*args, **kwargs)

        monkeypatch.setattr(cls, name, recorded)

    spy(CsvSource, "identity", "identity")
    spy(CsvSource, "count", "count")
    spy(StateStore, "load_raw", "state load")
    spy(StateStore, "save", "state save")
    spy(TmdbClient, "check_credential", "credential")
    spy(Lookup, "__call__", "lookup", once=True)
    return seen


def settings(
    standin: RunningStandin, tmp_path: Path, name: str = "", seed: int = 3, chunk_size: int = 100
) -> Settings:
    csv = tmp_path / f"movies-{seed}.csv"
    write_movies_csv(csv, 60, seed=seed, start_id=1_000_000 * seed)
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=1000.0, concurrency=4),
        source=SourceSettings(type="csv", path=str(csv)),
        sink=SinkSettings(
            url=str(tmp_path / "lake"),
            partition=f"{name or 'm'}/{{yyyy}}/{{mm}}/{{dd}}",
            chunk_size=chunk_size,
        ),
        name=name,
    )


async def test_only_the_new_runs_first_save_comes_between_tmdbs_first_request_and_the_lookups(
    standin: RunningStandin, tmp_path: Path, steps: list[str]
) -> None:
    result = await harvest(settings(standin, tmp_path), CREDS, progress=False)
    assert result.status == "complete"
    first = steps.index("credential")
    assert {"identity", "state load", "count"} <= set(steps[:first])  # all before TMDB's first request
    assert steps[first : steps.index("lookup") + 1] == ["credential", "state save", "lookup"]


async def test_a_resumed_run_starts_its_lookups_right_after_tmdbs_first_request(
    standin: RunningStandin, tmp_path: Path, steps: list[str]
) -> None:
    s = settings(standin, tmp_path, chunk_size=10)
    from harvest_helpers import stop_after_commits

    with stop_after_commits(1) as stop:
        assert (await harvest(s, CREDS, stop=stop, progress=False)).status == "incomplete"
    steps.clear()
    assert (await harvest(s, CREDS, progress=False)).status == "complete"
    first = steps.index("credential")
    assert "state save" in steps[:first]  # the resume's fencing save, before TMDB is asked
    assert steps[first : steps.index("lookup") + 1] == ["credential", "lookup"]


async def test_a_list_checks_the_credential_once_after_every_harvest_is_ready_or_first(
    standin: RunningStandin, tmp_path: Path, steps: list[str]
) -> None:
    harvests = tuple(settings(standin, tmp_path, name=n, seed=i + 1) for i, n in enumerate(("a", "b", "c")))
    result = await harvest_all(Deployment(harvests, listed=True), CREDS, progress=False)
    assert result.complete
    assert steps.count("credential") == 1 and standin.stats.by_route["authentication"] == 1
    first = steps.index("credential")
    # Every harvest's count pass came before TMDB's first request; after it only the new runs' saves.
    assert steps.count("count") == 3 and "count" not in steps[first:]
    assert set(steps[first + 1 : steps.index("lookup")]) == {"state save"}
