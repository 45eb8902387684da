"""Logging for every way in: one handler on stderr writing text or JSON lines, the harvest's fields on
every line, and no credential in anything it writes (message, fields, traceback).

JSON lines carry the keys CloudWatch users know from AWS Lambda Powertools' Logger (`level`,
`location`, `message`, `timestamp`, `service`, `exception_name`, `exception`, and the Lambda context's
`function_*` and `cold_start` when the handler binds them), then the fields bound with `bind()` and a
record's `extra` fields.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets as random
import sys
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal
from urllib.parse import quote

import msgspec
import orjson

from ..config import Settings, harvest_id
from ..lake.state import state_key
from .stats import Summary

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
FORMAT_ENV = "HARVESTER_LOG_FORMAT"
LEVEL_ENVS = ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL")  # Powertools' name first, then its older one
SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"
DEFAULT_SERVICE = "harvester"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Set in the running task and copied into the tasks it starts, so no signature has to carry them.
_fields: ContextVar[Mapping[str, object]] = ContextVar("harvester_log_fields", default=MappingProxyType({}))

# What every LogRecord has: anything else on a record came from `extra=` and becomes a JSON field.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def bind(**fields: object) -> None:
    """Add fields to every line logged from now on in this task and the tasks it starts."""
    _fields.set(_merged(fields))


def _merged(fields: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType({**_fields.get(), **fields})


def harvest_name(settings: Settings) -> str:
    """Names a harvest in logs and metrics: the URL of its state object, unique per prefix and kind."""
    return f"{settings.sink.url.rstrip('/')}/{state_key(harvest_id(settings))}"


def new_invocation_id() -> str:
    return random.token_hex(6)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _spellings(secrets: Sequence[str]) -> list[str]:
    """A secret as it may appear in output: as is, escaped inside a JSON string, percent-encoded in a URL."""
    found = {v for s in secrets if s for v in (s, orjson.dumps(s).decode()[1:-1], quote(s, safe=""))}
    return sorted(found, key=len, reverse=True)  # a longer spelling may contain a shorter one


def _timestamp(created: float) -> str:
    """ISO 8601 with milliseconds and the offset, as Powertools' `use_rfc3339` writes it."""
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback's newlines are escaped)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": _timestamp(record.created),
            "service": self._service,
        }
        doc.update(_fields.get())
        doc.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRS)
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception_name"] = record.exc_info[0].__name__
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class _Handler(logging.Handler):
    """Writes each record to the current `sys.stderr`, redacting the whole formatted text: message,
    fields, exception and stack alike."""

    def __init__(self, formatter: logging.Formatter, secrets: Sequence[str]) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.json = isinstance(formatter, JsonFormatter)
        self._secrets = _spellings(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = sys.stderr  # looked up per record: pytest and the Lambda runtime replace it
            if stream.isatty():
                text = "\r\x1b[2K" + text  # over the progress bar, which is drawn again below
            stream.write(text + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # The stock one prints the record's arguments, unredacted.
        if logging.raiseExceptions:
            where = f"{record.name}:{record.lineno}"
            sys.stderr.write(f"harvester: a log record from {where} could not be written\n")


def choose_format(option: str | None, env: Mapping[str, str], *, in_lambda: bool = False) -> LogFormat:
    """The option, else HARVESTER_LOG_FORMAT, else JSON in Lambda and text elsewhere."""
    for value in (option, env.get(FORMAT_ENV, "").strip().lower()):
        if value in FORMATS:
            return value
    return "json" if in_lambda or env.get("AWS_LAMBDA_FUNCTION_NAME") else "text"


def choose_level(verbose: bool, env: Mapping[str, str]) -> int:
    """-v is debug; else POWERTOOLS_LOG_LEVEL (or LOG_LEVEL) when it names a level; else INFO."""
    if verbose:
        return logging.DEBUG
    for name in LEVEL_ENVS:
        level = logging.getLevelName(env.get(name, "").strip().upper())
        if isinstance(level, int):
            return level
    return logging.INFO


def setup_logging(
    verbose: bool,
    secrets: Sequence[str],
    *,
    log_format: str | None = None,
    in_lambda: bool = False,
    fields: Mapping[str, object] | None = None,
) -> Callable[[], None]:
    """Make our handler the root logger's only one, and bind `fields` (by default a new `invocation`
    id). Returns how to put back what was there, as the Lambda handler does after each invocation."""
    env = os.environ
    fmt = choose_format(log_format, env, in_lambda=in_lambda)
    formatter = JsonFormatter(env.get(SERVICE_ENV) or DEFAULT_SERVICE) if fmt == "json" else None
    root, ours = logging.getLogger(), logging.getLogger("harvester")
    handlers, root_level, our_level = root.handlers[:], root.level, ours.level
    root.handlers[:] = [_Handler(formatter or logging.Formatter(TEXT_FORMAT), secrets)]
    root.setLevel(logging.WARNING)  # other libraries: warnings and errors only
    ours.setLevel(choose_level(verbose, env))
    token = _fields.set(_merged(fields or {"invocation": new_invocation_id()}))
    for complaint in _ignored(env, log_format):
        ours.warning("%s", complaint)

    def restore() -> None:
        with contextlib.suppress(ValueError):  # bound in another context, which has them alone
            _fields.reset(token)
        root.handlers[:] = handlers
        root.setLevel(root_level)
        ours.setLevel(our_level)

    return restore


def _ignored(env: Mapping[str, str], option: str | None) -> list[str]:
    """Environment settings that name no format or level: said once, rather than failing a run."""
    found = []
    value = env.get(FORMAT_ENV, "")
    if value and option is None and value.strip().lower() not in FORMATS:
        found.append(f"ignoring {FORMAT_ENV}={value!r}: not one of {', '.join(FORMATS)}")
    for name in LEVEL_ENVS:
        value = env.get(name, "")
        if value and not isinstance(logging.getLevelName(value.strip().upper()), int):
            found.append(f"ignoring {name}={value!r}: not a log level")
    return found


def json_active() -> bool:
    return any(isinstance(h, _Handler) and h.json for h in logging.getLogger().handlers)


def log_summary(summary: Summary) -> None:
    """The summary as one event with its fields, for JSON logs (text users get it printed on stdout)."""
    if json_active():
        fields = {"event": "summary", **msgspec.to_builtins(summary)}
        logging.getLogger("harvester").info("summary", extra=fields, stacklevel=2)
