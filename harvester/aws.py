"""AWS plumbing in one place: the client factories and the reading of botocore's errors.

Every S3 client of the harvester (the sink, the S3 input reader, the Lambda's config read) comes from
`s3_client`, and the Secrets Manager client (the TMDB token, see secret.py) from `secrets_client`, both
built with one retry policy: botocore's standard mode is the only retry layer for AWS requests. What a
ClientError means (missing, denied, transient, a failed condition) and the one line that describes it
are decided here, so the boundaries above only choose which of our errors to raise.

The constants are read when a client is made, so tests can shrink retries and timeouts with monkeypatch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.loaders import create_loader

MAX_ATTEMPTS = 4  # per request, first try included; standard mode backs off with jitter between them
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0  # a part of 8 MiB must be written and answered within this
MAX_POOL_CONNECTIONS = 16

# What a boundary catches from an S3 call: botocore's own errors, the HTTP layer's, and the OS's.
ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)

# ThrottlingException: Secrets Manager's SlowDown (HTTP 400), still throttled after botocore's retries.
_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "ThrottlingException"}
)
_MISSING = {"NoSuchKey": "no such key", "NoSuchBucket": "no such bucket"}
_DENIED = frozenset({"403", "AccessDenied", "Forbidden", "AccessDeniedException"})


# botocore's data loader caches the parsed service models and holds no credentials and no loop: one for
# the process, so every client after the first costs ~5 ms of CPU instead of ~60 (about 0.8 s each on a
# 128 MB Lambda, where a warm invocation makes two or three).
_LOADER = create_loader()


def _session() -> AioSession:
    # A fresh session each time: a session caches the credentials it resolved, and a Lambda warm start
    # or a test may have changed them since.
    session = get_session()
    session.register_component("data_loader", _LOADER)
    return session


def client_config() -> AioConfig:
    """The one client configuration, from the module constants as they are now."""
    return AioConfig(
        # total_max_attempts counts the first try; botocore's "max_attempts" would count only retries.
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


@asynccontextmanager
async def s3_client(endpoint_url: str | None = None, region: str | None = None) -> AsyncIterator[Any]:
    """An S3 client for the running loop (aiobotocore clients are bound to the loop that made them).

    An empty endpoint means AWS's own for the region; an empty region, botocore's usual chain
    (AWS_REGION on Lambda).
    """
    async with _session().create_client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=client_config()
    ) as client:
        yield client


@asynccontextmanager
async def secrets_client(region: str | None = None) -> AsyncIterator[Any]:
    """A Secrets Manager client for the running loop, configured as `s3_client`'s.

    Its endpoint is AWS's own for the region (an empty region: botocore's chain), unless botocore's
    own AWS_ENDPOINT_URL_SECRETS_MANAGER (or AWS_ENDPOINT_URL) names another, e.g. moto's in tests.
    """
    async with _session().create_client(
        "secretsmanager", region_name=region or None, config=client_config()
    ) as client:
        yield client


def endpoint_name(endpoint_url: str | None, region: str | None) -> str:
    """The endpoint as messages name it."""
    return endpoint_url or (f"AWS S3 in {region}" if region else "AWS S3")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


def is_missing(exc: BaseException) -> bool:
    """No such key (a GET's NoSuchKey, or a HEAD's bare 404)."""
    return isinstance(exc, ClientError) and error_code(exc) in ("NoSuchKey", "404", "NotFound")


def is_precondition_failed(exc: BaseException) -> bool:
    """An If-Match / If-None-Match that did not hold: 412, or the 409 AWS answers when two conditional
    writes race on one key (read again, then decide)."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    return http_status(exc) == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict")


def is_not_implemented(exc: BaseException) -> bool:
    """The store does not offer the operation or header at all (some S3-compatible stores)."""
    return isinstance(exc, ClientError) and (http_status(exc) == 501 or error_code(exc) == "NotImplemented")


def is_transient(exc: BaseException) -> bool:
    """Worth trying again later: a 5xx or throttling, a reset, a timeout, a body cut short.
    A credential, permission, parameter or missing-object error is not."""
    if isinstance(exc, ClientError):
        return error_code(exc) in _TRANSIENT_CODES or http_status(exc) >= 500
    # OSError includes TimeoutError; HTTPClientError covers read timeouts, closed connections and
    # broken bodies.
    return isinstance(
        exc, (BotoConnectionError, HTTPClientError, IncompleteReadError, aiohttp.ClientError, OSError)
    )


def describe(exc: BaseException, endpoint: str = "the S3 endpoint", service: str = "S3") -> str:
    """The cause in a few words, for the end of a one-line message."""
    if isinstance(exc, ClientError):
        code, message = error_code(exc), str(exc.response.get("Error", {}).get("Message", "")).strip()
        if code in _MISSING:
            return _MISSING[code]
        if code in ("404", "NotFound"):
            return "no such bucket or key"  # a HEAD's 404 has no body to say which
        if code in _DENIED:
            return f"access denied{f' ({message})' if message and message != 'Forbidden' else ''}"
        return f"{code}: {message}" if message else code
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)"
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
        return f"cannot connect to {endpoint}"
    if isinstance(exc, ConnectionClosedError):
        return f"the connection to {endpoint} closed before {service} answered"
    if isinstance(exc, ReadTimeoutError):
        return f"{service} did not answer in time"
    if isinstance(exc, (ResponseStreamingError, IncompleteReadError, aiohttp.ClientPayloadError)):
        return f"the connection to {endpoint} broke in the middle of a response"
    return f"{exc.__class__.__name__}: {exc}"
