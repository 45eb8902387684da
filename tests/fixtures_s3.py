"""S3 over real sockets for tests: one moto server per session, a fresh bucket per test.

aiobotocore cannot run under moto's in-process `mock_aws` (its responses are not awaitable), so the
tests talk HTTP to `ThreadedMotoServer` exactly as they would to AWS. conftest.py pulls these in with
`from fixtures_s3 import *`.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from harvester.config import SinkSettings
from harvester.lake.sink import Sink, open_sink

__all__ = [
    "BUCKET",
    "SINK_PREFIX",
    "moto_server",
    "open_uploads",
    "s3_bucket",
    "s3_client",
    "s3_objects",
    "sink",
]

BUCKET = "harvest-test"
SINK_PREFIX = "Raw/TMDB/JSON"  # where the `sink` fixture writes in the bucket

# Every AWS setting the botocore credential/config chain could pick up from the developer's machine.
# Removing them keeps a real ~/.aws profile, SSO session or endpoint override out of the tests.
_AWS_ENV_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1, with fake credentials in the environment."""
    nowhere = tmp_path_factory.mktemp("no-aws-config")
    with pytest.MonkeyPatch.context() as mp:
        for name in _AWS_ENV_TO_CLEAR:
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # Files that do not exist: no real profile, region or credential can leak in.
        mp.setenv("AWS_CONFIG_FILE", os.fspath(nowhere / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.fspath(nowhere / "credentials"))
        # A test that removes the credentials must fail at once, not wait on the EC2 metadata service.
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(moto_server: str) -> tuple[str, str]:
    """(endpoint_url, bucket): moto wiped clean, then one empty bucket."""
    _request("POST", f"{moto_server}/moto-api/reset")
    # A bare PUT creates a bucket (moto does not check signatures), and keeps this fixture synchronous
    # so it needs no event loop of its own.
    _request("PUT", f"{moto_server}/{BUCKET}")
    return moto_server, BUCKET


@pytest.fixture(params=["local", "s3"])
async def sink(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sink]:
    """Each sink kind in turn: a local directory, then a prefix in a fresh bucket on moto's server."""
    if request.param == "s3":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        settings = SinkSettings(url=f"s3://{bucket}/{SINK_PREFIX}", endpoint_url=endpoint)
    else:
        settings = SinkSettings(url=str(tmp_path / "out"))
    s = open_sink(settings)
    try:
        yield s
    finally:
        await s.aclose()


# One session for all helper clients: it caches the parsed service model, which makes each new client
# ~10x cheaper. Sessions hold no loop-bound state (clients do), so sharing it across tests is safe.
_session = get_session()


@asynccontextmanager
async def s3_client(endpoint_url: str) -> AsyncIterator[Any]:
    """A raw aiobotocore client on the moto server, for setting up and checking state behind a sink."""
    async with _session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        # Explicit, so a test that removes the credentials from the environment can still inspect S3.
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(retries={"mode": "standard", "total_max_attempts": 1}),
    ) as client:
        yield client


async def s3_objects(endpoint_url: str, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under `prefix` (full keys) with its bytes."""
    out: dict[str, bytes] = {}
    async with s3_client(endpoint_url) as client:
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                resp = await client.get_object(Bucket=bucket, Key=item["Key"])
                async with resp["Body"] as body:
                    out[item["Key"]] = await body.read()
    return out


async def open_uploads(endpoint_url: str, bucket: str) -> list[str]:
    """The keys of multipart uploads that were started and neither completed nor aborted."""
    keys: list[str] = []
    async with s3_client(endpoint_url) as client:
        async for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            keys.extend(u["Key"] for u in page.get("Uploads", []))
    return sorted(keys)


def _request(method: str, url: str) -> None:
    req = urllib.request.Request(url, method=method, data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
