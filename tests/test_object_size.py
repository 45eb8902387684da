"""[sink] max_object_mb: an object also closes before the record that would take it past the limit.

The encoder on its own (every format, gzip included: the size as stored), then the real pipeline on
100 TV records (details with credits, aggregate_credits and external_ids: 18 to 80 kB each) over the
stand-in, to moto's S3 and to a local directory, with a stop and a resume in the middle.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from fixtures_s3 import s3_objects
from fixtures_tmdb import TOKEN
from harvest_helpers import PREFIX

from harvester import config
from harvester.config import Credentials, Secret, Settings, SinkSettings, SourceSettings, TmdbSettings
from harvester.errors import ConfigError
from harvester.lake.chunks import GZIP_END, MB, ChunkEncoder, byte_limit
from harvester.lake.committer import Chunk, Committer, Settled
from harvester.runner import RunResult, harvest
from tmdb_standin import RunningStandin, details_body, imdb_id_from_number
from tmdb_standin.titles import media_numbers, tmdb_id_for_number

CREDS = Credentials(access_token=Secret(TOKEN))
TV_APPEND = ("credits", "aggregate_credits", "external_ids")
NUMBERS = list(itertools.islice(media_numbers("tv"), 100))  # IMDb numbers TMDB knows as series
TV_IDS = [tmdb_id_for_number("tv", n) for n in NUMBERS]
BODIES = [details_body("tv", imdb_id_from_number(n), TV_APPEND) for n in NUMBERS]


def split(bodies: list[bytes], fmt: Any, compression: Any, max_bytes: int) -> list[tuple[int, bytes]]:
    """Objects as the pipeline's chunk loop makes them: (records, bytes) each."""
    objects: list[tuple[int, bytes]] = []
    encoder = ChunkEncoder(fmt, compression, max_bytes)
    for body in bodies:
        if not encoder.add(body):
            objects.append((encoder.count, encoder.finish()))
            encoder = ChunkEncoder(fmt, compression, max_bytes)
            assert encoder.add(body)  # an empty object takes any record
    objects.append((encoder.count, encoder.finish()))
    return objects


def records_of(data: bytes, fmt: str, compression: str) -> list[Any]:
    if compression == "gzip":
        data = gzip.decompress(data)
    if fmt == "jsonl":
        return [orjson.loads(line) for line in data.splitlines()]
    return orjson.loads(data)  # type: ignore[no-any-return]


def test_the_bodies_are_tv_sized() -> None:
    sizes = sorted(len(b) for b in BODIES)
    assert sizes[0] > 15_000 and sizes[-1] > 60_000  # a spread: some pair up, some exceed a small limit


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize(("compression", "limit"), [("none", 100_000), ("gzip", 30_000)])
def test_every_object_stays_within_the_limit_and_keeps_every_record(
    fmt: str, compression: str, limit: int
) -> None:
    objects = split(BODIES, fmt, compression, limit)
    assert len(objects) > 4
    for count, data in objects:
        assert count >= 1
        assert len(data) <= limit or count == 1, (count, len(data))
    records = [r for _, data in objects for r in records_of(data, fmt, compression)]
    assert [r["id"] for r in records] == [orjson.loads(b)["id"] for b in BODIES]  # none lost or doubled
    assert sum(count for count, _ in objects) == len(BODIES)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_an_uncompressed_object_closes_only_when_the_next_record_would_not_fit(fmt: str) -> None:
    limit = 100_000
    objects = split(BODIES, fmt, "none", limit)
    starts = list(itertools.accumulate(count for count, _ in objects))[:-1]
    for (_, data), nxt in zip(objects, starts, strict=False):
        added = len(BODIES[nxt]) + 1  # "," or "\n"
        assert len(data) + added > limit  # the next record really did not fit


def test_gzip_objects_are_closed_on_their_compressed_size() -> None:
    # Closing on the uncompressed size would also hold the limit, but with objects 4x smaller.
    limit = 30_000
    objects = split(BODIES, "json", "gzip", limit)
    full = [len(data) for count, data in objects[:-1] if len(data) <= limit]
    assert sum(full) / len(full) > 0.6 * limit
    assert max(count for count, _ in objects) >= 3  # several records per object, though each is > 15 kB


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_what_finishing_a_gzip_object_adds_is_within_its_reserve(fmt: str) -> None:
    encoder = ChunkEncoder(fmt, "gzip", 10 * MB)  # type: ignore[arg-type]
    for body in BODIES[:5]:
        assert encoder.add(body)
        before = encoder.size
        probe = encoder._zip.copy()  # type: ignore[union-attr]
        end = probe.compress(b"]" if fmt == "json" else b"") + probe.flush()
        assert len(end) <= GZIP_END
        assert before == sum(len(p) for p in encoder._parts)  # `size` is exact at every record
    data = encoder.finish()
    assert len(data) <= before + GZIP_END


@pytest.mark.parametrize(("compression", "limit"), [("none", 30_000), ("gzip", 3_000)])
def test_a_record_bigger_than_the_limit_is_an_object_of_its_own(compression: str, limit: int) -> None:
    objects = split(BODIES, "json", compression, limit)
    assert all(count == 1 for count, _ in objects)  # every TV body is above 3 kB gzipped, most above 30 kB
    assert len(objects) == len(BODIES)


def test_without_a_limit_every_record_fits() -> None:
    encoder = ChunkEncoder("json", "gzip")
    assert all(encoder.add(b) for b in BODIES)
    assert len(records_of(encoder.finish(), "json", "gzip")) == len(BODIES)


def test_the_setting() -> None:
    assert SinkSettings().max_object_mb == 0 and byte_limit(0) == 0
    assert byte_limit(0.05) == 50_000 and byte_limit(1e-9) == 1  # never 0 (no limit) by rounding
    s = config.from_mapping({"sink": {"max_object_mb": 5}})
    assert s.sink.max_object_mb == 5.0
    for bad, words in (
        (-1, "sink.max_object_mb must be >= 0"),
        (float("inf"), "sink.max_object_mb must be <= 5000000"),
        ("5MB", "sink.max_object_mb must be a number"),
    ):
        with pytest.raises(ConfigError, match=words):
            config.from_mapping({"sink": {"max_object_mb": bad}})


# ---------------------------------------------------------------------------------------------
# The pipeline


def settings(standin: RunningStandin, sink: SinkSettings) -> Settings:
    return Settings(
        tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=1000.0, concurrency=8, append=TV_APPEND),
        source=SourceSettings(type="ids", media="tv", ids=tuple(str(i) for i in TV_IDS)),
        sink=sink,
    )


def data_objects(objects: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in objects.items() if "/_harvest/" not in f"/{k}"}


def check_lake(objects: dict[str, bytes], limit: int, fmt: str = "json", compression: str = "none") -> int:
    """Every object within the limit unless it holds one record alone, bigger than the limit; every
    series exactly once. Returns how many went alone for being too big."""
    ids: Counter[int] = Counter()
    alone = 0
    for key, data in data_objects(objects).items():
        records = records_of(data, fmt, compression)
        ids.update(r["id"] for r in records)
        assert len(data) <= limit or len(records) == 1, (key, len(data), len(records))
        alone += len(data) > limit
    assert ids == Counter(TV_IDS)
    return alone


async def test_s3_objects_stay_within_the_limit(standin: RunningStandin, s3_bucket: tuple[str, str]) -> None:
    endpoint, bucket = s3_bucket
    sink = SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=endpoint, max_object_mb=0.3)
    result = await harvest(settings(standin, sink), CREDS, progress=False)
    assert result.status == "complete" and result.summary.harvested == 100
    objects = await s3_objects(endpoint, bucket, PREFIX)
    assert check_lake(objects, 300_000) == 0
    sizes = [len(v) for v in data_objects(objects).values()]
    assert result.summary.objects == len(sizes) > 4_400_000 // 300_000  # closed by size, not at 100 records
    assert max(sizes) > 0.8 * 300_000


@pytest.mark.parametrize(
    ("fmt", "compression", "mb"), [("json", "none", 0.05), ("json", "gzip", 0.012), ("jsonl", "gzip", 0.012)]
)
async def test_objects_stay_within_a_limit_that_some_records_exceed(
    standin: RunningStandin, tmp_path: Path, fmt: str, compression: str, mb: float
) -> None:
    sink = SinkSettings(url=str(tmp_path / "lake"), format=fmt, compression=compression, max_object_mb=mb)  # type: ignore[arg-type]
    result = await harvest(settings(standin, sink), CREDS, progress=False)
    assert result.status == "complete"
    objects = {p.as_posix(): p.read_bytes() for p in (tmp_path / "lake").rglob("*") if p.is_file()}
    assert check_lake(objects, byte_limit(mb), fmt, compression) > 0  # those records went alone
    assert result.summary.objects < 100  # the others shared objects


async def test_a_stopped_harvest_resumes_exactly_once_even_under_another_limit(
    standin: RunningStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    stop = asyncio.Event()
    commits = 0
    commit = Committer.commit

    async def stop_after_three(self: Committer, chunk: Chunk) -> Settled:
        nonlocal commits
        settled = await commit(self, chunk)
        commits += 1
        if commits == 3:
            stop.set()
        return settled

    monkeypatch.setattr(Committer, "commit", stop_after_three)
    first: RunResult = await harvest(
        settings(standin, SinkSettings(url=str(lake), max_object_mb=0.05)), CREDS, stop=stop, progress=False
    )
    assert first.status == "incomplete" and first.stopped
    assert 0 < first.summary.harvested < 100
    written = {p: p.read_bytes() for p in lake.rglob("*.json") if "_harvest" not in p.parts}

    # The limit is not part of the run's identity: the same run resumes (no --fresh needed).
    second = await harvest(
        settings(standin, SinkSettings(url=str(lake), max_object_mb=0.1)), CREDS, progress=False
    )
    assert second.status == "complete"
    assert first.summary.harvested + second.summary.harvested == 100
    objects = {p.as_posix(): p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    check_lake(objects, 100_000)
    for path, data in written.items():  # the first run's objects are kept as they were
        assert path.read_bytes() == data
        assert len(data) <= 50_000 or len(records_of(data, "json", "none")) == 1
