"""Logs as operators read them: text or JSON lines with Powertools' keys, the harvest's fields on every
line, the Lambda context's keys, levels from the environment, and no credential anywhere (tracebacks too)."""

from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import API_KEY, TOKEN

from harvester import lambda_handler
from harvester.command import run_command
from harvester.ops import logs
from harvester.ops.progress import Progress, Snapshot, progress_line
from harvester.ops.stats import Stats
from harvester.tmdb.client import ClientCounters
from harvester.tmdb.ratelimit import RateLimiter
from tmdb_standin import RunningStandin, write_movies_csv

POWERTOOLS_KEYS = {"level", "location", "message", "timestamp", "service"}
LAMBDA_KEYS = {"function_request_id", "cold_start", "function_name", "function_memory_size", "function_arn"}
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
ENV = ("HARVESTER_LOG_FORMAT", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL", "POWERTOOLS_SERVICE_NAME",
       "AWS_LAMBDA_FUNCTION_NAME", "_X_AMZN_TRACE_ID")  # fmt: skip

Setup = Callable[..., None]


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """`setup(...)` is `logs.setup_logging(...)`, undone after the test (pytest's handlers come back)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    undo: list[Callable[[], None]] = []

    def install(
        log_format: str | None = None, *, verbose: bool = False, secrets: tuple[str, ...] = ()
    ) -> None:
        undo.append(logs.setup_logging(verbose, secrets, log_format=log_format))

    yield install
    for restore in reversed(undo):
        restore()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def test_json_lines_carry_powertools_keys(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup("json")
    logging.getLogger("harvester.test").info("hello %s", "there", extra={"records": 100})
    line = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
    (doc,) = json_lines(capsys.readouterr().err)
    assert doc.keys() >= POWERTOOLS_KEYS
    assert doc["message"] == "hello there" and doc["level"] == "INFO" and doc["service"] == "harvester"
    assert doc["location"] == f"test_json_lines_carry_powertools_keys:{line}"  # Powertools' func:line
    assert ISO_MS.fullmatch(doc["timestamp"]), doc["timestamp"]
    assert datetime.fromisoformat(doc["timestamp"]).utcoffset() is not None
    assert doc["records"] == 100  # extra= becomes a field
    assert isinstance(doc["invocation"], str) and doc["invocation"]  # every line of a run names it


def test_exceptions_are_one_line_with_their_name(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tmdb-harvest")
    setup("json")
    found: dict[str, int] = {}
    try:
        found["missing"]
    except KeyError:
        logging.getLogger("harvester.test").exception("lookup failed")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1  # the traceback's newlines are escaped inside the line
    (doc,) = json_lines(err)
    assert doc["level"] == "ERROR" and doc["service"] == "tmdb-harvest"
    assert doc["exception_name"] == "KeyError"
    assert doc["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in doc["exception"]


async def test_bound_fields_follow_the_task_and_stay_in_it(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup("json")
    log = logging.getLogger("harvester.test")

    async def note(run: str) -> None:
        log.info("in a task of %s", run)

    async def invocation(run: str) -> None:
        logs.bind(harvest="s3://b/p/_harvest/state-csv-movie.json", run=run)
        async with asyncio.TaskGroup() as tg:  # tasks it starts inherit the fields
            tg.create_task(asyncio.to_thread(log.info, "in a thread of %s", run))
            tg.create_task(note(run))

    await asyncio.gather(invocation("run-a"), invocation("run-b"))  # two at once do not mix
    log.info("outside")
    lines = json_lines(capsys.readouterr().err)
    assert len(lines) == 5
    for doc in lines[:4]:
        assert doc["message"].endswith(doc["run"]) and doc["harvest"].endswith("state-csv-movie.json")
    assert "run" not in lines[4] and "harvest" not in lines[4]
    assert len({doc["invocation"] for doc in lines}) == 1


SECRET = "tok-9d2f1c7ab4e6-secret"
QUOTED = 'pa"ss\\word-77c1'  # JSON escapes it: its escaped spelling must not show either


def _fail_with_the_secret() -> None:
    # The literal shows in the traceback's source line too.
    raise RuntimeError('TMDB rejected tok-9d2f1c7ab4e6-secret and pa"ss\\word-77c1')


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_line_even_in_tracebacks(
    setup: Setup, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    setup(log_format, verbose=True, secrets=(SECRET, QUOTED))
    log = logging.getLogger("harvester.test")
    log.debug("url ?api_key=%s", SECRET, extra={"header": f"Bearer {SECRET}", "other": QUOTED})
    log.warning("where it was", stack_info=True, extra={"secret": SECRET})

    async def body(stop: asyncio.Event) -> int:
        _fail_with_the_secret()
        return 0

    # What -v does with an unexpected error: its traceback is logged, then one line is printed.
    assert run_command(body, verbose=True, secrets=(SECRET, QUOTED)) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "_fail_with_the_secret" in text and "RuntimeError" in text  # the traceback is there ...
    assert "Stack (most recent call last)" in text
    for spelling in (SECRET, QUOTED, orjson.dumps(QUOTED).decode()[1:-1], "9d2f1c7ab4e6"):
        assert spelling not in text  # ... with nothing of the secret in it
    assert text.count("***") >= 6
    if log_format == "json":
        docs = json_lines(out.err.split("harvester: internal error")[0])
        assert docs[-1]["exception_name"] == "RuntimeError" and "***" in docs[-1]["exception"]


def test_text_lines_keep_their_shape(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup("text", verbose=True)
    logging.getLogger("harvester.lake.committer").debug("committed %06d: %d records", 1, 100)
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} DEBUG harvester\.lake\.committer: "
        r"committed 000001: 100 records\n",
        err,
    ), err


@pytest.mark.parametrize(
    ("option", "env", "in_lambda", "expected"),
    [
        (None, {}, False, "text"),
        (None, {}, True, "json"),  # the handler's setup
        (None, {"AWS_LAMBDA_FUNCTION_NAME": "harvester"}, False, "json"),  # the CLI inside Lambda
        (None, {"HARVESTER_LOG_FORMAT": "JSON"}, False, "json"),
        (None, {"HARVESTER_LOG_FORMAT": "text"}, True, "text"),
        ("text", {"HARVESTER_LOG_FORMAT": "json"}, True, "text"),  # the option wins
        (None, {"HARVESTER_LOG_FORMAT": "yaml"}, False, "text"),  # ignored (and said so)
    ],
)
def test_choose_format(option: str | None, env: dict[str, str], in_lambda: bool, expected: str) -> None:
    assert logs.choose_format(option, env, in_lambda=in_lambda) == expected


@pytest.mark.parametrize(
    ("verbose", "env", "expected"),
    [
        (False, {}, logging.INFO),
        (True, {"POWERTOOLS_LOG_LEVEL": "ERROR"}, logging.DEBUG),  # -v still means debug
        (False, {"POWERTOOLS_LOG_LEVEL": "warning"}, logging.WARNING),
        (False, {"LOG_LEVEL": "DEBUG"}, logging.DEBUG),  # Powertools' older name
        (False, {"POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "DEBUG"}, logging.ERROR),
        (False, {"POWERTOOLS_LOG_LEVEL": "loud"}, logging.INFO),
    ],
)
def test_choose_level(verbose: bool, env: dict[str, str], expected: int) -> None:
    assert logs.choose_level(verbose, env) == expected


def test_level_and_format_from_the_environment(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("HARVESTER_LOG_FORMAT", "json")
    setup()
    log = logging.getLogger("harvester.test")
    log.info("not shown")
    log.warning("shown")
    assert [d["message"] for d in json_lines(capsys.readouterr().err)] == ["shown"]

    monkeypatch.setenv("LOG_LEVEL", "chatty")
    monkeypatch.delenv("POWERTOOLS_LOG_LEVEL")
    setup("text")
    err = capsys.readouterr().err
    assert "WARNING harvester: ignoring LOG_LEVEL='chatty': not a log level" in err


def test_progress_events_carry_their_numbers(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    now = Snapshot(done=250, total=1000, elapsed_s=10.0, requests=300, throttled=1, misses=7, failures=2,
                   rate_limit=40.0)  # fmt: skip
    assert now.fields() == {
        "event": "progress",
        "done": 250,
        "total": 1000,
        "elapsed_s": 10.0,
        "eta_s": 30,
        "requests_per_s": 30.0,
        "rate_limit": 40.0,
        "throttled": 1,
        "misses": 7,
        "failures": 2,
    }
    assert progress_line(now, bar=False) == (
        "250/1000  25.0% ETA 30s |  30.0 req/s (limit 40) | 429s 1 | misses 7 | failures 2"
    )
    assert progress_line(Snapshot(3, None, 1.0, 3, 0, 0, 0, 40.0), bar=False).startswith("3 titles | ")

    setup("json")

    async def one_report() -> None:
        stats = Stats(total=10)
        stats.harvested = 4
        reporter = Progress(stats, ClientCounters(requests=5), RateLimiter(40), stream=io.StringIO())
        async with asyncio.TaskGroup() as tg:
            tg.create_task(reporter.run())
            await asyncio.sleep(0)
            reporter.finish()  # wakes it: one last report, then it returns

    asyncio.run(one_report())
    (doc,) = json_lines(capsys.readouterr().err)
    assert doc["event"] == "progress" and doc["done"] == 4 and doc["total"] == 10
    assert doc["message"].startswith("4/10")


class LambdaContext:
    """What the Lambda runtime passes (the attributes Powertools reads)."""

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id
        self.function_name = "harvester"
        self.memory_limit_in_mb = "512"  # a str in the Python runtime
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:harvester"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_lambda_lines_carry_the_context(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lambda_handler, "_INVOCATIONS", itertools.count())  # a fresh process
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8")
    before = logging.getLogger().handlers[:]
    for request in ("req-1", "req-2"):
        result = lambda_handler.handler({"config": "not-s3"}, LambdaContext(request))
        assert result["status"] == "failed" and result["exit_code"] == 2
    assert logging.getLogger().handlers == before  # the runtime's (here pytest's) handlers are back
    first, second = json_lines(capsys.readouterr().err)  # JSON without being asked: it is Lambda
    for doc, request in ((first, "req-1"), (second, "req-2")):
        assert doc.keys() >= POWERTOOLS_KEYS | LAMBDA_KEYS
        assert doc["level"] == "ERROR" and "config" in doc["message"]
        assert doc["function_request_id"] == doc["invocation"] == request
        assert doc["function_name"] == "harvester" and doc["function_memory_size"] == 512
        assert doc["function_arn"].endswith(":function:harvester")
        assert doc["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert first["cold_start"] is True and second["cold_start"] is False


def config(tmp_path: Path, standin: RunningStandin) -> Path:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 150, seed=5)
    return write_config(
        tmp_path / "config.toml",
        tmdb={"base_url": standin.base_url, "rate_limit": 500, "concurrency": 8, "timeout_s": 5},
        source={"path": str(csv)},
        sink={"url": str(tmp_path / "lake"), "chunk_size": 50},
    )


async def run_json(tmp_path: Path, standin: RunningStandin) -> tuple[list[dict[str, Any]], str, str]:
    """A real run with -v and JSON logs (api_key mode: the secret is in every URL): lines, stdout, all."""
    done = await run_cli("-v", "--log-format", "json", "run", str(config(tmp_path, standin)),
                         env=cli_env(api_key=API_KEY))  # fmt: skip
    assert done.code == 0, done.output
    return json_lines(done.stderr), done.stdout, done.output


async def test_a_run_logs_json_lines_commits_and_the_summary(standin: RunningStandin, tmp_path: Path) -> None:
    lines, stdout, output = await run_json(tmp_path, standin)
    assert API_KEY not in output
    assert all(d.keys() >= POWERTOOLS_KEYS for d in lines)
    assert len({d["invocation"] for d in lines}) == 1
    commits = [d for d in lines if d.get("event") == "commit"]
    assert [d["commit"] for d in commits] == [0, 1, 2]
    lake = tmp_path / "lake"
    objects = sorted(p.relative_to(lake).as_posix() for p in lake.glob("2*/*/*/*"))
    assert sorted(d["key"] for d in commits) == objects
    for d in commits:
        assert d["message"].startswith(f"committed {d['commit']:06d}: {d['records']} records")
        assert d["bytes"] == (lake / d["key"]).stat().st_size
    (summary,) = [d for d in lines if d["message"] == "summary"]
    assert summary["status"] == "complete"
    assert summary["harvested"] == sum(d["records"] for d in commits)
    assert sum(summary["misses"].values()) == sum(d["misses"] for d in commits)
    assert summary["objects"] == len(objects) and summary["run_totals"]["objects"] == len(objects)
    assert "status           complete" in stdout  # the human summary, as in text mode
    assert "{" not in stdout  # and no metrics unless asked


async def test_every_line_of_a_run_names_its_harvest_and_run(standin: RunningStandin, tmp_path: Path) -> None:
    lines, _, _ = await run_json(tmp_path, standin)
    (summary,) = [d for d in lines if d["message"] == "summary"]
    assert all(d["harvest"] == f"{tmp_path / 'lake'}/_harvest/state-csv-movie.json" for d in lines)
    first_commit = next(i for i, d in enumerate(lines) if d.get("event") == "commit")
    for d in lines[first_commit:]:  # once the run is open
        assert d["run"] == summary["run"] and d["writer"] in d.get("key", d["writer"]), d
