"""The TMDB token from AWS Secrets Manager (harvester/secret.py), through the CLI and the Lambda handler.

Against moto's server (the one tests/fixtures_s3.py starts serves every service at one endpoint; botocore
is pointed at it by its own AWS_ENDPOINT_URL_SECRETS_MANAGER), and, for the answers moto does not give
(access denied, throttling, an outage, a garbled answer), a small HTTP server over a real socket.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from cli_helpers import cli_env, run_cli, write_config
from fixtures_tmdb import API_KEY, TOKEN

from harvester import aws, cli, lambda_handler, secret
from harvester.config import Credentials
from harvester.errors import CredentialError, SecretUnavailable
from harvester.ops.logs import setup_logging
from harvester.secret import SECRET_ENV, load_credentials, read_credentials
from tmdb_standin import RunningStandin, kind_of, movie_ids, tmdb_id_of

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SECRETS_MANAGER"  # botocore's own, per service
NAME = "harvester/tmdb-access-token"
MISSING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:harvester/nothing-AbCdEf"
ROTATED = "rotated-read-token-5d0e2b7a"


@pytest.fixture
def secrets_manager(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto wiped clean and botocore's Secrets Manager endpoint pointed at it; no TMDB_* variable set and
    nothing remembered from another test."""
    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
    monkeypatch.setenv(ENDPOINT_ENV, moto_server)
    for name in ("TMDB_ACCESS_TOKEN", "TMDB_API_KEY", SECRET_ENV):
        monkeypatch.delenv(name, raising=False)
    secret.forget()
    yield moto_server
    secret.forget()


@asynccontextmanager
async def sm(endpoint: str) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        yield client


async def create(endpoint: str, value: str | bytes, name: str = NAME) -> str:
    """A new secret holding `value`; its ARN."""
    kind = "SecretString" if isinstance(value, str) else "SecretBinary"
    async with sm(endpoint) as client:
        answer = await client.create_secret(Name=name, **{kind: value})
    return str(answer["ARN"])


async def put(endpoint: str, arn: str, value: str) -> None:
    async with sm(endpoint) as client:
        await client.put_secret_value(SecretId=arn, SecretString=value)


def load(arn: str, **env: str) -> Credentials:
    return load_credentials({SECRET_ENV: arn, **env})


# ---------------------------------------------------------------------------------------------
# What the secret holds


async def test_a_plain_token_is_read_and_registered_for_redaction(secrets_manager: str) -> None:
    arn = await create(secrets_manager, TOKEN + "\n")  # `--secret-string file://...` keeps a newline
    assert secret.region_of(arn) == "us-east-1"
    creds = await asyncio.to_thread(load, arn)
    assert creds.access_token == TOKEN and creds.api_key is None
    assert creds.secrets() == (TOKEN,)  # what log redaction and error lines hide
    assert TOKEN not in repr(creds)


@pytest.mark.parametrize(
    ("doc", "token", "key"),
    [
        ({"TMDB_ACCESS_TOKEN": TOKEN}, TOKEN, None),
        ({"TMDB_API_KEY": API_KEY, "note": "v3 key"}, None, API_KEY),
        ({"TMDB_ACCESS_TOKEN": TOKEN, "TMDB_API_KEY": API_KEY}, TOKEN, API_KEY),
    ],
)
async def test_a_json_secret_gives_either_key_or_both(
    secrets_manager: str, doc: dict[str, str], token: str | None, key: str | None
) -> None:
    arn = await create(secrets_manager, orjson.dumps(doc).decode())
    creds = await read_credentials(arn)
    assert (creds.access_token, creds.api_key) == (token, key)
    assert set(creds.secrets()) == {v for v in (token, key) if v}


@pytest.mark.parametrize(
    "value",
    [
        " \n",
        '{"password": "hunter2-do-not-print"}',
        '{"TMDB_ACCESS_TOKEN": 5, "x": "hunter2-do-not-print"}',
        "{hunter2-do-not-print",
        b"\x00hunter2-do-not-print",
    ],
)
async def test_a_secret_without_a_credential_is_refused_without_showing_its_value(
    secrets_manager: str, value: str | bytes
) -> None:
    arn = await create(secrets_manager, value)
    with pytest.raises(CredentialError) as err:
        await read_credentials(arn)
    message = str(err.value)
    assert arn in message and "\n" not in message
    assert "hunter2" not in message
    assert err.value.exit_code == 3


async def test_the_environment_wins_and_the_secret_is_not_read(secrets_manager: str) -> None:
    creds = await asyncio.to_thread(load, MISSING, TMDB_API_KEY=API_KEY)  # reading MISSING would fail
    assert creds.api_key == API_KEY and creds.access_token is None
    assert await asyncio.to_thread(load_credentials, {}) == Credentials()  # none at all: the CLI says so


async def test_read_once_and_kept_until_forgotten(secrets_manager: str) -> None:
    arn = await create(secrets_manager, TOKEN)
    assert (await asyncio.to_thread(load, arn)).access_token == TOKEN
    await put(secrets_manager, arn, ROTATED)
    assert (await asyncio.to_thread(load, arn)).access_token == TOKEN  # a warm start does not read it
    secret.forget()
    assert (await asyncio.to_thread(load, arn)).access_token == ROTATED


# ---------------------------------------------------------------------------------------------
# When it cannot be read


async def test_a_missing_or_deleted_secret_is_a_credential_error_naming_it(secrets_manager: str) -> None:
    with pytest.raises(CredentialError) as err:
        await read_credentials(MISSING)
    assert str(err.value).startswith(f"cannot read the TMDB secret {MISSING}: ResourceNotFoundException")
    arn = await create(secrets_manager, TOKEN)
    async with sm(secrets_manager) as client:
        await client.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    with pytest.raises(CredentialError, match="InvalidRequestException"):
        await read_credentials(arn)


class Stub:
    """An HTTP server that gives the queued answers, one per request: (status, JSON body or bytes)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = []
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        status, body = self.answers.pop(0)
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return web.Response(status=status, body=data, content_type="application/x-amz-json-1.1")


@pytest.fixture
async def stub(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stub]:
    """A Secrets Manager that answers what a test queues; botocore tries each request once."""
    stub = Stub()
    app = web.Application()
    app.router.add_post("/", stub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{port}")
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    try:
        yield stub
    finally:
        await runner.cleanup()


async def test_access_denied_is_a_credential_error(stub: Stub) -> None:
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/harvester/fn is not authorized to perform: "
        "secretsmanager:GetSecretValue"
    )
    stub.answers.append((400, {"__type": "AccessDeniedException", "message": denied}))
    with pytest.raises(CredentialError) as err:
        await read_credentials(MISSING)
    assert str(err.value) == f"cannot read the TMDB secret {MISSING}: access denied ({denied})"


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (500, {"__type": "InternalServiceError", "message": "oops"}, "InternalServiceError: oops"),
        (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}, "ThrottlingException"),
        (200, b"<html>a captive portal hunter2-do-not-print</html>", "gave no value"),
    ],
)
async def test_secrets_manager_failing_is_transient_exit_4(
    stub: Stub, status: int, body: Any, words: str
) -> None:
    stub.answers.append((status, body))
    with pytest.raises(SecretUnavailable) as err:
        await read_credentials(MISSING)
    assert words in str(err.value) and MISSING in str(err.value) and "try again later" in str(err.value)
    assert "hunter2" not in str(err.value)
    assert err.value.exit_code == 4


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_secrets_manager_unreachable_is_transient(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    with pytest.raises(SecretUnavailable, match="cannot connect to AWS Secrets Manager in us-east-1"):
        await read_credentials(MISSING)


def test_parse_secret() -> None:
    assert secret.parse_secret("s", f"  {TOKEN}\r\n") == Credentials(access_token=TOKEN)  # type: ignore[arg-type]
    with pytest.raises(CredentialError, match="the TMDB secret s is empty"):
        secret.parse_secret("s", "")
    with pytest.raises(CredentialError, match="without a TMDB_ACCESS_TOKEN or TMDB_API_KEY string"):
        secret.parse_secret("s", '{"TMDB_ACCESS_TOKEN": ""}')


def test_region_of() -> None:
    assert secret.region_of("arn:aws:secretsmanager:sa-east-1:123456789012:secret:a/b-AbCdEf") == "sa-east-1"
    assert secret.region_of("arn:aws-cn:secretsmanager:cn-north-1:1:secret:x") == "cn-north-1"
    assert secret.region_of("harvester/tmdb-access-token") is None  # a name: botocore's region


# ---------------------------------------------------------------------------------------------
# The entry points


async def test_cli_reads_the_token_from_the_secret(
    standin: RunningStandin, secrets_manager: str, tmp_path: Path
) -> None:
    arn = await create(secrets_manager, orjson.dumps({"TMDB_ACCESS_TOKEN": TOKEN}).decode())
    cfg = write_config(tmp_path / "config.toml", tmdb={"base_url": standin.base_url})
    env = {**cli_env(), SECRET_ENV: arn, ENDPOINT_ENV: secrets_manager}
    done = await run_cli("-v", "genres", "movie", "--config", str(cfg), env=env)
    assert done.code == 0, done.output
    assert "Action" in done.stdout and TOKEN not in done.output
    done = await run_cli("genres", "movie", "--config", str(cfg), env={**env, SECRET_ENV: MISSING})
    assert done.code == 3
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"harvester: error: cannot read the TMDB secret {MISSING}: ")


def test_cli_exits_4_when_secrets_manager_is_unreachable(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TMDB_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.setenv(SECRET_ENV, MISSING)
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    secret.forget()
    assert cli.main(["genres"]) == 4
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"harvester: error: cannot read the TMDB secret {MISSING} for now: cannot connect")


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def movie_event(standin: RunningStandin, lake: Path) -> dict[str, Any]:
    ids = [str(tmdb_id_of(i)) for i in movie_ids(60, seed=4) if kind_of(i) == "movie"][:3]
    return {
        "settings": {
            "tmdb": {"base_url": standin.base_url, "rate_limit": 100},
            "source": {"type": "ids", "ids": ids},
            "sink": {"url": str(lake)},
        },
        "margin_s": 1,
    }


async def test_lambda_reads_the_secret_once_and_again_after_tmdb_rejects_it(
    standin: RunningStandin, secrets_manager: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = await create(secrets_manager, TOKEN)
    monkeypatch.setenv(SECRET_ENV, arn)
    redacted: list[tuple[str, ...]] = []

    def spy(verbose: bool, secrets: tuple[str, ...], **kwargs: Any) -> Any:
        redacted.append(tuple(secrets))
        return setup_logging(verbose, secrets, **kwargs)

    monkeypatch.setattr(lambda_handler, "setup_logging", spy)
    event = movie_event(standin, tmp_path / "lake")

    async def invoke() -> dict[str, Any]:
        # The handler runs asyncio.run itself, as on Lambda: give it a thread of its own.
        return await asyncio.to_thread(lambda_handler.handler, event, Context())

    assert (await invoke())["status"] == "complete"
    assert redacted == [(TOKEN,)]  # the secret's token is hidden from every log line
    assert list((tmp_path / "lake").rglob("movies-*.json"))

    # The token is rotated: the warm function still holds the old one, which TMDB now refuses when the
    # next day's refresh asks it (a complete harvest asks TMDB nothing) ...
    await put(secrets_manager, arn, ROTATED)
    standin.config.valid_tokens = frozenset({ROTATED})
    event["mode"] = "refresh"
    failed = await invoke()
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    # ... so the next invocation reads the secret again.
    assert (await invoke())["status"] == "complete"
    assert redacted[-1] == (ROTATED,)


def test_lambda_fails_on_a_missing_secret_and_raises_on_an_outage(
    secrets_manager: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, MISSING)
    result = lambda_handler.handler({"config": "s3://b/c.toml"}, Context())
    assert (result["status"], result["exit_code"]) == ("failed", 3)  # retrying cannot fix it
    assert MISSING in result["error"]
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    secret.forget()
    with pytest.raises(SecretUnavailable):  # Lambda's and Step Functions' retries apply
        lambda_handler.handler({"config": "s3://b/c.toml"}, Context())
