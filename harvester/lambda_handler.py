"""AWS Lambda entry point: `harvester.lambda_handler.handler`.

Each invocation harvests until shortly before its deadline, commits, and returns; invoking it again
continues from the saved state (a Step Functions loop does exactly that, see deploy/). The event names
the config:

    {"config": "s3://bucket/harvester/config.toml"}          a TOML file in S3
    {"settings": {"tmdb": {...}, "source": {...}, ...}}       or the settings inline
    optional: "mode": "refresh" (take only what changed since the last complete run, as a new run);
    "fresh": true, starting the harvest over, with "fresh_id": an id of that request (the
    Step Functions execution's): invocations that carry the same fresh_id continue the run the first
    one started, so a failed fresh invocation can be retried as it is and is never lost;
    "only": ["name", ...], of a config that lists harvests, just these;
    "margin_s": seconds kept for drain + flush

A config of one harvest returns `{"status": "complete" | "incomplete", "stopped": bool, ...counts}`
(stopped: cut short by the deadline; incomplete and not stopped: titles are pending after their
retries). A config that lists harvests (`[[harvest]]`) runs every one of them at once under one rate
budget (fleet.py) and returns one status for them all (`list_verdict`), each one's under "harvests",
the totals, and under "unfinished" the names of those not complete: the state machine sends them as
"only" to the next invocation, so a harvest complete in this execution is not taken again (a refresh
would start another refresh run).

Everything (clients, limiter, event loop) is created per invocation: warm starts reuse this module
but not an event loop, and module-level clients fail there with "Event loop is closed".
A config, credential or state problem returns status "failed" (retrying cannot fix it); TMDB
unavailable returns "incomplete", not stopped, like titles left pending (the state machine pauses before
the next try); anything else transient raises, so Lambda's and Step Functions' retries apply. In a list
that holds for the invocation as a whole: one harvest's failure is its own entry, and the invocation
raises only when no harvest of it is complete or can go on and one of them failed on S3 (exit 4) or
on an internal error.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from . import config as config_mod
from .config import Credentials, Deployment, Settings, is_s3_url, parse_s3_url
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    CredentialError,
    HarvesterError,
    InputUnavailable,
    StateError,
    StorageError,
    TmdbUnavailable,
    WriterConflict,
)
from .fleet import EXIT_PENDING, FleetResult, Outcome, harvest_all, harvest_one
from .ops import metrics
from .ops.logs import bind, harvest_name, log_summary, new_invocation_id, redact, setup_logging
from .ops.stats import Summary
from .runner import Mode, Options
from .secret import forget, load_credentials

log = logging.getLogger("harvester")

DEFAULT_GRACE_S = 5.0
DEFAULT_MARGIN_S = 20.0  # drain (grace) + flush the partial chunk + save state and summary

Status = Literal["complete", "incomplete", "failed"]
# What a person must fix (config, input, state; the credential): taking it again cannot help.
PERMANENT = frozenset({ConfigError.exit_code, CredentialError.exit_code})
# What goes away on its own (TMDB down or titles pending, a lease held elsewhere): try after a pause.
WAITING = frozenset({EXIT_PENDING, TmdbUnavailable.exit_code, WriterConflict.exit_code})
DEPLOYMENT_DIMENSION = "Deployment"  # the totals' metrics line, beside each harvest's "Harvest" line


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Asked:
    """What the event asks of every harvest of this invocation."""

    mode: Mode
    fresh: bool
    fresh_id: str | None
    deadline: float
    grace_s: float

    def options(self) -> Options:
        # progress: CloudWatch gets the periodic progress log lines
        return Options(
            mode=self.mode,
            fresh=self.fresh,
            fresh_id=self.fresh_id,
            deadline=self.deadline,
            grace_s=self.grace_s,
            progress=True,
        )


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        credentials = load_credentials()  # TMDB_SECRET_ARN's secret: read at the cold start, then kept
    except CredentialError as exc:  # missing or denied; Secrets Manager unavailable raises: retry
        log.error("%s", exc)
        return {"status": "failed", "error": str(exc), "exit_code": exc.exit_code}
    margin = float(event.get("margin_s", DEFAULT_MARGIN_S))
    budget = context.get_remaining_time_in_millis() / 1000.0 - margin
    restore_logging = setup_logging(False, credentials.secrets(), in_lambda=True, fields=_log_fields(context))
    try:
        return asyncio.run(_invoke(event, credentials, budget))
    except TmdbUnavailable as exc:
        # Progress is saved. Not an error for the task's retries, which give up within minutes: an
        # incomplete run that the state machine tries again after its pause, as long as MaxIterations lets.
        log.error("%s", exc)
        return {"status": "incomplete", "stopped": False, "error": str(exc), "exit_code": exc.exit_code}
    except (ConfigError, CredentialError, StateError) as exc:
        log.error("%s", exc)
        if isinstance(exc, CredentialError):
            forget()  # TMDB refused the secret's token: the next invocation reads it again (rotated?)
        return {"status": "failed", "error": str(exc), "exit_code": exc.exit_code}
    finally:
        restore_logging()  # the runtime's own handlers, until the next invocation


async def _invoke(event: dict[str, Any], credentials: Credentials, budget_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, budget_s)
    deployment = _only(event, await _deployment_from_event(event))
    asked = Asked(
        mode=_mode(event),
        fresh=bool(event.get("fresh", False)),
        fresh_id=_fresh_id(event),
        deadline=deadline,
        grace_s=min(DEFAULT_GRACE_S, max(0.5, budget_s / 10)),
    )
    if asked.fresh and asked.mode == "refresh":
        raise ConfigError('the event asks for "fresh" and "mode": "refresh": a fresh start is a full run')
    if deployment.listed:
        return await _invoke_list(deployment, credentials, asked)
    return await _invoke_one(deployment.harvests[0], credentials, asked)


async def _invoke_one(settings: Settings, credentials: Credentials, asked: Asked) -> dict[str, Any]:
    """A config of one harvest: its result, and its errors raised for handler() to answer."""
    bind(harvest=harvest_name(settings))
    result = await harvest_one(settings, credentials, **asked.options())
    s = result.summary
    log_summary(s)
    metrics.emit(s, harvest_name(settings))  # one EMF line on stdout: CloudWatch makes it metrics
    return {
        "status": result.status,
        # Incomplete and not stopped: it went through its input and titles are pending after their
        # retries; the state machine waits before the next try (deploy/statemachine.asl.json).
        "stopped": result.stopped,
        **_counts(s),
    }


async def _invoke_list(deployment: Deployment, credentials: Credentials, asked: Asked) -> dict[str, Any]:
    """Every harvest of the list at once (fleet.py), until the deadline; one answer for them all."""
    fleet = await harvest_all(deployment, credentials, **asked.options())
    by_name = {h.name: h for h in deployment.harvests}
    for outcome in fleet.outcomes:
        if outcome.summary is not None:
            # Each summary's log line carries its own harvest; one EMF line per harvest.
            contextvars.copy_context().run(_report, outcome.summary, harvest_name(by_name[outcome.name]))
    _emit_totals(fleet, deployment.harvests[0].sink.url)
    if any(isinstance(o.error, CredentialError) for o in fleet.outcomes):
        forget()  # as for one harvest: the next invocation reads the secret again
    result = list_result(fleet, credentials.secrets())
    if result is None:
        codes = [o.exit_code for o in fleet.outcomes]
        why = f"no harvest can go on: {errors_line(fleet.outcomes, credentials.secrets())}"
        # Raised, so that the task's retries apply, as for one harvest's S3 trouble.
        raise (StorageError if StorageError.exit_code in codes else HarvesterError)(why)
    return result


def _report(summary: Summary, name: str) -> None:
    bind(harvest=name)
    log_summary(summary)
    metrics.emit(summary, name)


def _counts(s: Summary) -> dict[str, Any]:
    return {
        "harvested": s.harvested,
        "misses": sum(s.misses.values()),
        "failed": s.failed,
        "pending": s.pending,
        "requests": s.requests,
        "throttled": s.throttled,
        "objects": s.objects,
        "elapsed_s": s.elapsed_s,
        "run": s.run,
        "run_totals": msgspec.to_builtins(s.run_totals),
    }


# ---------------------------------------------------------------------------------------------
# A list's answer (pure)


def list_verdict(codes: Sequence[int]) -> tuple[Status, bool] | None:
    """(status, stopped) for the state machine, of harvests that ended with these exit codes; None when
    none of them is complete or can go on and one failed on S3 or an internal error (exit 4 or 1): the
    invocation raises then, so that the task's retries apply (and, when they run out, the execution
    fails) rather than looping on it. Never "failed" while another harvest can still go on."""
    if all(c == EXIT_OK for c in codes):
        return "complete", False
    if EXIT_INTERRUPTED in codes:
        return "incomplete", True  # cut short by the deadline: resume at once
    if any(c in WAITING for c in codes):
        return "incomplete", False  # TMDB, pending titles, a lease: after the state machine's pause
    if all(c == EXIT_OK or c in PERMANENT for c in codes):
        return "failed", False
    if EXIT_OK in codes:
        # Some completed here: the next invocation takes the rest alone ("unfinished"), and raises then.
        return "incomplete", False
    return None


def harvest_status(code: int) -> Status:
    if code == EXIT_OK:
        return "complete"
    return "failed" if code in PERMANENT else "incomplete"


def list_result(fleet: FleetResult, secrets: Sequence[str]) -> dict[str, Any] | None:
    """The invocation's answer for a list of harvests, or None when it should raise (`list_verdict`)."""
    codes = [o.exit_code for o in fleet.outcomes]
    verdict = list_verdict(codes)
    if verdict is None:
        return None
    status, stopped = verdict
    done = [o.summary for o in fleet.outcomes if o.summary is not None]
    result: dict[str, Any] = {
        "status": status,
        "stopped": stopped,
        "exit_code": fleet.exit_code,
        "harvests": {o.name: _entry(o, secrets) for o in fleet.outcomes},
        "unfinished": [o.name for o in fleet.outcomes if o.exit_code != EXIT_OK],
        "harvested": sum(s.harvested for s in done),
        "misses": sum(sum(s.misses.values()) for s in done),
        "failed": sum(s.failed for s in done),
        "pending": sum(s.pending for s in done),
        "requests": fleet.requests,  # the shared client's: every harvest's, and the credential check
        "reference": fleet.reference.counts() if fleet.reference is not None else None,  # reference.py
        "throttled": fleet.throttled,
        "objects": sum(s.objects for s in done),
        "elapsed_s": max((s.elapsed_s for s in done), default=0.0),
    }
    errors = errors_line(fleet.outcomes, secrets)
    if status == "failed":
        failed = sum(c in PERMANENT for c in codes)
        others = " (the others are complete)" if failed < len(codes) else ""
        result["error"] = f"{failed} of {len(codes)} harvests failed{others}: {errors}"
    elif errors:
        result["error"] = errors
    return result


def _entry(outcome: Outcome, secrets: Sequence[str]) -> dict[str, Any]:
    code = outcome.exit_code
    entry: dict[str, Any] = {
        "status": harvest_status(code),
        "exit_code": code,
        "stopped": code == EXIT_INTERRUPTED,
    }
    why = _why(outcome, secrets)
    if why is not None:
        entry["error"] = why
    if outcome.summary is not None:
        entry.update(_counts(outcome.summary))
    return entry


def _why(outcome: Outcome, secrets: Sequence[str]) -> str | None:
    why = outcome.error if outcome.error is not None else outcome.internal
    return None if why is None else " ".join(redact(str(why), secrets).split())  # one line, no secret


def errors_line(outcomes: Sequence[Outcome], secrets: Sequence[str]) -> str:
    """Each error once, after the harvests it ended: 'harvest "b": ...; harvests "c", "d": ...'."""
    groups: dict[str, list[str]] = {}
    for outcome in outcomes:
        why = _why(outcome, secrets)
        if why is not None:
            groups.setdefault(why, []).append(outcome.name)
    return "; ".join(f"{_harvests(names)}: {why}" for why, names in groups.items())


def _harvests(names: Sequence[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"harvests {quoted}" if len(names) > 1 else f"harvest {quoted}"


def _emit_totals(fleet: FleetResult, sink_url: str) -> None:
    """One EMF line for the whole list (dimension Deployment: the shared sink's URL): the shared
    budget's use and how many harvests ended how."""
    codes = [o.exit_code for o in fleet.outcomes]
    done = [o.summary for o in fleet.outcomes if o.summary is not None]
    elapsed = max((s.elapsed_s for s in done), default=0.0)
    figures = [
        metrics.Metric("Harvests", "Count", len(codes)),
        metrics.Metric("HarvestsComplete", "Count", codes.count(EXIT_OK)),
        metrics.Metric("HarvestsFailed", "Count", sum(c in PERMANENT for c in codes)),
        metrics.Metric("Requests", "Count", fleet.requests),
        metrics.Metric("Throttled", "Count", fleet.throttled),
        metrics.Metric("AchievedRate", "Count/Second", fleet.requests / elapsed if elapsed > 0 else 0.0),
    ]
    namespace = os.environ.get(metrics.NAMESPACE_ENV) or metrics.DEFAULT_NAMESPACE
    dimensions = {DEPLOYMENT_DIMENSION: sink_url.rstrip("/")}
    sys.stdout.write(metrics.emf_line(namespace, dimensions, figures, int(time.time() * 1000)) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# The event


def _mode(event: dict[str, Any]) -> Mode:
    mode = event.get("mode", "run")
    if mode not in ("run", "refresh"):
        raise ConfigError(f'event "mode" must be "run" or "refresh", not {mode!r}')
    return "refresh" if mode == "refresh" else "run"


def _fresh_id(event: dict[str, Any]) -> str | None:
    value = event.get("fresh_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError('event "fresh_id" must be a non-empty string')
    return value


def _only(event: dict[str, Any], deployment: Deployment) -> Deployment:
    if "only" not in event:
        return deployment
    names = event["only"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError('event "only" must be a non-empty list of harvest names, e.g. ["movies"]')
    known = [h.name for h in deployment.harvests]
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(known) if deployment.listed else "none: it is one harvest"
        raise ConfigError(f'event "only" names {unknown[0]!r}: no such harvest (the config lists {listed})')
    return deployment.only(names)


async def _deployment_from_event(event: dict[str, Any]) -> Deployment:
    if "settings" in event:
        if not isinstance(event["settings"], dict):
            raise ConfigError('event "settings" must be an object')
        return config_mod.deployment_from_mapping(event["settings"])
    uri = event.get("config")
    if not isinstance(uri, str) or not is_s3_url(uri):
        raise ConfigError('the event must name "config": "s3://bucket/key.toml" or carry "settings"')
    raw = await _read_s3_text(uri, event.get("endpoint_url") or None)
    try:
        document = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{uri}: not valid TOML: {exc}") from None
    return config_mod.deployment_from_mapping(document)


async def _read_s3_text(uri: str, endpoint_url: str | None) -> str:
    """The config object's text. A missing or denied object is a config error; S3 failing for now
    raises InputUnavailable, so Lambda's retries apply."""
    from . import aws

    bucket, key = parse_s3_url(uri)
    try:
        async with aws.s3_client(endpoint_url) as s3:
            obj = await s3.get_object(Bucket=bucket, Key=key)
            async with obj["Body"] as body:
                data: bytes = await body.read()
    except aws.ERRORS as exc:
        reason = aws.describe(exc, aws.endpoint_name(endpoint_url, None))
        if aws.is_transient(exc):
            raise InputUnavailable(f"cannot read config {uri}: {reason}") from None
        raise ConfigError(f"cannot read config {uri}: {reason}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {uri} is not UTF-8 text") from None


_INVOCATIONS = itertools.count()  # in this process: the first one is the cold start


def _log_fields(context: LambdaContext) -> dict[str, object]:
    """Powertools' Lambda keys, and the request id as the invocation's, on every line it logs."""
    request_id = getattr(context, "aws_request_id", None)
    memory = str(getattr(context, "memory_limit_in_mb", ""))  # an int, or a str in some runtimes
    trace = os.environ.get("_X_AMZN_TRACE_ID", "").split(";")[0].removeprefix("Root=")
    fields = {
        "invocation": request_id or new_invocation_id(),
        "cold_start": next(_INVOCATIONS) == 0,
        "function_name": getattr(context, "function_name", None),
        "function_memory_size": int(memory) if memory.isdigit() else None,
        "function_arn": getattr(context, "invoked_function_arn", None),
        "function_request_id": request_id,
        "xray_trace_id": trace or None,
    }
    return {k: v for k, v in fields.items() if v is not None}
