import pytest, traceback
from pathlib import Path
from test_s3_faults import *  # noqa
from test_s3_faults import CREDS, PART

CASES = {
    "slow": FaultRates(slowdown=0.08), "int": FaultRates(internal=0.08), "part": FaultRates(upload_part=0.15),
    "reset": FaultRates(reset=0.03), "mix": FaultRates(slowdown=0.04, internal=0.04, upload_part=0.08, reset=0.0), "errors": FaultRates(slowdown=0.04, internal=0.04, upload_part=0.08),
}

@pytest.mark.parametrize("seed", [5, 5, 5, 1, 1, 1])
@pytest.mark.parametrize("case", ["mix"])
@pytest.mark.usefixtures("fast_s3_retries", "small_parts")
async def test_explore(standin, s3_bucket, tmp_path, case, seed):
    endpoint, bucket = s3_bucket
    csv = tmp_path / "movies.csv"
    write_movies_csv(csv, 300, seed=13)
    expected = expected_movies(distinct_ids(csv))
    async with S3FaultProxy(endpoint, seed=seed) as proxy:
        settings = Settings(
            tmdb=TmdbSettings(base_url=standin.base_url, rate_limit=1000.0, concurrency=8, timeout_s=5.0),
            source=SourceSettings(path=str(csv)),
            sink=SinkSettings(url=f"s3://{bucket}/{PREFIX}", endpoint_url=proxy.url, chunk_size=20),
        )
        proxy.rates = CASES[case]
        try:
            result = await runner.harvest(settings, CREDS, progress=False)
            out = result.status
        except Exception as e:
            out = f"{type(e).__name__}: {e}"
        proxy.rates = FaultRates()
        lake = await read_s3_lake(endpoint, bucket)
        records = lake.record_ids()
        once = set(records) == expected.found and (max(records.values()) if records else 0) == 1
        ups = await open_uploads(endpoint, bucket)
        print(f"\nCASE {case} seed {seed}: {out} | {proxy.counts} | exactly-once {once} | open uploads {len(ups)}")
        if out != "complete":
            print("  last faults:", proxy.injected[-2:])
        import re; print("  all:", [(k, m, re.sub(r"uploadId=[^&]*|\d{8}T\d{6}Z-[0-9a-f]{8}|w[0-9a-f]{6}|preflight-[0-9a-f]+", "*", p)[-45:]) for k, m, p in proxy.injected])
