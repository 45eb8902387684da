"""The command line as a user runs it: every documented exit code, one-line errors, no leaked secret."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_cli, start_cli, wait_for_line, write_config
from fixtures_tmdb import API_KEY, TOKEN
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_local_lake, read_s3_lake

from harvester.lake.sink.local import LOCK_NAME
from tmdb_standin import RunningStandin, write_movies_csv


def config(tmp_path: Path, standin: RunningStandin, **over: dict[str, object]) -> Path:
    csv = tmp_path / "movies.csv"
    if not csv.exists():
        write_movies_csv(csv, 120, seed=21)
    sections: dict[str, dict[str, object]] = {
        "tmdb": {"base_url": standin.base_url, "rate_limit": 500, "concurrency": 8, "timeout_s": 5},
        "source": {"path": str(csv)},
        "sink": {"url": str(tmp_path / "lake")},
    }
    for name, values in over.items():
        sections[name] = {**sections.get(name, {}), **values}
    return write_config(tmp_path / "config.toml", **sections)


def assert_one_line_error(stderr: str, *needles: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("harvester: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for n in needles:
        assert n in errors[0], errors[0]


async def test_run_exit_0_and_the_api_key_never_shows(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin)
    # api_key mode puts the secret in every URL; -v logs the most; neither may leak it
    done = await run_cli("-v", "run", str(cfg), env=cli_env(api_key=API_KEY))
    assert done.code == 0, done.output
    assert "status           complete" in done.stdout
    assert API_KEY not in done.output
    expected = expected_movies(distinct_ids(tmp_path / "movies.csv"))
    lake = read_local_lake(tmp_path / "lake")
    assert set(lake.record_ids()) == expected.found
    for p in (tmp_path / "lake").rglob("*"):
        if p.is_file():
            assert API_KEY.encode() not in p.read_bytes()
            assert TOKEN.encode() not in p.read_bytes()
    # the same config again: already complete, nothing fetched
    before = standin.stats.by_route["movie"]
    again = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert again.code == 0 and standin.stats.by_route["movie"] == before


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[tmdb\n", "not valid TOML"),
        ("[tmdb]\nrate_limit = 0\n", "tmdb.rate_limit"),
        ("[tmdb]\nspeed = 3\n", "unknown key tmdb.speed"),
        ("[sink]\nchunk_size = 0\n", "sink.chunk_size"),
    ],
)
async def test_bad_config_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert_one_line_error(done.stderr, needle)


async def test_missing_source_exit_2(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin, source={"path": str(tmp_path / "nope.csv")})
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert_one_line_error(done.stderr, "nope.csv")


async def test_missing_config_exit_2(tmp_path: Path) -> None:
    done = await run_cli("run", str(tmp_path / "none.toml"), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert_one_line_error(done.stderr, "none.toml")


async def test_bad_or_missing_credential_exit_3(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin)
    wrong = "wrong-token-0123456789"
    done = await run_cli("run", str(cfg), env=cli_env(token=wrong))
    assert done.code == 3
    assert_one_line_error(done.stderr, "credential")
    assert wrong not in done.output
    none = await run_cli("run", str(cfg), env=cli_env())
    assert none.code == 3
    assert_one_line_error(none.stderr, "TMDB_ACCESS_TOKEN")
    # Nothing that lasts: the sink's probe is deleted and the lease released; only the local sink's
    # lock file (never a key) stays behind.
    left = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert [p.name for p in left] == [LOCK_NAME]


async def test_unusable_sink_exit_4(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, _ = s3_bucket
    cfg = config(tmp_path, standin, sink={"url": "s3://no-such-bucket/x", "endpoint_url": endpoint})
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 4
    assert_one_line_error(done.stderr, "no-such-bucket")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = config(tmp_path, standin, sink={"url": str(blocker / "lake")})
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 4
    assert_one_line_error(done.stderr)


async def test_tmdb_down_exit_5(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin, tmdb={"max_retries": 0})
    # Let the preflight through, then fail every request.
    proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
    assert proc.stderr is not None
    seen: list[str] = []
    await wait_for_line(proc.stderr, "new harvest", seen)
    standin.config.error_rate = 1.0
    _, err = await proc.communicate()
    assert proc.returncode == 5, "".join(seen) + err.decode()
    assert_one_line_error("".join(seen) + err.decode(), "TMDB looks unavailable")


async def test_sigterm_exit_75_then_resume_completes(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    standin.config.latency = (0.01, 0.03)
    cfg = config(
        tmp_path,
        standin,
        tmdb={"rate_limit": 60},
        sink={"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, "chunk_size": 20},
    )
    proc = await start_cli("-v", "run", str(cfg), env=cli_env(token=TOKEN))
    assert proc.stderr is not None
    seen: list[str] = []
    await wait_for_line(proc.stderr, "committed 000001", seen)
    proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    _, err = await proc.communicate()
    stop_time = loop.time() - t0
    assert proc.returncode == 75, "".join(seen) + err.decode()
    assert stop_time < 10
    assert "run the same command to resume" in err.decode()
    partial = await read_s3_lake(endpoint, bucket)
    assert partial.record_ids() and max(partial.record_ids().values()) == 1

    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    lake = await read_s3_lake(endpoint, bucket)
    expected = expected_movies(distinct_ids(tmp_path / "movies.csv"))
    counts = lake.record_ids()
    assert set(counts) == expected.found and max(counts.values()) == 1
    assert lake.miss_reasons() == expected.misses


async def test_max_runtime_exit_75_then_resume(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin, tmdb={"rate_limit": 40}, sink={"chunk_size": 10})
    done = await run_cli("run", str(cfg), "--max-runtime", "1s", env=cli_env(token=TOKEN))
    assert done.code == 75, done.output
    first = read_local_lake(tmp_path / "lake").record_ids()
    assert sum(first.values()) > 0
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 0, done.output
    expected = expected_movies(distinct_ids(tmp_path / "movies.csv"))
    counts = read_local_lake(tmp_path / "lake").record_ids()
    assert set(counts) == expected.found and max(counts.values()) == 1


async def test_changed_config_is_refused_unless_fresh(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin, tmdb={"rate_limit": 40}, sink={"chunk_size": 10})
    done = await run_cli("run", str(cfg), "--max-runtime", "1s", env=cli_env(token=TOKEN))
    assert done.code == 75
    cfg = config(tmp_path, standin, tmdb={"language": "pt-BR"}, sink={"chunk_size": 10})
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert_one_line_error(done.stderr, "another harvest", "tmdb", "--fresh")
    done = await run_cli("run", str(cfg), "--fresh", env=cli_env(token=TOKEN))
    assert done.code == 0, done.output


async def test_corrupt_state_is_a_clear_error(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = config(tmp_path, standin)
    state = tmp_path / "lake" / "_harvest" / "state-csv-movie.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "run_id": ')
    done = await run_cli("run", str(cfg), env=cli_env(token=TOKEN))
    assert done.code == 2
    assert_one_line_error(done.stderr, "corrupt")


async def test_demo_command(tmp_path: Path) -> None:
    done = await run_cli(
        "demo", "--movies", "60", "--rate-limit", "200", "--out", str(tmp_path / "d"), env=cli_env()
    )
    assert done.code == 0, done.output
    assert "status           complete" in done.stdout
    assert "0 answered 429" in done.stdout
    assert list((tmp_path / "d" / "lake").rglob("*.json"))
