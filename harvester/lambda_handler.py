"""AWS Lambda entry point: `harvester.lambda_handler.handler`.

Each invocation harvests until shortly before its deadline, commits, and returns
`{"status": "complete" | "incomplete", "stopped": bool, ...counts}` (stopped: cut short by the deadline;
incomplete and not stopped: titles are pending after their retries); invoking it again continues from
the saved state (a Step Functions loop does exactly that, see deploy/). The event names the config:

    {"config": "s3://bucket/harvester/config.toml"}          a TOML file in S3
    {"settings": {"tmdb": {...}, "source": {...}, ...}}       or the settings inline
    optional: "mode": "refresh" (take only what changed since the last complete run, as a new run);
    "fresh": true, starting the harvest over, with "fresh_id": an id of that request (the
    Step Functions execution's): invocations that carry the same fresh_id continue the run the first
    one started, so a failed fresh invocation can be retried as it is and is never lost;
    "margin_s": seconds kept for drain + flush

Everything (clients, limiter, event loop) is created per invocation: warm starts reuse this module
but not an event loop, and module-level clients fail there with "Event loop is closed".
A config, credential or state problem returns status "failed" (retrying cannot fix it); TMDB
unavailable returns "incomplete", not stopped, like titles left pending (the state machine pauses before
the next try); anything else transient raises, so Lambda's and Step Functions' retries apply.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import tomllib
from typing import Any, Protocol

import msgspec

from . import config as config_mod
from .config import Credentials, Settings, is_s3_url, parse_s3_url
from .errors import ConfigError, CredentialError, InputUnavailable, StateError, TmdbUnavailable
from .ops import metrics
from .ops.logs import bind, harvest_name, log_summary, new_invocation_id, setup_logging
from .runner import Mode, harvest
from .secret import forget, load_credentials

log = logging.getLogger("harvester")

DEFAULT_GRACE_S = 5.0
DEFAULT_MARGIN_S = 20.0  # drain (grace) + flush the partial chunk + save state and summary


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


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
    settings = await _settings_from_event(event)
    bind(harvest=harvest_name(settings))
    grace = min(DEFAULT_GRACE_S, max(0.5, budget_s / 10))
    result = await harvest(
        settings,
        credentials,
        mode=_mode(event),
        fresh=bool(event.get("fresh", False)),
        fresh_id=_fresh_id(event),
        deadline=deadline,
        grace_s=grace,
        progress=True,  # CloudWatch gets the periodic progress log lines
    )
    s = result.summary
    log_summary(s)
    metrics.emit(s, harvest_name(settings))  # one EMF line on stdout: CloudWatch makes it metrics
    return {
        "status": result.status,
        # Incomplete and not stopped: it went through its input and titles are pending after their
        # retries; the state machine waits before the next try (deploy/statemachine.asl.json).
        "stopped": result.stopped,
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


async def _settings_from_event(event: dict[str, Any]) -> Settings:
    if "settings" in event:
        if not isinstance(event["settings"], dict):
            raise ConfigError('event "settings" must be an object')
        return config_mod.from_mapping(event["settings"])
    uri = event.get("config")
    if not isinstance(uri, str) or not is_s3_url(uri):
        raise ConfigError('the event must name "config": "s3://bucket/key.toml" or carry "settings"')
    raw = await _read_s3_text(uri, event.get("endpoint_url") or None)
    try:
        return config_mod.from_mapping(tomllib.loads(raw))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{uri}: not valid TOML: {exc}") from None


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
