"""Several harvests in one config and one process (config.Deployment, fleet.py): one rate budget, each
harvest its own lease, state, table folder and summary; a failure of one is not the others' end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_local_lake, read_s3_lake

from harvester import config
from harvester.config import Credentials
from harvester.errors import ConfigError
from harvester.fleet import harvest_all, most_urgent
from harvester.lake.lease import lease_key
from harvester.runner import harvest
from tmdb_standin import RunningStandin, write_movies_csv
from tmdb_standin.discover import discover_ids

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        config.load_deployment(write(tmp_path, text))
    assert "\n" not in str(err.value)
    return str(err.value)


# ---------------------------------------------------------------------------------------------
# The config


def test_a_list_shares_tmdb_and_sink_and_gives_each_harvest_a_table_folder(tmp_path: Path) -> None:
    d = config.load_deployment(
        write(
            tmp_path,
            '[tmdb]\nrate_limit = 35\n[sink]\nurl = "s3://b/Raw"\nformat = "jsonl"\n'
            '[[harvest]]\nname = "movies"\n[harvest.source]\ntype = "csv"\npath = "m.csv"\n'
            '[[harvest]]\nname = "series"\n[harvest.source]\ntype = "series_csv"\npath = "s.csv"\n'
            '[harvest.sink]\npartition = "tv/{yyyy}/{mm}"\nchunk_size = 50\n',
        )
    )
    assert d.listed and [h.name for h in d.harvests] == ["movies", "series"]
    movies, series = d.harvests
    assert movies.tmdb.rate_limit == series.tmdb.rate_limit == 35
    assert movies.sink.partition == "movies/{yyyy}/{mm}/{dd}" and movies.sink.chunk_size == 100
    assert series.sink.partition == "tv/{yyyy}/{mm}" and series.sink.chunk_size == 50
    assert movies.sink.format == series.sink.format == "jsonl" and series.sink.url == "s3://b/Raw"
    assert movies.source.path == str(tmp_path / "m.csv")  # relative to the config's folder
    assert d.only(["series"]).harvests == (series,)
    # A config of one harvest is a deployment of one, keeping the keys of its kind.
    one = config.load_deployment(write(tmp_path, '[source]\npath = "m.csv"\n'))
    assert not one.listed and one.harvests[0].name == "" and config.harvest_id(one.harvests[0]) == "csv-movie"
    assert config.harvest_id(movies) == "movies"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[harvest]]\nname = "a"\n[[harvest]]\nname = "a"\n',
            'harvest name "a" is used twice; each harvest needs its own',
        ),
        (
            '[[harvest]]\nname = "sci-fi"\n[[harvest]]\nname = "sci_fi"\n',
            'harvest names "sci-fi" and "sci_fi" give Athena tables of one name; rename one',
        ),
        (
            '[[harvest]]\nname = "x"\n[[harvest]]\nname = "x-outcomes"\n',
            'harvest names "x" and "x-outcomes" give Athena tables of one name; rename one',
        ),
        ('[[harvest]]\nname = "Movies!"\n', "harvest[0].name 'Movies!' must be 1-63 lowercase letters"),
        ("[[harvest]]\n", "harvest[0].name is required"),
        (
            '[source]\npath = "x.csv"\n[[harvest]]\nname = "a"\n',
            "a config with [[harvest]] tables takes each harvest's source and name from them: "
            "remove the top-level [source]",
        ),
        (
            '[[harvest]]\nname = "a"\n[harvest.sink]\npartition = "t/{yyyy}"\n[[harvest]]\nname = "b"\n',
            "",  # distinct folders: accepted (checked below)
        ),
        (
            '[[harvest]]\nname = "a"\n[harvest.sink]\npartition = "b/{yyyy}"\n[[harvest]]\nname = "b"\n',
            'harvests "a" and "b" would share the table folder \'b/\': give each a partition of its own, '
            "or set the same partition in both to share it on purpose",
        ),
        (
            '[[harvest]]\nname = "a"\n[harvest.sink]\npartition = "t/{yyyy}"\n'
            '[[harvest]]\nname = "b"\n[harvest.source]\ntype = "series_csv"\n'
            '[harvest.sink]\npartition = "t/{yyyy}/{mm}"\n',
            'harvests "a" and "b" share the table folder \'t/\' but one holds movies and the other '
            "series: a reader of that folder would mix them",
        ),
        (
            '[[harvest]]\nname = "old"\n[harvest.sink]\npartition = "{yyyy}/{mm}/{dd}"\n'
            '[[harvest]]\nname = "new"\n',
            "the table folder of harvest \"old\" ('the sink root') holds that of \"new\" ('new/'): "
            "readers of the first would read the second's objects too; give them folders side by side",
        ),
        (
            '[[harvest]]\nname = "a"\n[harvest.source]\ntype = "xml"\n',
            "harvest[0].source.type must be one of",
        ),
        (
            '[[harvest]]\nname = "a"\n[harvest.source]\nyear_from = 2000\nyear_to = 1990\n',
            'harvest "a": source.year_from (2000) is after source.year_to (1990)',
        ),
        ('name = "A B"\n[source]\npath = "x.csv"\n', "name 'A B' must be 1-63 lowercase letters"),
    ],
)
def test_a_list_is_refused_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    if not message:
        assert len(config.load_deployment(write(tmp_path, text)).harvests) == 2
        return
    assert refused(tmp_path, text).startswith(message)


def test_two_harvests_may_share_a_table_folder_when_both_say_so(tmp_path: Path) -> None:
    d = config.load_deployment(
        write(
            tmp_path,
            '[[harvest]]\nname = "romance"\n[harvest.source]\ntype = "discover"\ngenres = ["Romance"]\n'
            '[harvest.sink]\npartition = "movies/{yyyy}/{mm}/{dd}"\n'
            '[[harvest]]\nname = "drama"\n[harvest.source]\ntype = "discover"\ngenres = ["Drama"]\n'
            '[harvest.sink]\npartition = "movies/{yyyy}/{mm}/{dd}"\n',
        )
    )
    assert {config.harvest_id(h) for h in d.harvests} == {"romance", "drama"}  # two states, two leases


def test_only_names_what_the_config_lists(tmp_path: Path) -> None:
    d = config.load_deployment(write(tmp_path, '[[harvest]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match=r"^--only 'b': no such harvest \(the config lists a\)$"):
        d.only(["b"])


def test_the_most_urgent_exit_code_wins() -> None:
    assert most_urgent([0, 75, 5, 0]) == 5
    assert most_urgent([6, 4, 75]) == 4
    assert most_urgent([0, 3, 2]) == 2 and most_urgent([3, 0]) == 3  # a person is needed either way
    assert most_urgent([75, 0]) == 75 and most_urgent([0, 0]) == 0 and most_urgent([]) == 0
    assert most_urgent([5, 1]) == 1  # an internal error is reported before anything retried


# ---------------------------------------------------------------------------------------------
# One process, one budget


def three_harvests(tmp_path: Path, standin: RunningStandin, sink: dict[str, Any]) -> Path:
    write_movies_csv(tmp_path / "a.csv", 150, seed=1)
    write_movies_csv(tmp_path / "b.csv", 150, seed=2, start_id=5_000_000)
    standin.config.discover_movies = 400
    return write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 300, "concurrency": 8, "timeout_s": 5},
        sink={**sink, "format": "jsonl"},
        harvest=[
            {"name": "alpha", "source": {"type": "csv", "path": str(tmp_path / "a.csv")}},
            {"name": "beta", "source": {"type": "csv", "path": str(tmp_path / "b.csv")}},
            {"name": "listing", "source": {"type": "discover", "date_from": "1900-01-01"}},
        ],
    )


def by_table(data: dict[str, list[dict[str, object]]]) -> dict[str, Counter[object]]:
    tables: dict[str, Counter[object]] = {}
    for key, records in data.items():
        tables.setdefault(key.split("/", 1)[0], Counter()).update(r["id"] for r in records)
    return tables


async def test_one_config_of_three_harvests_runs_them_at_once_under_one_budget(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    standin.config.rate_limit = 300
    cfg = three_harvests(tmp_path, standin, {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint})
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    assert (
        done.stdout.count("status           complete") == 3 and "== all 3 harvests: 3 complete" in done.stdout
    )
    assert standin.stats.rate_limited == 0 and standin.stats.max_window <= 300  # one budget, kept
    assert standin.stats.by_route["authentication"] == 1  # one credential check for all

    lake = await read_s3_lake(endpoint, bucket)
    tables = by_table(lake.data)
    assert set(tables) == {"alpha", "beta", "listing"}
    assert all(max(c.values()) == 1 for c in tables.values())  # exactly once in each table
    for name, csv in (("alpha", "a.csv"), ("beta", "b.csv")):
        expected = expected_movies(distinct_ids(tmp_path / csv))
        got = {str(r["imdb_id"]) for k, rs in lake.data.items() if k.startswith(f"{name}/") for r in rs}
        assert got == expected.found
    assert set(tables["listing"]) == set(discover_ids("movie", standin.config, date_gte="1900-01-01"))
    states = {k for k in lake.other if k.startswith("_harvest/state-")}
    assert states == {f"_harvest/state-{n}.json" for n in ("alpha", "beta", "listing")}

    again = await run_cli("run", str(cfg), "--only", "beta", env=cli_env(token=TOKEN))
    assert again.code == 0 and "== harvest beta: exit 0" in again.stdout and "alpha" not in again.stdout


async def test_a_failing_harvest_does_not_stop_the_others(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = three_harvests(tmp_path, standin, {"url": str(tmp_path / "lake")})
    (tmp_path / "b.csv").unlink()  # beta's input is gone: its own exit 2
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 2, done.output
    errors = [line for line in done.stderr.splitlines() if line.startswith("harvester: error:")]
    assert len(errors) == 1 and errors[0].startswith('harvester: error: harvest "beta":'), done.stderr
    assert "Traceback" not in done.output
    tables = by_table(read_local_lake(tmp_path / "lake").data)
    assert set(tables) == {"alpha", "listing"}  # the others completed beside it


async def test_a_lease_held_elsewhere_is_that_harvests_exit_6_alone(
    standin: RunningStandin, tmp_path: Path
) -> None:
    cfg = three_harvests(tmp_path, standin, {"url": str(tmp_path / "lake")})
    deployment = config.load_deployment(cfg)
    # Another process holds listing's lease: a run of that harvest alone, stopped while it holds it.
    lake = tmp_path / "lake"
    from harvester.lake.lease import Lease
    from harvester.lake.sink.local import LocalSink

    sink = LocalSink(str(lake))
    holder = Lease(sink, lease_key("listing"), 60.0)
    await holder.acquire()
    try:
        fleet = await harvest_all(deployment, CREDS, progress=False)
    finally:
        await holder.release()
        await sink.aclose()
    codes = {o.name: o.exit_code for o in fleet.outcomes}
    assert codes == {"alpha": 0, "beta": 0, "listing": 6} and fleet.exit_code == 6
    assert fleet.reference is not None  # the reference tables' requests are the shared client's too
    assert fleet.requests == fleet.reference.requests + sum(
        o.summary.requests for o in fleet.outcomes if o.summary is not None
    )


async def test_a_single_harvest_lake_is_resumed_by_a_list_that_names_it_by_its_kind(
    standin: RunningStandin, tmp_path: Path
) -> None:
    """An existing single harvest keeps its keys (state-csv-movie.json); a list takes it over, without
    --fresh, by naming it as its kind and keeping its partition."""
    write_movies_csv(tmp_path / "a.csv", 150, seed=1)
    tmdb = {"base_url": standin.base_url, "rate_limit": 300, "concurrency": 8}
    single = write_config(
        tmp_path / "single.toml", tmdb=tmdb, source={"path": str(tmp_path / "a.csv")}, sink={"url": "lake"}
    )
    from harvest_helpers import stop_after_commits

    with stop_after_commits(1) as stop:
        first = await harvest(config.load(single), CREDS, stop=stop, progress=False)
    assert first.status == "incomplete"
    listed = write_config(
        tmp_path / "listed.toml",
        tmdb=tmdb,
        sink={"url": "lake"},
        harvest=[
            {
                "name": "csv-movie",
                "source": {"path": str(tmp_path / "a.csv")},
                "sink": {"partition": "{yyyy}/{mm}/{dd}"},
            },
        ],
    )
    fleet = await harvest_all(config.load_deployment(listed), CREDS, progress=False)
    assert fleet.exit_code == 0
    (outcome,) = fleet.outcomes
    assert outcome.summary is not None and outcome.summary.run == first.summary.run  # resumed, not new
    counts = read_local_lake(tmp_path / "lake").record_ids()
    assert set(counts) == expected_movies(distinct_ids(tmp_path / "a.csv")).found
    assert max(counts.values()) == 1


async def test_a_second_query_of_one_kind_on_one_prefix_is_told_to_take_a_name_not_fresh(
    standin: RunningStandin, tmp_path: Path
) -> None:
    """Two discover queries of one media on one prefix: the second is refused with advice that loses
    nothing (a name of its own), and following it keeps both harvests."""
    standin.config.discover_movies = 400
    tmdb = {"base_url": standin.base_url, "rate_limit": 300, "concurrency": 8}

    def query(name: str, genre: str, named: bool) -> Path:
        src = {"type": "discover", "genres": [genre], "date_from": "1900-01-01"}
        extra: dict[str, Any] = {"name": name} if named else {}
        sink = {"url": str(tmp_path / "lake"), "partition": f"{name}/{{yyyy}}/{{mm}}/{{dd}}"}
        return write_config(tmp_path / f"{name}.toml", tmdb=tmdb, source=src, sink=sink, **extra)

    assert (await run_cli("run", str(query("romance", "Romance", False)), env=cli_env(token=TOKEN))).code == 0
    refused_run = await run_cli("run", str(query("drama", "Drama", False)), env=cli_env(token=TOKEN))
    assert refused_run.code == 2
    assert "give it a `name`" in refused_run.stderr and "deletes that harvest's objects" in refused_run.stderr
    done = await run_cli("run", str(query("drama", "Drama", True)), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    again = await run_cli("run", str(query("romance", "Romance", False)), env=cli_env(token=TOKEN))
    assert again.code == 0 and "already complete" in again.output  # the first harvest is still whole
    tables = by_table(read_local_lake(tmp_path / "lake").data)
    for name, genre in (("romance", "10749"), ("drama", "18")):  # TMDB's ids of the two genres
        wanted = set(discover_ids("movie", standin.config, date_gte="1900-01-01", with_genres=genre))
        assert set(tables[name]) == wanted and max(tables[name].values()) == 1


async def test_progress_shows_each_harvest_and_the_total(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from harvester import fleet
    from harvester.ops import progress

    monkeypatch.setattr(fleet, "LOG_INTERVAL_S", 0.05)
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.05)
    standin.config.latency = (0.005, 0.01)  # long enough a run for a few lines
    cfg = three_harvests(tmp_path, standin, {"url": str(tmp_path / "lake")})
    with caplog.at_level("INFO"):
        result = await harvest_all(config.load_deployment(cfg), CREDS, progress=True)
    assert result.complete
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("all harvests: ") and "of 3 running" in m for m in lines)
    for name in ("alpha", "beta", "listing"):
        assert any(m.startswith(f"{name}: ") for m in lines), name
