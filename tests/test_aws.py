"""harvester/aws.py: what botocore's errors mean and how they read, and the one client configuration."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)

from harvester import aws


def _client_error(status: int, code: str, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("exc", "precondition", "not_implemented", "transient", "missing"),
    [
        (_client_error(412, "PreconditionFailed"), True, False, False, False),
        (_client_error(409, "ConditionalRequestConflict"), True, False, False, False),
        (_client_error(409, "BucketAlreadyOwnedByYou"), False, False, False, False),
        (_client_error(501, "NotImplemented"), False, True, True, False),
        (_client_error(400, "NotImplemented"), False, True, False, False),
        (_client_error(400, "InvalidArgument"), False, False, False, False),
        (_client_error(503, "SlowDown"), False, False, True, False),
        (_client_error(500, "InternalError"), False, False, True, False),
        (_client_error(400, "RequestTimeout"), False, False, True, False),
        (_client_error(403, "AccessDenied"), False, False, False, False),
        (_client_error(404, "NoSuchKey"), False, False, False, True),
        (_client_error(404, "404"), False, False, False, True),
        (_client_error(404, "NoSuchBucket"), False, False, False, False),
        (ConnectionClosedError(endpoint_url="http://s3"), False, False, True, False),
        (ReadTimeoutError(endpoint_url="http://s3"), False, False, True, False),
        (EndpointConnectionError(endpoint_url="http://s3"), False, False, True, False),
        (IncompleteReadError(actual_bytes=1, expected_bytes=2), False, False, True, False),
        (aiohttp.ClientPayloadError("cut"), False, False, True, False),
        (NoCredentialsError(), False, False, False, False),
    ],
)
def test_what_an_error_means(
    exc: Exception, precondition: bool, not_implemented: bool, transient: bool, missing: bool
) -> None:
    assert aws.is_precondition_failed(exc) is precondition
    assert aws.is_not_implemented(exc) is not_implemented
    assert aws.is_transient(exc) is transient
    assert aws.is_missing(exc) is missing


E = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (_client_error(404, "NoSuchKey", "The specified key does not exist."), "no such key"),
        (_client_error(404, "NoSuchBucket", "The specified bucket does not exist"), "no such bucket"),
        (_client_error(404, "404", "Not Found"), "no such bucket or key"),
        (_client_error(403, "AccessDenied", "no s3:PutObject"), "access denied (no s3:PutObject)"),
        (_client_error(403, "403", "Forbidden"), "access denied"),
        (_client_error(503, "SlowDown", "Reduce your request rate."), "SlowDown: Reduce your request rate."),
        (EndpointConnectionError(endpoint_url="http://x"), f"cannot connect to {E}"),
        (ConnectionClosedError(endpoint_url="http://x"), f"the connection to {E} closed before S3 answered"),
        (ReadTimeoutError(endpoint_url="http://x"), "S3 did not answer in time"),
        (
            IncompleteReadError(actual_bytes=1, expected_bytes=2),
            f"the connection to {E} broke in the middle of a response",
        ),
        (
            NoCredentialsError(),
            "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)",
        ),
    ],
)
def test_describe_is_a_few_words(exc: Exception, text: str) -> None:
    assert aws.describe(exc, E) == text


def test_endpoint_name() -> None:
    assert aws.endpoint_name("http://127.0.0.1:9", "eu-west-1") == "http://127.0.0.1:9"
    assert aws.endpoint_name(None, "eu-west-1") == "AWS S3 in eu-west-1"
    assert aws.endpoint_name(None, None) == "AWS S3"


async def test_one_client_configuration_from_the_module_constants(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", 7.0)
    async with aws.s3_client(moto_server, "eu-west-1") as client:
        config = client.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": 2}
        assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
        assert config.max_pool_connections == aws.MAX_POOL_CONNECTIONS
        assert client.meta.region_name == "eu-west-1"
        assert "Buckets" in await client.list_buckets()  # a working client on the endpoint given


async def test_clients_share_the_parsed_service_models_but_not_credentials(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first")
    async with aws.s3_client(moto_server, "eu-west-1") as first:
        assert first._request_signer._credentials.access_key == "first"
        loader = first._loader
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")  # a warm start with new credentials
    async with aws.s3_client(moto_server, "eu-west-1") as second:
        assert second._request_signer._credentials.access_key == "rotated"
        assert "Buckets" in await second.list_buckets()
        assert second._loader is loader  # the models parsed for the first client serve the second


# ---------------------------------------------------------------------------------------------
# The Lambda's config read goes through the same client and the same reading of errors


async def test_lambda_config_read(
    s3_bucket: tuple[str, str], unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fixtures_s3 import s3_client

    from harvester.errors import ConfigError, InputUnavailable
    from harvester.lambda_handler import _read_s3_text

    endpoint, bucket = s3_bucket
    async with s3_client(endpoint) as client:
        await client.put_object(Bucket=bucket, Key="conf/h.toml", Body="[sink]\nurl = 'ç'\n".encode())
    assert await _read_s3_text(f"s3://{bucket}/conf/h.toml", endpoint) == "[sink]\nurl = 'ç'\n"
    with pytest.raises(ConfigError, match=f"^cannot read config s3://{bucket}/conf/no.toml: no such key$"):
        await _read_s3_text(f"s3://{bucket}/conf/no.toml", endpoint)
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    nowhere = f"http://127.0.0.1:{unused_tcp_port}"
    with pytest.raises(InputUnavailable, match=f"cannot connect to {nowhere}$"):  # transient: Lambda retries
        await _read_s3_text(f"s3://{bucket}/conf/h.toml", nowhere)
