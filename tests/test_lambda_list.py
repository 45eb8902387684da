"""The Lambda handler and the state machine for a config that lists harvests ([[harvest]]): one
invocation works on every unfinished harvest at once, one answer for the state machine, each harvest's
own under "harvests"; the real handler in-process against the stand-in and moto's S3, over sockets."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w
from asl import load_definition, run_machine
from fixtures_s3 import s3_client
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX, distinct_ids, expected_movies, read_s3_lake

from harvester import lambda_handler
from harvester.errors import StorageError
from harvester.lambda_handler import list_verdict
from tmdb_standin import RunningStandin, write_movies_csv

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "deploy" / "statemachine.asl.json"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:harvester"


class FakeContext:
    """Lambda's context: its deadline `budget_s` from now."""

    def __init__(self, budget_s: float) -> None:
        self._deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def list_settings(
    standin: RunningStandin, s3_bucket: tuple[str, str], sources: dict[str, Path], rate: int = 300
) -> dict[str, Any]:
    """A config of one harvest per movies.csv in `sources`, sharing [tmdb] and an S3 [sink]."""
    endpoint, bucket = s3_bucket
    return {
        "tmdb": {"base_url": standin.base_url, "rate_limit": rate, "concurrency": 12, "timeout_s": 5},
        "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": endpoint, "chunk_size": 50},
        "harvest": [{"name": name, "source": {"path": str(path)}} for name, path in sources.items()],
    }


def csv(tmp_path: Path, name: str, n: int, seed: int) -> Path:
    path = tmp_path / f"{name}.csv"
    write_movies_csv(path, n, seed=seed, start_id=1_000_000 * seed)  # distinct titles per harvest
    return path


async def invoke(event: dict[str, Any], budget_s: float = 60) -> dict[str, Any]:
    # The handler runs asyncio.run itself, as on Lambda: give it a thread of its own.
    return await asyncio.to_thread(lambda_handler.handler, event, FakeContext(budget_s))


async def assert_each_exactly_once(endpoint: str, bucket: str, sources: dict[str, Path]) -> None:
    """Each harvest's table (its folder) holds each of its titles once, and nothing of the others."""
    lake = await read_s3_lake(endpoint, bucket)
    tables: dict[str, Counter[str]] = {}
    for key, records in lake.data.items():
        tables.setdefault(key.split("/", 1)[0], Counter()).update(str(r["imdb_id"]) for r in records)
    assert set(tables) == set(sources)
    for name, path in sources.items():
        assert set(tables[name]) == expected_movies(distinct_ids(path)).found, name
        assert max(tables[name].values()) == 1, name
        state = orjson.loads(lake.other[f"_harvest/state-{name}.json"])
        assert state["status"] == "complete", name


def emf_lines(stdout: str) -> list[dict[str, Any]]:
    docs = [orjson.loads(line) for line in stdout.splitlines()]
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        (dimensions,) = directive["Dimensions"]
        assert all(name in doc for name in dimensions)
        assert all(isinstance(doc[m["Name"]], int | float) for m in directive["Metrics"])
    return docs


# ---------------------------------------------------------------------------------------------
# One invocation


async def test_one_invocation_harvests_every_harvest_of_the_list(
    standin: RunningStandin,
    s3_bucket: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    sources = {"romance": csv(tmp_path, "romance", 60, 1), "drama": csv(tmp_path, "drama", 40, 2)}
    result = await invoke({"settings": list_settings(standin, s3_bucket, sources), "margin_s": 1})

    assert (result["status"], result["stopped"], result["exit_code"]) == ("complete", False, 0), result
    assert result["unfinished"] == [] and "error" not in result
    harvests = result["harvests"]
    assert list(harvests) == ["romance", "drama"]
    for name, path in sources.items():
        h = harvests[name]
        expected = expected_movies(distinct_ids(path))
        assert (h["status"], h["exit_code"], h["stopped"]) == ("complete", 0, False)
        assert (h["harvested"], h["misses"], h["pending"]) == (len(expected.found), len(expected.misses), 0)
        assert h["run"] and h["run_totals"]["harvested"] == len(expected.found)
    for total in ("harvested", "misses", "objects"):
        assert result[total] == sum(h[total] for h in harvests.values()), total
    # One client for both: its count is theirs and the reference tables' (one credential check, counted
    # by whichever asked first).
    reference = result["reference"]
    assert result["requests"] == sum(h["requests"] for h in harvests.values()) + reference["requests"]
    assert set(reference["written"]) == {"genres", "countries", "languages", "certifications"}
    assert standin.stats.by_route["authentication"] == 1

    out = capsys.readouterr()
    docs = emf_lines(out.out)  # stdout holds the metrics lines and nothing else
    sink = f"s3://{s3_bucket[1]}/{PREFIX}"
    per_harvest = {d["Harvest"]: d for d in docs if "Harvest" in d}
    assert set(per_harvest) == {f"{sink}/_harvest/state-{n}.json" for n in sources}  # one line each
    for name in sources:
        doc = per_harvest[f"{sink}/_harvest/state-{name}.json"]
        assert [doc[k] for k in ("Harvested", "Requests")] == [
            harvests[name][k] for k in ("harvested", "requests")
        ]
    (totals,) = [d for d in docs if "Deployment" in d]
    assert len(docs) == 3 and totals["Deployment"] == sink
    assert (totals["Harvests"], totals["HarvestsComplete"], totals["Requests"]) == (2, 2, result["requests"])
    logged = [orjson.loads(x) for x in out.err.splitlines()]  # JSON lines: it is Lambda
    assert sorted(d["harvest"] for d in logged if d.get("event") == "summary") == sorted(per_harvest)
    await assert_each_exactly_once(*s3_bucket, sources)


async def test_a_bad_input_fails_that_harvest_alone_and_the_error_names_it(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    sources = {"good": csv(tmp_path, "good", 40, 1), "bad": tmp_path / "missing.csv"}
    result = await invoke({"settings": list_settings(standin, s3_bucket, sources), "margin_s": 1})
    # The rest is complete and this one failed for good: the state machine stops on it.
    assert (result["status"], result["stopped"], result["exit_code"]) == ("failed", False, 2), result
    assert result["unfinished"] == ["bad"]
    good, bad = result["harvests"]["good"], result["harvests"]["bad"]
    assert (good["status"], good["exit_code"], good["pending"]) == ("complete", 0, 0)
    assert (bad["status"], bad["exit_code"], bad["stopped"]) == ("failed", 2, False)
    assert "missing.csv" in bad["error"] and "\n" not in bad["error"] and "harvested" not in bad
    error = result["error"]
    assert error == f'1 of 2 harvests failed (the others are complete): harvest "bad": {bad["error"]}'
    assert '"good"' not in error
    logged = [orjson.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert any(d["level"] == "ERROR" and d["message"].startswith('harvest "bad": ') for d in logged)
    await assert_each_exactly_once(*s3_bucket, {"good": sources["good"]})


async def test_only_takes_the_harvests_it_names(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    sources = {"romance": csv(tmp_path, "romance", 30, 1), "drama": csv(tmp_path, "drama", 30, 2)}
    settings = list_settings(standin, s3_bucket, sources)
    result = await invoke({"settings": settings, "only": ["drama"], "margin_s": 1})
    assert result["status"] == "complete" and list(result["harvests"]) == ["drama"], result
    await assert_each_exactly_once(*s3_bucket, {"drama": sources["drama"]})  # romance untouched

    unknown = await invoke({"settings": settings, "only": ["drama", "comedy"]})
    assert (unknown["status"], unknown["exit_code"]) == ("failed", 2)
    assert (
        unknown["error"] == "event \"only\" names 'comedy': no such harvest (the config lists romance, drama)"
    )
    wrong = await invoke({"settings": settings, "only": "drama"})
    assert (wrong["status"], wrong["exit_code"]) == ("failed", 2) and 'event "only"' in wrong["error"]


async def test_a_refused_credential_fails_them_all_in_one_line_without_the_token(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.not-the-right-one.x"
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", token)
    sources = {"romance": csv(tmp_path, "romance", 10, 1), "drama": csv(tmp_path, "drama", 10, 2)}
    result = await invoke({"settings": list_settings(standin, s3_bucket, sources)})
    assert (result["status"], result["exit_code"]) == ("failed", 3), result
    assert {h["exit_code"] for h in result["harvests"].values()} == {3}
    # One reason, said once for both harvests.
    assert result["error"].startswith('2 of 2 harvests failed: harvests "romance", "drama": ')
    assert result["error"].count(result["harvests"]["drama"]["error"]) == 1
    assert token not in orjson.dumps(result).decode()


async def test_s3_unusable_for_every_harvest_raises_for_the_tasks_retries(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    sources = {"romance": csv(tmp_path, "romance", 10, 1), "drama": csv(tmp_path, "drama", 10, 2)}
    settings = list_settings(standin, s3_bucket, sources)
    settings["sink"]["url"] = f"s3://no-such-bucket-h6/{PREFIX}"
    with pytest.raises(StorageError) as err:
        await invoke({"settings": settings})
    message = str(err.value)
    assert message.startswith('no harvest can go on: harvests "romance", "drama": ') and "\n" not in message


@pytest.mark.parametrize(
    ("codes", "verdict"),
    [
        ([0, 0], ("complete", False)),
        ([0, 75], ("incomplete", True)),  # the deadline: resume at once
        ([75, 5, 2], ("incomplete", True)),  # a harvest that can go on keeps the others' failure waiting
        ([0, 5], ("incomplete", False)),  # titles pending or TMDB down: after the pause
        ([6, 2], ("incomplete", False)),  # a lease held elsewhere
        ([0, 2], ("failed", False)),
        ([3, 3], ("failed", False)),
        ([0, 4], ("incomplete", False)),  # the next invocation takes the S3 one alone
        ([0, 1, 2], ("incomplete", False)),
        ([4, 4], None),  # nothing can go on: raise, so that the task's retries apply
        ([4, 2], None),
        ([1], None),
    ],
)
def test_the_state_machine_gets_one_verdict_for_the_list(
    codes: list[int], verdict: tuple[str, bool] | None
) -> None:
    assert list_verdict(codes) == verdict


# ---------------------------------------------------------------------------------------------
# The state machine (tests/asl.py) around the real handler


async def put_config(s3_bucket: tuple[str, str], settings: dict[str, Any]) -> str:
    endpoint, bucket = s3_bucket
    async with s3_client(endpoint) as s3:
        await s3.put_object(Bucket=bucket, Key="harvester/config.toml", Body=tomli_w.dumps(settings).encode())
    return f"s3://{bucket}/harvester/config.toml"


class Function:
    """The deployed function, in-process: each invocation gets `budgets[i]` seconds (the last one for
    the rest), and S3 at moto's endpoint; it records what the state machine sent and got back."""

    def __init__(self, endpoint: str, *budgets: float) -> None:
        self.endpoint, self.budgets = endpoint, list(budgets)
        self.payloads: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.payloads.append(payload)
        budget = self.budgets.pop(0) if len(self.budgets) > 1 else self.budgets[0]
        event = {**payload, "endpoint_url": self.endpoint, "margin_s": 0.8}
        result = lambda_handler.handler(event, FakeContext(budget))
        self.results.append(result)
        return result


def definition(config_uri: str) -> dict[str, Any]:
    return load_definition(
        ASL, {"HarvestFunctionArn": FUNCTION_ARN, "ConfigUri": config_uri, "MaxIterations": "100"}
    )


async def test_one_execution_runs_the_list_until_every_harvest_is_complete(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    standin.config.rate_limit = 200
    # small takes 4 requests; big some 1,100, at 200/s: more than two invocations of these budgets send.
    sources = {"small": csv(tmp_path, "small", 4, 1), "big": csv(tmp_path, "big", 1000, 2)}
    uri = await put_config(s3_bucket, list_settings(standin, s3_bucket, sources, rate=200))
    fn = Function(s3_bucket[0], 4.0, 1.8)
    waits: list[int] = []
    outcome, output = await asyncio.to_thread(run_machine, definition(uri), {}, fn, waits=waits)

    assert outcome == "Succeed", output
    first, *rest = fn.results
    assert (first["status"], first["stopped"], first["unfinished"]) == ("incomplete", True, ["big"]), first
    assert first["harvests"]["small"]["status"] == "complete"
    assert len(rest) >= 2  # big needed several invocations
    # Only big from then on: small, complete, is not taken again; each title counted by one invocation.
    assert fn.payloads == [{"config": uri}] + [{"config": uri, "only": ["big"]}] * len(rest)
    assert all(list(r["harvests"]) == ["big"] for r in rest), rest
    titles = sum(len(distinct_ids(path)) for path in sources.values())
    assert sum(r["harvested"] + r["misses"] for r in fn.results) == titles
    assert [r["status"] for r in rest[:-1]] == ["incomplete"] * (len(rest) - 1)
    # Cut short: resumed at once; an invocation that ended with titles pending (a 429 storm at the
    # seam of two invocations, under load) goes through the state machine's Wait first.
    assert len(waits) == sum(not r["stopped"] for r in rest[:-1])
    assert rest[-1]["status"] == "complete" and output["last"]["status"] == "complete"
    await assert_each_exactly_once(*s3_bucket, sources)


async def test_a_failed_harvest_never_stops_the_others_and_ends_the_execution_when_they_are_done(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    standin.config.rate_limit = 200
    sources = {"big": csv(tmp_path, "big", 300, 2), "bad": tmp_path / "missing.csv"}
    uri = await put_config(s3_bucket, list_settings(standin, s3_bucket, sources, rate=200))
    fn = Function(s3_bucket[0], 1.8)
    outcome, (error, cause) = await asyncio.to_thread(run_machine, definition(uri), {}, fn)

    assert (outcome, error) == ("Fail", "HarvestFailed")
    assert len(fn.results) >= 2  # big went on after bad failed
    for result in fn.results[:-1]:
        assert (result["status"], result["harvests"]["bad"]["exit_code"]) == ("incomplete", 2), result
        assert result["unfinished"] == ["big", "bad"]  # bad is tried again: its input may be back
    last = fn.results[-1]
    assert last["harvests"]["big"]["status"] == "complete" and last["status"] == "failed"
    assert cause == last["error"] and cause.startswith(
        '1 of 2 harvests failed (the others are complete): harvest "bad": '
    )
    await assert_each_exactly_once(*s3_bucket, {"big": sources["big"]})


async def test_a_config_of_one_harvest_gets_the_same_payload_every_time(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMDB_ACCESS_TOKEN", TOKEN)
    standin.config.rate_limit = 200
    settings = list_settings(standin, s3_bucket, {}, rate=200)
    del settings["harvest"]
    settings["source"] = {"path": str(csv(tmp_path, "movies", 300, 3))}
    uri = await put_config(s3_bucket, settings)
    fn = Function(s3_bucket[0], 1.8)
    outcome, _ = await asyncio.to_thread(run_machine, definition(uri), {}, fn)
    assert outcome == "Succeed"
    assert len(fn.payloads) >= 2 and fn.payloads == [{"config": uri}] * len(fn.payloads)
    assert not {"harvests", "unfinished"} & {k for r in fn.results for k in r}  # the answer of one harvest
