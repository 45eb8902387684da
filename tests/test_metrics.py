"""Metrics as CloudWatch reads them: embedded-metric-format lines that follow the format's rules, one per
Lambda invocation and, when asked, one per CLI run."""

from __future__ import annotations

import asyncio
import io
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import TOKEN

from harvester import lambda_handler
from harvester.lake.state import RefreshPlan, RunCounts
from harvester.ops import metrics
from harvester.ops.metrics import Metric, emf_line
from harvester.ops.stats import SourceSummary, Summary, refresh_summary
from tmdb_standin import RunningStandin, write_movies_csv

UNITS = {"Count", "Count/Second", "Bytes", "Seconds", "Milliseconds", "Percent", "None"}  # those we may use
EXPECTED = {
    "Harvested": "Count",
    "Misses": "Count",
    "Failures": "Count",
    "Pending": "Count",
    "Requests": "Count",
    "Throttled": "Count",
    "Retries": "Count",
    "AchievedRate": "Count/Second",
    "Objects": "Count",
    "Bytes": "Bytes",
    "Revisited": "Count",
    "ChangesUnlisted": "Count",
}


def assert_valid_emf(line: str) -> dict[str, Any]:
    """The embedded metric format's rules (CloudWatch drops a line that breaks one)."""
    doc = orjson.loads(line)
    assert isinstance(doc, dict) and "\n" not in line
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and not isinstance(aws["Timestamp"], bool)
    assert aws["Timestamp"] > 1_500_000_000_000  # milliseconds, not seconds
    assert aws["CloudWatchMetrics"]
    for directive in aws["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 255
        assert len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(doc[key], str) and doc[key], key  # each dimension is a top-level string
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS and 0 < len(metric["Name"]) <= 255
            value = doc[metric["Name"]]  # each metric is a top-level number (or up to 100 numbers)
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100
            assert all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
            )
    return doc


def summary(**over: Any) -> Summary:
    fields: dict[str, Any] = {
        "status": "incomplete",
        "run": "20261123T091502Z-3fa9c2d1",
        "source": SourceSummary(
            describe="movies.csv", rows=10, malformed=0, duplicates=0, filtered_out=0, selected=10
        ),
        "skipped_done": 0,
        "harvested": 1234,
        "misses": {"not_found": 7, "tv": 3},
        "failed": 2,
        "failures": {"http_400": 2},
        "final_failures": ["tt1", "tt2"],
        "pending": 4,
        "requests": 1400,
        "throttled": 1,
        "retries": 5,
        "objects": 13,
        "bytes_written": 41_234_567,
        "elapsed_s": 36.1,
        "achieved_rps": 38.78,
        "rate_limit": 40.0,
        "output": "s3://b/p/2026/11/23/",
        "run_totals": RunCounts(),
    }
    return Summary(**{**fields, **over})


def test_a_summary_makes_one_valid_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    out = io.StringIO()
    metrics.emit(summary(), "s3://b/p/_harvest/state-csv-movie.json", stream=out)
    (line,) = out.getvalue().splitlines()
    doc = assert_valid_emf(line)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Harvester"
    assert directive["Dimensions"] == [["Harvest"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == EXPECTED
    assert doc["Harvest"] == "s3://b/p/_harvest/state-csv-movie.json"
    assert {k: doc[k] for k in EXPECTED} == {
        "Harvested": 1234,
        "Misses": 10,
        "Failures": 2,
        "Pending": 4,
        "Requests": 1400,
        "Throttled": 1,
        "Retries": 5,
        "AchievedRate": 38.78,
        "Objects": 13,
        "Bytes": 41_234_567,
        "Revisited": 0,  # not a refresh
        "ChangesUnlisted": 0,
    }


def test_a_refresh_says_what_it_revisited_and_what_tmdb_did_not_list() -> None:
    plan = RefreshPlan(
        writer="w", parts=1, titles=60, changed=20, entered=5, left=2, pages=501, revisited=33, unlisted=1234
    )
    out = io.StringIO()
    metrics.emit(summary(refresh=refresh_summary(plan)), "h", stream=out)
    (line,) = out.getvalue().splitlines()
    doc = assert_valid_emf(line)
    assert (doc["Revisited"], doc["ChangesUnlisted"]) == (33, 1234)


def test_the_namespace_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Lake/Ingest")
    out = io.StringIO()
    metrics.emit(summary(), "h", stream=out)
    (line,) = out.getvalue().splitlines()
    assert assert_valid_emf(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Lake/Ingest"


@pytest.mark.parametrize(
    ("dimensions", "many", "extra"),
    [
        ({"Harvest": "h"}, 101, None),  # over 100 metrics a line
        ({f"D{i}": "x" for i in range(31)}, 1, None),  # over 30 dimensions a set
        ({"Harvest": "h"}, 0, None),  # nothing to say
        ({"Harvest": "h"}, 1, Metric("M0", "Count", 1)),  # a name twice
        ({"Harvest": "h"}, 1, Metric("Harvest", "Count", 1)),  # a metric hiding a dimension
        ({"Harvest": "h"}, 1, Metric("Rate", "Count/Second", math.nan)),  # not a number
    ],
)
def test_lines_that_cloudwatch_would_drop_are_refused(
    dimensions: dict[str, str], many: int, extra: Metric | None
) -> None:
    ms = [Metric(f"M{i}", "Count", i) for i in range(many)] + ([extra] if extra else [])
    with pytest.raises(ValueError):
        emf_line("Harvester", dimensions, ms, 1_795_464_538_520)
    emf_line("Harvester", {"Harvest": "h"}, [Metric(f"M{i}", "Count", i) for i in range(100)], 1)  # the limit


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [(False, {}, False), (True, {}, True), (False, {"HARVESTER_METRICS": "emf"}, True),
     (False, {"HARVESTER_METRICS": "off"}, False)],
)  # fmt: skip
def test_who_asks_for_metrics(flag: bool, env: dict[str, str], expected: bool) -> None:
    assert metrics.wanted(flag, env) is expected


def settings(tmp_path: Path, standin: RunningStandin) -> dict[str, Any]:
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 80, seed=9)
    return {
        "tmdb": {"base_url": standin.base_url, "rate_limit": 500, "concurrency": 8, "timeout_s": 5},
        "source": {"path": str(csv)},
        "sink": {"url": str(tmp_path / "lake"), "chunk_size": 40},
    }


class LambdaContext:
    aws_request_id = "0f6b4c2e-1a2b-4c3d-9e8f-abcdefabcdef"
    function_name = "harvester"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:harvester"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


async def test_each_lambda_invocation_emits_one_line(
    standin: RunningStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    for name in ("HARVESTER_LOG_FORMAT", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    event = {"settings": settings(tmp_path, standin)}
    # The handler runs asyncio.run itself, as on Lambda: a thread of its own, beside the stand-in's loop.
    result = await asyncio.to_thread(lambda_handler.handler, event, LambdaContext())
    assert result["status"] == "complete", result
    out = capsys.readouterr()
    (line,) = out.out.splitlines()  # stdout holds the metrics line and nothing else
    doc = assert_valid_emf(line)
    harvest = f"{tmp_path / 'lake'}/_harvest/state-csv-movie.json"
    assert doc["Harvest"] == harvest
    assert [doc[k] for k in ("Harvested", "Misses", "Requests", "Objects")] == [
        result["harvested"], result["misses"], result["requests"], result["objects"]
    ]  # fmt: skip
    # The log lines of that invocation (JSON: it is Lambda) carry its context and its harvest.
    logs = [orjson.loads(x) for x in out.err.splitlines()]
    commits = [d for d in logs if d.get("event") == "commit"]
    assert len(commits) == result["objects"] == 2
    for d in commits:
        assert d["function_request_id"] == d["invocation"] == LambdaContext.aws_request_id
        assert d["function_memory_size"] == 256 and d["harvest"] == harvest
    (event,) = [d for d in logs if d["message"] == "summary"]
    assert event["harvested"] == result["harvested"] and event["run"] == result["run"]


async def test_the_cli_emits_one_line_when_asked(standin: RunningStandin, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", **settings(tmp_path, standin))
    env = {**cli_env(token=TOKEN), "HARVESTER_METRICS": "emf"}
    done = await run_cli("run", str(cfg), env=env)
    assert done.code == 0, done.output
    *human, line = done.stdout.splitlines()
    assert "status           complete" in human  # the summary as before, then the metrics
    doc = assert_valid_emf(line)
    assert doc["Harvest"] == f"{tmp_path / 'lake'}/_harvest/state-csv-movie.json"
    (stored,) = (tmp_path / "lake" / "_harvest").glob("*/summary.json")
    kept = orjson.loads(stored.read_bytes())
    assert [doc["Harvested"], doc["Requests"], doc["Bytes"]] == [
        kept["harvested"], kept["requests"], kept["bytes_written"]
    ]  # fmt: skip
    assert "{" not in done.stderr  # text logs: no summary event
