"""S3 faults in front of moto: the fault proxy itself, then harvests that must end exactly once through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import moto.s3.models
import pytest
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import ExponentialBackoff
from fixtures_s3 import open_uploads, s3_client, s3_objects
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX, Expected, distinct_ids, expected_movies, read_s3_lake
from s3_faults import FaultCounts, FaultRates, S3FaultProxy, choose_fault

from harvester import runner
from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.lake.sink.s3 import S3Sink
from tmdb_standin import RunningStandin, write_movies_csv

CREDS = Credentials(access_token=Secret(TOKEN))
KiB = 1024


@pytest.fixture
async def proxy(s3_bucket: tuple[str, str]) -> AsyncIterator[S3FaultProxy]:
    endpoint, _ = s3_bucket
    async with S3FaultProxy(endpoint, seed=20261123) as running:
        yield running


# ---------------------------------------------------------------------------------------------
# The proxy


def test_each_kind_owns_a_slice_of_the_draw() -> None:
    rates = FaultRates(slowdown=0.1, internal=0.1, reset=0.1, upload_part=0.2)
    assert choose_fault(rates, upload_part=True, draw=0.05) == "upload_part"
    assert choose_fault(rates, upload_part=True, draw=0.25) == "slowdown"
    assert choose_fault(rates, upload_part=False, draw=0.05) == "slowdown"
    assert choose_fault(rates, upload_part=False, draw=0.15) == "internal"
    assert choose_fault(rates, upload_part=False, draw=0.25) == "reset"
    assert choose_fault(rates, upload_part=False, draw=0.35) is None
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultRates.each(0.3)


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("slowdown", 503, "SlowDown"), ("internal", 500, "InternalError")]
)
async def test_error_answers_are_not_forwarded(
    proxy: S3FaultProxy, s3_bucket: tuple[str, str], kind: str, status: int, code: str
) -> None:
    endpoint, bucket = s3_bucket
    proxy.rates = FaultRates(**{kind: 1.0})
    async with s3_client(proxy.url) as client:  # retries off: the client sees the fault itself
        for call in (
            client.put_object(Bucket=bucket, Key="k", Body=b"x"),
            client.list_objects_v2(Bucket=bucket),
        ):
            with pytest.raises(ClientError) as info:
                await call
            assert info.value.response["Error"]["Code"] == code
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert await s3_objects(endpoint, bucket) == {}  # the PUT never reached moto
    assert proxy.counts == FaultCounts(requests=2, **{kind: 2})


async def test_failed_upload_part_is_not_forwarded_and_only_parts_fail(
    proxy: S3FaultProxy, s3_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = s3_bucket
    proxy.rates = FaultRates(upload_part=1.0)
    async with s3_client(proxy.url) as client:
        await client.put_object(Bucket=bucket, Key="small", Body=b"x")
        upload = await client.create_multipart_upload(Bucket=bucket, Key="big")
        with pytest.raises(ClientError) as info:
            await client.upload_part(
                Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"part"
            )
        assert info.value.response["Error"]["Code"] == "InternalError"
    async with s3_client(endpoint) as moto_client:
        parts = await moto_client.list_parts(Bucket=bucket, Key="big", UploadId=upload["UploadId"])
    assert parts.get("Parts", []) == []
    assert proxy.counts == FaultCounts(requests=3, upload_part=1)


async def test_reset_answers_after_the_request_took_effect(
    proxy: S3FaultProxy, s3_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = s3_bucket
    async with s3_client(proxy.url) as client:
        await client.put_object(Bucket=bucket, Key="a", Body=b"0123456789" * 100)
        proxy.rates = FaultRates(reset=1.0)
        # No body in a PUT's answer: the connection dies before any of it, yet the object is written.
        with pytest.raises((BotoConnectionError, HTTPClientError)):
            await client.put_object(Bucket=bucket, Key="b", Body=b"written")
        # A body is cut halfway: a listing fails inside botocore, an object's body in the reader's hands.
        with pytest.raises(HTTPClientError):
            await client.list_objects_v2(Bucket=bucket)
        answer = await client.get_object(Bucket=bucket, Key="a")
        with pytest.raises(aiohttp.ClientPayloadError, match="received 500 of 1000 bytes"):
            async with answer["Body"] as body:
                await body.read()
    assert await s3_objects(endpoint, bucket) == {"a": b"0123456789" * 100, "b": b"written"}
    # aiohttp itself sends a PUT again when its reused connection died before any answer: hence a set.
    assert {(method, path) for _, method, path in proxy.injected} == {
        ("PUT", f"/{bucket}/b"),
        ("GET", f"/{bucket}?list-type=2&encoding-type=url"),
        ("GET", f"/{bucket}/a"),
    }


async def test_rate_zero_passes_everything_through(proxy: S3FaultProxy, s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    async with s3_client(proxy.url) as client:
        await client.put_object(Bucket=bucket, Key="a", Body=b"x" * 5000)
        head = await client.head_object(Bucket=bucket, Key="a")
        assert head["ContentLength"] == 5000  # a HEAD keeps the object's length, not its empty body's
        got = await client.get_object(Bucket=bucket, Key="a")
        async with got["Body"] as body:
            assert await body.read() == b"x" * 5000
        await client.delete_object(Bucket=bucket, Key="a")
    assert await s3_objects(endpoint, bucket) == {}
    assert proxy.counts == FaultCounts(requests=4)


async def test_moto_api_is_never_faulted_nor_counted(proxy: S3FaultProxy) -> None:
    proxy.rates = FaultRates(internal=1.0)
    async with aiohttp.ClientSession() as session, session.post(f"{proxy.url}/moto-api/reset") as resp:
        assert resp.status == 200
    assert proxy.counts == FaultCounts()


# ---------------------------------------------------------------------------------------------
# A harvest under faults

PART = 256 * KiB  # small parts (moto lowered to accept them), so multipart uploads have several
# A few % per kind (a part is also exposed to the other three); about 150 S3 requests per run, 45 of them
# parts. A request can still meet a fault in all of botocore's 4 attempts (about 2% of seeds): the harvest
# then fails as it should, and another seed is the fix.
ERRORS = FaultRates(slowdown=0.04, internal=0.04, upload_part=0.06)
EVERY_FAULT = FaultRates(slowdown=0.04, internal=0.04, reset=0.04, upload_part=0.06)
STATE = "/_harvest/state-"  # the state object, saved with If-None-Match / If-Match


@pytest.fixture
def fast_s3_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries as configured, minus their back-off sleeps (up to seconds for SlowDown)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", PART)

    def open_sink(settings: SinkSettings) -> S3Sink:
        return S3Sink(settings, part_size=PART)

    monkeypatch.setattr(runner, "open_sink", open_sink)


@dataclass
class Run:
    """One harvest of 300 titles (~275 movies) through a fault proxy in front of moto."""

    settings: Settings
    expected: Expected
    moto: str
    bucket: str

    async def harvest(self) -> runner.RunResult:
        return await runner.harvest(self.settings, CREDS, progress=False)

    async def assert_exactly_once(self) -> None:
        lake = await read_s3_lake(self.moto, self.bucket)  # moto itself, behind the proxy
        records = lake.record_ids()
        missing, extra = self.expected.found - set(records), set(records) - self.expected.found
        assert not missing and not extra, f"{len(missing)} movies missing, {len(extra)} extra"
        assert max(records.values()) == 1, [i for i, n in records.items() if n > 1]
        assert lake.miss_reasons() == self.expected.misses
        assert len(lake.outcomes) == len(self.expected.misses)
        assert await open_uploads(self.moto, self.bucket) == []


@pytest.fixture
async def faulty(
    standin: RunningStandin, s3_bucket: tuple[str, str], tmp_path: Path, seed: int
) -> AsyncIterator[tuple[Run, S3FaultProxy]]:
    """A harvest and its proxy, seeded by the test's `seed` parameter; no faults until the test sets them."""
    moto_endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 300, seed=13)
    async with S3FaultProxy(moto_endpoint, seed=seed) as proxy:
        settings = Settings(
            tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=1000.0, concurrency=8, timeout_s=5.0),
            source=SourceSettings(path=str(csv)),
            # Chunks of 20 records (~600 KB) go up in 3 parts; the last, smaller one and the bookkeeping
            # objects in one PUT.
            sink=SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=proxy.url, chunk_size=20),
        )
        yield Run(settings, expected_movies(distinct_ids(csv)), moto_endpoint, bucket), proxy


@pytest.mark.parametrize("seed", [3])
@pytest.mark.usefixtures("fast_s3_retries", "small_parts")
async def test_harvest_under_s3_error_answers_ends_exactly_once(faulty: tuple[Run, S3FaultProxy]) -> None:
    run, proxy = faulty
    proxy.rates = ERRORS
    result = await run.harvest()
    proxy.rates = FaultRates()
    assert result.status == "complete"
    await run.assert_exactly_once()
    c = proxy.counts
    assert min(c.slowdown, c.internal, c.upload_part) >= 1 and c.reset == 0, c


@pytest.mark.parametrize("seed", [5])
@pytest.mark.usefixtures("fast_s3_retries", "small_parts")
async def test_harvest_under_every_s3_fault_ends_exactly_once(faulty: tuple[Run, S3FaultProxy]) -> None:
    """Resets after S3 applied the request included: a conditional save whose answer is lost is sent again
    by botocore and refused (412); the sink reads the object back and finds its own bytes."""
    run, proxy = faulty
    proxy.rates = EVERY_FAULT
    proxy.script("reset", "PUT", STATE, skip=1)  # the first commit's save: met whatever the request order
    result = await run.harvest()
    proxy.rates = FaultRates()
    assert result.status == "complete"
    await run.assert_exactly_once()
    c = proxy.counts
    assert min(c.slowdown, c.internal, c.reset, c.upload_part) >= 1, c


@pytest.mark.parametrize("seed", [0])
@pytest.mark.usefixtures("small_parts")
async def test_a_cut_state_save_loses_nothing(faulty: tuple[Run, S3FaultProxy]) -> None:
    """A save S3 applied but whose answer was lost is the run's own: it goes on, and no chunk is lost."""
    run, proxy = faulty
    proxy.script("reset", "PUT", STATE, skip=1)
    result = await run.harvest()
    assert result.status == "complete"
    await run.assert_exactly_once()


@pytest.mark.parametrize("seed", [0])
@pytest.mark.usefixtures("small_parts")
async def test_a_cut_state_read_is_read_again(faulty: tuple[Run, S3FaultProxy]) -> None:
    """botocore does not retry a GET whose body (even a 404's) is cut: the sink does."""
    run, proxy = faulty
    proxy.script("reset", "GET", STATE)  # a new harvest: moto's answer is 404 NoSuchKey, cut halfway
    result = await run.harvest()
    assert result.status == "complete"
    await run.assert_exactly_once()
