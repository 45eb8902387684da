"""A small interpreter of the JSONPath ASL subset that deploy/statemachine.asl.json uses.

Enough to run the state machine against a fake Lambda function in a test: Choice (IsPresent and a few
comparisons), Pass and Task with Parameters (`.$` keys: paths, the `$$.Execution` context object and
four intrinsic functions), ResultSelector, ResultPath, Retry and Catch; Wait (Seconds, not slept);
Succeed and Fail. Anything
outside that subset raises NotImplementedError, so a change in the definition that the interpreter
does not understand fails a test instead of being skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:HarvestStateMachine:test-execution"


class TaskError(Exception):
    """An invocation that failed with the Step Functions error `name` (e.g. Lambda.ServiceException)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def load_definition(path: Path, substitutions: dict[str, str]) -> dict[str, Any]:
    """The ASL file with its DefinitionSubstitutions filled in, as CloudFormation would."""
    text = path.read_text(encoding="utf-8")
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise AssertionError("a placeholder without a value")
    return json.loads(text)  # type: ignore[no-any-return]


def _get(data: Any, path: str) -> Any:
    if path == "$":
        return data
    if not path.startswith("$."):
        raise NotImplementedError(path)
    for part in path[2:].split("."):
        if not isinstance(data, dict) or part not in data:
            raise KeyError(path)
        data = data[part]
    return data


def _read(path: str, data: Any, context: dict[str, Any]) -> Any:
    """A path into the state's data ($...) or into the context object ($$...)."""
    return _get(context, path[1:]) if path.startswith("$$") else _get(data, path)


def _has(data: Any, path: str) -> bool:
    try:
        _get(data, path)
    except KeyError:
        return False
    return True


_PATH = r"(\$\$?[\w.]*)"


def _intrinsic(expr: str, data: Any, context: dict[str, Any]) -> Any:
    if m := re.fullmatch(r"States\.StringToJson\('([^']*)'\)", expr):
        return json.loads(m.group(1))
    if m := re.fullmatch(rf"States\.MathAdd\({_PATH}, (-?\d+)\)", expr):
        return _read(m.group(1), data, context) + int(m.group(2))
    if m := re.fullmatch(rf"States\.Format\('([^']*)', {_PATH}\)", expr):
        return m.group(1).replace("{}", str(_read(m.group(2), data, context)), 1)
    if m := re.fullmatch(rf"States\.JsonMerge\({_PATH}, {_PATH}, false\)", expr):
        left, right = _read(m.group(1), data, context), _read(m.group(2), data, context)
        if not isinstance(left, dict) or not isinstance(right, dict):
            raise TypeError(f"States.JsonMerge takes two objects: {expr}")  # States.Runtime in Step Functions
        return {**left, **right}  # shallow, as with false: the right one's keys win
    if expr.startswith("$"):
        return _read(expr, data, context)
    raise NotImplementedError(expr)


def _render(template: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _intrinsic(value, data, context)
            else:
                out[key] = _render(value, data, context)
        return out
    if isinstance(template, list):
        return [_render(v, data, context) for v in template]
    return template


def _with_result(data: Any, result_path: str | None, result: Any) -> Any:
    if result_path in (None, "$"):
        return result
    if not re.fullmatch(r"\$\.\w+", result_path):
        raise NotImplementedError(result_path)
    return {**data, result_path[2:]: result}


_RULES: dict[str, Callable[[Any, Any, Any], bool]] = {
    "StringEquals": lambda v, x, _: isinstance(v, str) and v == x,
    "BooleanEquals": lambda v, x, _: isinstance(v, bool) and v == x,
    "NumericGreaterThanEquals": lambda v, x, _: v >= x,
    "NumericGreaterThanEqualsPath": lambda v, x, d: v >= _get(d, x),
}


def _matches(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule or "Or" in rule or "Not" in rule:
        raise NotImplementedError("compound choice rules")
    variable = rule["Variable"]
    if "IsPresent" in rule:
        return _has(data, variable) == bool(rule["IsPresent"])
    value = _get(data, variable)  # a missing variable is a run-time error, as in Step Functions
    (op,) = [k for k in rule if k not in ("Variable", "Next", "Comment")]
    if op not in _RULES:
        raise NotImplementedError(op)
    return _RULES[op](value, rule[op], data)


def _error_matches(names: list[str], error: str) -> bool:
    return (
        "States.ALL" in names
        or error in names
        or ("States.TaskFailed" in names and error != "States.Timeout")
    )


def run_machine(
    definition: dict[str, Any],
    execution_input: dict[str, Any],
    invoke: Callable[[dict[str, Any]], Any],
    *,
    execution_id: str = EXECUTION_ID,
    waits: list[int] | None = None,
) -> tuple[str, Any]:
    """Run to the end. Returns ("Succeed", output) or ("Fail", (error, cause)) or ("Error", name).
    Wait states add their Seconds to `waits`."""
    waits = [] if waits is None else waits
    context = {"Execution": {"Id": execution_id, "Input": execution_input}}
    states, name, data = definition["States"], definition["StartAt"], execution_input
    for _ in range(10_000):
        state = states[name]
        kind = state["Type"]
        if kind == "Choice":
            name = next((r["Next"] for r in state["Choices"] if _matches(r, data)), state["Default"])
        elif kind == "Pass":
            result = _render(state["Parameters"], data, context) if "Parameters" in state else data
            data = _with_result(data, state.get("ResultPath"), result)
            name = state["Next"]
        elif kind == "Task":
            # Rendered once: a retry sends exactly what the failed attempt sent.
            params = _render(state["Parameters"], data, context)
            attempts = [0] * len(state.get("Retry", []))
            while True:
                try:
                    payload = invoke(params["Payload"])
                except TaskError as exc:
                    index = next(
                        (
                            i
                            for i, r in enumerate(state.get("Retry", []))
                            if _error_matches(r["ErrorEquals"], exc.name)
                        ),
                        None,
                    )
                    if index is not None and attempts[index] < state["Retry"][index]["MaxAttempts"]:
                        attempts[index] += 1
                        continue
                    catcher = next(
                        (c for c in state.get("Catch", []) if _error_matches(c["ErrorEquals"], exc.name)),
                        None,
                    )
                    if catcher is None:
                        return "Error", exc.name
                    data = _with_result(data, catcher.get("ResultPath"), {"Error": exc.name})
                    name = catcher["Next"]
                    break
                result = _render(state["ResultSelector"], {"Payload": payload}, context)
                data = _with_result(data, state.get("ResultPath"), result)
                name = state["Next"]
                break
        elif kind == "Wait":
            waits.append(state["Seconds"])  # recorded, not slept
            name = state["Next"]
        elif kind == "Succeed":
            return "Succeed", data
        elif kind == "Fail":
            if "CausePath" in state:
                cause = _intrinsic(state["CausePath"], data, context)
            else:
                cause = state.get("Cause")
            return "Fail", (state["Error"], cause)
        else:
            raise NotImplementedError(kind)
    raise AssertionError("the interpreter itself looped")


class FakeFunction:
    """Answers invocations from a script of outcomes (a status string, a dict, or a TaskError)."""

    def __init__(self, *outcomes: Any, then: Any = None) -> None:
        self.outcomes = list(outcomes)
        self.then = then
        self.payloads: list[dict[str, Any]] = []

    def __call__(self, payload: dict[str, Any]) -> Any:
        self.payloads.append(payload)
        outcome = self.outcomes.pop(0) if self.outcomes else self.then
        if isinstance(outcome, TaskError):
            raise outcome
        if isinstance(outcome, str):  # an incomplete one was cut short by its deadline
            return {"status": outcome, "stopped": outcome == "incomplete", "harvested": 1}
        return outcome
