"""A people harvest (`type = "people"`, source/people.py): the people in the credits of another harvest
of the sink, each looked up once, into a people table; read once per run, frozen for its resumes; in a
list, after its from-harvest."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_s3 import s3_client
from fixtures_tmdb import TOKEN, standin_config
from harvest_helpers import PREFIX, Lake, read_local_lake, read_s3_lake

from harvester import config
from harvester.config import Credentials
from harvester.errors import ConfigError
from harvester.fleet import harvest_all
from harvester.lake.columns import columns
from harvester.lake.selection import Selection
from harvester.lake.state import PeopleReading
from harvester.lake.table import deployment_ddl
from harvester.runner import harvest
from harvester.source import people as people_source
from harvester.source.people_credits import CreditFilter, Credits
from tmdb_standin import RunningStandin, running_standin, write_movies_csv

TMDB = {"rate_limit": 300, "concurrency": 8, "timeout_s": 5}
CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": TOKEN})


# ---------------------------------------------------------------------------------------------
# What is read of a record, and the filters (pure)


def _entry(pid: int, popularity: float = 5.0, **more: Any) -> dict[str, Any]:
    return {"id": pid, "name": f"p{pid}", "popularity": popularity, **more}


RECORD = {
    "id": 10,
    "title": "x",
    "credits": {
        "cast": [_entry(1), _entry(2, popularity=0.1), {"id": None, "popularity": 9}],
        "crew": [
            _entry(3, department="Directing", job="Director"),
            _entry(4, department="Writing", job="Screenplay"),
            _entry(1, department="Directing", job="Director"),  # an actor who also directs
            _entry(5, popularity=None, department="Sound", job="Original Music Composer"),
        ],
    },
}
SERIES = {
    "id": 20,
    "aggregate_credits": {
        "cast": [{"id": 6, "popularity": 2.0, "roles": [{"character": "c"}]}],
        "crew": [{"id": 7, "popularity": 2.0, "department": "Directing", "jobs": [{"job": "Director"}]}],
    },
    "credits": {"cast": [], "crew": [_entry(8, department="Writing", job="Writer")]},
}


def people_of(record: dict[str, Any], key: str = "a/movies-x.jsonl", **filters: Any) -> list[int]:
    src = config.SourceSettings(type="people", from_="m", **filters)
    credits = Credits(CreditFilter.of(src))
    return sorted({p for r in credits.records(key, orjson.dumps(record)) for p in credits.people(r)})


def test_credits_are_filtered_by_department_job_and_popularity() -> None:
    assert people_of(RECORD) == [1, 2, 3, 4, 5]  # every credit with an id
    assert people_of(RECORD, jobs=("Director",)) == [1, 3]
    assert people_of(RECORD, departments=("Acting",)) == [1, 2]  # the cast
    assert people_of(RECORD, departments=("Writing",), jobs=("Director",)) == [1, 3, 4]  # either
    assert people_of(RECORD, min_popularity=1.0) == [1, 3, 4]  # a null popularity is 0
    # A series: credits and aggregate_credits both read; aggregate crew by any of its jobs.
    assert people_of(SERIES) == [6, 7, 8]
    assert people_of(SERIES, jobs=("Director",)) == [7]


def test_a_record_of_an_unexpected_shape_is_skipped_and_counted_not_the_object() -> None:
    src = config.SourceSettings(type="people", from_="m")
    credits = Credits(CreditFilter.of(src))
    broken = {"id": 11, "credits": {"cast": "nobody", "crew": []}}
    raw = orjson.dumps([RECORD, broken])  # a JSON array object (format = "json")
    records = list(credits.records("2026/01/01/movies-x-000000.json", raw))
    assert [r.id for r in records] == [10] and credits.counts.unreadable == 1


# ---------------------------------------------------------------------------------------------
# The config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


LIST = '[[harvest]]\nname = "movies"\n[harvest.source]\npath = "m.csv"\n'


def test_a_people_harvest_of_a_list_reads_another_and_appends_a_persons_sections(tmp_path: Path) -> None:
    d = config.load_deployment(
        write(
            tmp_path,
            '[sink]\nformat = "jsonl"\n'
            + LIST
            + '[[harvest]]\nname = "directors"\n[harvest.source]\ntype = "people"\nfrom = "movies"\n'
            'jobs = ["Director"]\nmin_popularity = 1.5\n[harvest.tmdb]\nappend = ["combined_credits"]\n',
        )
    )
    movies, people = d.harvests
    assert people.source.from_ == "movies" and people.source.jobs == ("Director",)
    assert (
        config.media_of(people.source) == "person" and people.sink.partition == "directors/{yyyy}/{mm}/{dd}"
    )
    assert movies.tmdb.append == ("credits",) and people.tmdb.append == ("combined_credits",)
    # Without appends of its own, a person takes none (TMDB's default `credits` is no person section).
    one = config.load(write(tmp_path, '[source]\ntype = "people"\nfrom = "csv-movie"\n'))
    assert one.tmdb.append == () and config.harvest_id(one) == "people-person"
    assert [name for name, _ in columns(people)][-1] == "combined_credits"
    ddl, _ = deployment_ddl(d)
    assert (
        "CREATE EXTERNAL TABLE IF NOT EXISTS tmdb_directors" in ddl and "`known_for_department` string" in ddl
    )
    assert "'/people-(" in ddl  # the view takes the people objects by their name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\ntype = "people"\n', 'source.from is required with type = "people"'),
        ('[source]\ntype = "people"\nfrom = "Movies!"\n', "source.from 'Movies!' is not a harvest name"),
        ('[source]\ntype = "people"\nfrom = 3\n', "source.from must be a string, not 3"),
        (
            '[source]\ntype = "people"\nfrom = "m"\ndepartments = ["Directors"]\n',
            "source.departments: 'Directors' is not a TMDB department (Acting, Art,",
        ),
        (
            '[source]\ntype = "people"\nfrom = "m"\ngenres = ["Drama"]\n',
            "source.genres does not apply to a people harvest",
        ),
        ('[source]\njobs = ["Director"]\n', 'source.jobs applies to type = "people" only'),
        ('[source]\ntype = "discover"\nmedia = "person"\n', 'source.media "person" is for type "people"'),
        (
            '[tmdb]\nappend = ["credits"]\n[source]\ntype = "people"\nfrom = "m"\n',
            "tmdb.append item 'credits' is not appended to person details by TMDB (known: changes, "
            "combined_credits,",
        ),
        (
            '[source]\ntype = "ids"\nmedia = "person"\nids = ["tt1"]\n',
            "source.ids: 'tt1' is not a TMDB person id",
        ),
        (
            LIST + '[[harvest]]\nname = "p"\n[harvest.source]\ntype = "people"\nfrom = "series"\n',
            "harvest \"p\": source.from 'series' names no other harvest of this list (movies, p)",
        ),
        (
            LIST + '[[harvest]]\nname = "p"\n[harvest.source]\ntype = "people"\nfrom = "p"\n',
            "harvest \"p\": source.from 'p' names no other harvest of this list (movies, p)",
        ),
        (
            LIST + '[[harvest]]\nname = "p"\n[harvest.source]\ntype = "people"\nfrom = "movies"\n'
            '[[harvest]]\nname = "q"\n[harvest.source]\ntype = "people"\nfrom = "p"\n',
            "harvest \"q\": source.from 'p' is a harvest of people; name a harvest of movies or series",
        ),
        (
            '[tmdb]\nappend = ["external_ids"]\n'
            + LIST
            + '[[harvest]]\nname = "p"\n[harvest.source]\ntype = "people"\nfrom = "movies"\n'
            "[harvest.tmdb]\nappend = []\n",
            "harvest \"p\": source.from 'movies': its records carry no credits",
        ),
        (
            '[tmdb]\nappend = ["credits"]\n'
            + LIST
            + '[[harvest]]\nname = "p"\n[harvest.source]\ntype = "people"\nfrom = "movies"\n',
            "harvest \"p\": tmdb.append item 'credits' is not appended to person details",
        ),
    ],
)
def test_config_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load_deployment(write(tmp_path, text))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(message), str(err.value)


# ---------------------------------------------------------------------------------------------
# Against the stand-in and S3


def directors_of(lake: Lake, table: str) -> set[int]:
    """The distinct director ids of the movie records of a table folder (computed from the records)."""
    out: set[int] = set()
    for key, records in lake.data.items():
        if key.startswith(table) and "/movies-" in key:
            for r in records:
                crew = r["credits"]["crew"]  # type: ignore[index]
                out.update(c["id"] for c in crew if c["job"] == "Director")
    return out


def people_in(lake: Lake, table: str) -> Counter[int]:
    return Counter(
        int(r["id"])  # type: ignore[call-overload]
        for key, records in lake.data.items()
        if key.startswith(table) and "/people-" in key
        for r in records
    )


def sink_of(s3: tuple[str, str]) -> dict[str, Any]:
    endpoint, bucket = s3
    return {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, "format": "jsonl"}


def both(tmp_path: Path, standin: RunningStandin, sink: dict[str, Any], **people: Any) -> Path:
    write_movies_csv(tmp_path / "m.csv", 120, seed=7)
    return write_config(
        tmp_path / "both.toml",
        tmdb={"base_url": standin.base_url, **TMDB},
        sink=sink,
        harvest=[
            {"name": "movies", "source": {"type": "csv", "path": str(tmp_path / "m.csv")}},
            {
                "name": "directors",
                "source": {"type": "people", "from": "movies", "jobs": ["Director"], **people},
                "tmdb": {"append": ["combined_credits", "external_ids"]},
            },
        ],
    )


async def test_a_people_harvest_of_the_directors_of_a_movie_harvest_holds_each_of_them_once(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    write_movies_csv(tmp_path / "m.csv", 120, seed=7)
    sink = {**sink_of(s3_bucket), "partition": "{media}/{yyyy}/{mm}/{dd}"}
    tmdb = {"base_url": standin.base_url, **TMDB}
    movies = write_config(
        tmp_path / "movies.toml", tmdb=tmdb, sink=sink, source={"path": str(tmp_path / "m.csv")}
    )
    people = write_config(
        tmp_path / "people.toml",
        tmdb={**tmdb, "append": ["combined_credits"]},
        sink=sink,
        source={"type": "people", "from": "csv-movie", "jobs": ["Director"]},
    )
    early = await run_cli("run", str(people), env=cli_env(token=TOKEN))
    assert early.code == 5, early.output  # the movies have not run: try later
    assert 'harvest "csv-movie" has never run' in early.stderr and "Traceback" not in early.output
    assert (await run_cli("run", str(movies), env=cli_env(token=TOKEN))).code == 0
    checked = await run_cli("check", str(people), env=cli_env(token=TOKEN))
    standin.stats.reset()
    done = await run_cli("run", str(people), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output

    lake = await read_s3_lake(*s3_bucket)
    directors = directors_of(lake, "movies/")
    # `check` counted them from the sink: one request each.
    assert checked.code == 0 and f"titles      {len(directors)}\n" in checked.stdout, checked.output
    assert f"requests    about {len(directors)} (1 per person" in checked.stdout
    held = people_in(lake, "people/")
    assert directors and set(held) == directors and max(held.values()) == 1
    assert all("combined_credits" in r for k, rs in lake.data.items() if "/people-" in k for r in rs)
    # One request per person; the credits come from the sink, not from TMDB.
    assert standin.stats.by_route["person"] == len(directors)
    assert standin.stats.by_route["movie"] == standin.stats.by_route["find"] == 0


async def test_one_process_takes_the_people_once_their_harvest_has_completed(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    cfg = both(tmp_path, standin, sink_of(s3_bucket))
    done = await run_cli("run", str(cfg), "--no-progress", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    assert "== all 2 harvests: 2 complete" in done.stdout
    lake = await read_s3_lake(*s3_bucket)
    directors = directors_of(lake, "movies/")
    held = people_in(lake, "directors/")
    assert directors and set(held) == directors and max(held.values()) == 1
    state = orjson.loads(lake.other["_harvest/state-directors.json"])
    movies = orjson.loads(lake.other["_harvest/state-movies.json"])
    assert state["source"]["people"]["source_run"] == movies["tag"]  # the run that had just completed


async def test_a_sigkill_mid_harvest_then_resume_changes_nothing(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    sink = {**sink_of(s3_bucket), "chunk_size": 25, "lease_s": 1}
    cfg = both(tmp_path, standin, sink, jobs=[])  # everyone in the credits: enough work to cut short
    assert (await run_cli("run", str(cfg), "--only", "movies", env=cli_env(token=TOKEN))).code == 0
    standin.config.latency = (0.005, 0.02)
    rng = random.Random(19)
    kills = 0
    frozen = False
    for _ in range(60):
        proc = await start_cli("-v", "run", str(cfg), "--only", "directors", env=cli_env(token=TOKEN))
        assert proc.stderr is not None
        seen: list[str] = []
        await wait_for_line(proc.stderr, " harvest ", seen)
        if "already complete" in seen[-1] or "is writing this harvest" in seen[-1]:
            await proc.communicate()
            if "already complete" in seen[-1]:
                break
            continue
        try:
            async with asyncio.timeout(rng.uniform(0.5, 1.5)):
                await proc.wait()
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await proc.communicate()
        if kills and not frozen:
            # The from-harvest goes away: a resumed run reads its frozen ids, never the movies again.
            lake = await read_s3_lake(endpoint, bucket)
            if orjson.loads(lake.other["_harvest/state-directors.json"])["source"].get("people"):
                async with s3_client(endpoint) as s3:
                    await s3.delete_object(Bucket=bucket, Key=f"{PREFIX}/_harvest/state-movies.json")
                frozen = True
    assert kills >= 2 and frozen
    done = await run_cli("run", str(cfg), "--only", "directors", env=cli_env(token=TOKEN))
    for _ in range(50):
        if done.code != 6:
            break
        done = await run_cli("run", str(cfg), "--only", "directors", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    lake = await read_s3_lake(endpoint, bucket)
    everyone = {
        c["id"]  # type: ignore[index]
        for key, records in lake.data.items()
        if key.startswith("movies/")
        for r in records
        for part in ("cast", "crew")
        for c in r["credits"][part]  # type: ignore[index]
    }
    held = people_in(lake, "directors/")
    assert set(held) == everyone and max(held.values()) == 1


async def test_the_people_of_series_are_read_from_credits_and_aggregate_credits(
    standin: RunningStandin, tmp_path: Path
) -> None:
    standin.config.discover_tv = 60
    d = config.deployment_from_mapping(
        {
            "tmdb": {"base_url": standin.base_url, "append": ["credits", "aggregate_credits"], **TMDB},
            "sink": {"url": str(tmp_path / "lake"), "format": "jsonl"},
            "harvest": [
                {"name": "series", "source": {"type": "discover", "media": "tv", "date_from": "1900-01-01"}},
                {
                    "name": "crew",
                    "source": {"type": "people", "from": "series", "departments": ["Directing", "Writing"]},
                    "tmdb": {"append": []},
                },
            ],
        }
    )
    fleet = await harvest_all(d, CREDS, progress=False)
    assert fleet.exit_code == 0, [o.error for o in fleet.outcomes]
    lake = read_local_lake(tmp_path / "lake")
    expected = {
        c["id"]
        for key, records in lake.data.items()
        if key.startswith("series/")
        for r in records
        for section in ("credits", "aggregate_credits")
        for c in r[section]["crew"]  # type: ignore[index]
        if c["department"] in ("Directing", "Writing")
    }
    held = people_in(lake, "crew/")
    assert expected and set(held) == expected and max(held.values()) == 1


# ---------------------------------------------------------------------------------------------
# The read of the from-harvest, checkpointed: it continues where a stop left it


def test_a_read_continues_only_over_the_run_and_the_objects_it_began_on() -> None:
    keys = ["a/movies-t2-w1-000000.jsonl", "a/movies-t2-w1-000001.jsonl", "b/movies-t1-w0-000000.jsonl"]
    reading = PeopleReading(
        writer="w2", slot=1, source_run="t2", objects=2, last_key=keys[1], titles=20, records=20,
        credits=300, filtered_out=250, without_credits=0, unreadable=0, beyond=0,
    )  # fmt: skip
    assert people_source.start_over(reading, "t2", keys) is None
    assert (
        people_source.start_over(reading, "t3", keys)
        == "run t3 of it completed since the read began on run t2"
    )
    moved = people_source.start_over(reading, "t2", [keys[0], keys[2]])
    assert moved is not None and moved.startswith("its objects are not those the read began on")
    assert people_source.start_over(reading, "t2", keys[:1]) is not None  # fewer objects than read
    people, unread = Selection(), Selection()
    for n in (3, 700_001):
        people.add(n)
    unread.add(42)
    back = people_source.unpack_reading(people_source.pack_reading(people, unread), "x")
    assert [list(b) for b in back] == [[3, 700_001], [42]]


class StopOnProgress(logging.Handler):
    """Sets the stop event when the read logs its progress: the read is cut a few objects later."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = asyncio.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if " data objects of " in line and " read (" in line:
            self.stop.set()


def state_of(lake_dir: Path, harvest_name: str) -> dict[str, Any]:
    return orjson.loads((lake_dir / "_harvest" / f"state-{harvest_name}.json").read_bytes())  # type: ignore[no-any-return]


def people_bitmap(lake: Lake, state: dict[str, Any]) -> list[int]:
    spool = state["source"]["people"]
    key = f"_harvest/{state['tag']}/people-{spool['writer']}.bin"
    return list(Selection.from_bytes(lake.other[key], key))


async def cut_until_complete(settings: config.Settings, watch: StopOnProgress, lake_dir: Path) -> list[int]:
    """Run `settings` again and again, each run stopped by the read's next progress line, until it is
    complete; the number of objects read at each stop."""
    reached: list[int] = []
    for _ in range(60):
        watch.stop = asyncio.Event()
        result = await harvest(settings, CREDS, stop=watch.stop, progress=False)
        if result.status == "complete":
            return reached
        reading = state_of(lake_dir, settings.name)["source"]["reading"]
        if reading is not None:
            reached.append(reading["objects"])
    raise AssertionError(f"not complete after 60 runs ({reached})")


async def test_a_read_stopped_many_times_gives_the_people_of_one_uninterrupted_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC).date()
    cfg = standin_config(
        discover_movies=400, base_date=today - timedelta(days=1), changed_share=0.05, new_share=0.2,
        gone_share=0.2, hour=12.0,
    )  # fmt: skip
    lake_dir = tmp_path / "lake"
    watch = StopOnProgress()
    logger = logging.getLogger(people_source.__name__)
    logger.addHandler(watch)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with running_standin(cfg) as standin:
            tmdb = {"base_url": standin.base_url, "rate_limit": 5000.0, "concurrency": 16}
            person = {"type": "people", "from": "movies", "jobs": ["Director"]}
            d = config.deployment_from_mapping(
                {
                    "tmdb": tmdb,
                    "sink": {"url": str(lake_dir), "format": "jsonl", "chunk_size": 10},
                    "refresh": {"revisit_days": 0},
                    "harvest": [
                        {"name": "movies", "source": {"type": "discover", "date_from": "2020-01-01"}},
                        {"name": "once", "source": person, "tmdb": {"append": []}},
                        {"name": "cut", "source": person, "tmdb": {"append": []}},
                    ],
                }
            )
            movies, once, cut = d.harvests
            assert (await harvest(movies, CREDS, progress=False)).status == "complete"
            standin.config.day = 1  # a refresh: the read goes over two runs, the newest record first
            assert (await harvest(movies, CREDS, mode="refresh", progress=False)).status == "complete"
            from_state = state_of(lake_dir, "movies")
            assert len(from_state["lineage"]) == 1
            assert (await harvest(once, CREDS, progress=False)).status == "complete"  # in one read
            monkeypatch.setattr(people_source, "CHECKPOINT_RECORDS", 7)
            reached = await cut_until_complete(cut, watch, lake_dir)
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)

    # Stopped several times, each run continuing where the one before stopped (never from the start).
    assert len(reached) >= 4 and reached == sorted(set(reached)), reached
    assert any(line.startswith('people: continuing the read of "movies"') for line in watch.lines)
    lake = read_local_lake(lake_dir)
    objects = [k for k in lake.data if k.startswith("movies/")]
    assert reached[-1] < len(objects)
    # Over both runs of the from-harvest: it was stopped in the refresh's objects and in the base's.
    newest = sum(from_state["tag"] in k for k in objects)
    assert min(reached) < newest < max(reached), (reached, newest)
    cut_state, once_state = state_of(lake_dir, "cut"), state_of(lake_dir, "once")
    assert cut_state["source"]["reading"] is None
    assert not [k for k in lake.other if "/people-read-" in k]  # the checkpoints are gone
    assert people_bitmap(lake, cut_state) == people_bitmap(lake, once_state)
    spool, one = cut_state["source"]["people"], once_state["source"]["people"]
    assert {**spool, "writer": ""} == {**one, "writer": ""} and spool["source_run"] == from_state["tag"]
    assert set(people_in(lake, "cut/")) == set(people_in(lake, "once/"))
    assert max(people_in(lake, "cut/").values()) == 1


async def test_a_read_under_way_starts_over_when_its_from_harvest_completed_another_run(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake_dir = tmp_path / "lake"
    csv = tmp_path / "m.csv"
    write_movies_csv(csv, 120, seed=7)
    d = config.deployment_from_mapping(
        {
            "tmdb": {"base_url": standin.base_url, **TMDB},
            "sink": {"url": str(lake_dir), "format": "jsonl", "chunk_size": 10},
            "harvest": [
                {"name": "movies", "source": {"type": "csv", "path": str(csv)}},
                {"name": "cut", "source": {"type": "people", "from": "movies", "jobs": ["Director"]}},
            ],
        }
    )
    movies, cut = d.harvests
    assert (await harvest(movies, CREDS, progress=False)).status == "complete"
    first = state_of(lake_dir, "movies")["tag"]
    before = directors_of(read_local_lake(lake_dir), "movies/")
    watch = StopOnProgress()
    logger = logging.getLogger(people_source.__name__)
    logger.addHandler(watch)
    level = logger.level
    logger.setLevel(logging.INFO)
    monkeypatch.setattr(people_source, "CHECKPOINT_RECORDS", 7)
    try:
        stopped = await harvest(cut, CREDS, stop=watch.stop, progress=False)
        assert stopped.status == "incomplete"
        assert state_of(lake_dir, "cut")["source"]["reading"]["source_run"] == first
        # Other movies: the from-harvest starts over and completes another version meanwhile.
        write_movies_csv(csv, 60, seed=8)
        assert (await harvest(movies, CREDS, fresh=True, progress=False)).status == "complete"
        second = state_of(lake_dir, "movies")["tag"]
        watch.stop = asyncio.Event()
        monkeypatch.setattr(people_source, "CHECKPOINT_RECORDS", 10_000)  # no stop this time
        assert (await harvest(cut, CREDS, stop=watch.stop, progress=False)).status == "complete"
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)
    why = f"run {second} of it completed since the read began on run {first}"
    assert f'people: the read of "movies" starts over: {why}' in watch.lines
    lake = read_local_lake(lake_dir)
    after = directors_of(lake, "movies/")  # the new version's records only (the fresh run removed the old)
    assert before - after  # a read that mixed both versions would hold some of these
    state = state_of(lake_dir, "cut")
    assert state["source"]["people"]["source_run"] == second
    assert set(people_bitmap(lake, state)) == after == set(people_in(lake, "cut/"))


async def test_a_refresh_stopped_during_its_read_records_nobody_as_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop cuts the refresh's read of the from-harvest short: its plan is not made of what it had
    read so far (every held person would be "left"); the next invocation continues the read."""
    today = datetime.now(UTC).date()
    cfg = standin_config(
        discover_movies=300, base_date=today - timedelta(days=1), changed_share=0.05, hour=12.0
    )
    lake_dir = tmp_path / "lake"
    watch = StopOnProgress()
    logger = logging.getLogger(people_source.__name__)
    logger.addHandler(watch)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with running_standin(cfg) as standin:
            d = config.deployment_from_mapping(
                {
                    "tmdb": {"base_url": standin.base_url, "rate_limit": 5000.0, "concurrency": 16},
                    "sink": {"url": str(lake_dir), "format": "jsonl", "chunk_size": 10},
                    "refresh": {"revisit_days": 0},
                    "harvest": [
                        {"name": "movies", "source": {"type": "discover", "date_from": "2020-01-01"}},
                        {"name": "cut", "source": {"type": "people", "from": "movies", "jobs": ["Director"]}},
                    ],
                }
            )
            movies, cut = d.harvests
            assert (await harvest(movies, CREDS, progress=False)).status == "complete"
            assert (await harvest(cut, CREDS, progress=False)).status == "complete"
            standin.config.day = 1
            assert (await harvest(movies, CREDS, mode="refresh", progress=False)).status == "complete"
            monkeypatch.setattr(people_source, "CHECKPOINT_RECORDS", 7)
            stops = 0
            for _ in range(60):
                watch.stop = asyncio.Event()
                result = await harvest(cut, CREDS, mode="refresh", stop=watch.stop, progress=False)
                state = state_of(lake_dir, "cut")
                if result.status == "complete":
                    break
                stops += 1
                assert state["source"]["plan"] is None  # no plan from a read cut short
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)
    assert stops >= 2 and result.status == "complete"
    lake = read_local_lake(lake_dir)
    held_before = set(people_in(lake, "cut/"))  # every run of the people harvest
    directors = directors_of(lake, "movies/")  # the from-harvest's latest records
    removed = {o["tmdb_id"] for o in lake.outcomes if o["outcome"] == "removed"}
    assert removed == held_before - directors  # exactly those who left, never everybody
    assert len(removed) < len(held_before) / 2
