"""Harvests through S3 faults: at which fault rate does a harvest still end complete and exactly once?

    python bench/s3_faults.py [--titles 3000] [--rates 0,0.02,0.05,0.1] [--series errors,all] [--resumes 2]

Each run harvests the same movies.csv into a fresh bucket with the real CLI (`python -m harvester run`),
its S3 endpoint being the fault proxy of tests/s3_faults.py in front of a moto server (both threads of
this process); the TMDB stand-in runs in its own process, without a rate limit. A rate is per fault kind:
series `errors` injects 503 SlowDown, 500 InternalError and 500 to UploadPart (none of them reaches
moto); `all` also cuts answers after moto acted (status, headers, half the body, then a TCP reset).
Chunks of 300 records (~9 MB) go up as multipart uploads, the last one and the bookkeeping as PUTs.
botocore's retries are the real ones, back-off included.

After every run the bucket is read straight from moto: each selected movie in exactly one data object,
each miss exactly once in the outcomes, the state complete, no multipart upload left open. A run that
fails is run again (`--resumes`, faults still on) to show whether resuming repairs it. A script, not a
test: it prints a table and asserts nothing. About two minutes with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import PREFIX, REPO, fake_aws, toml
from lake import Lake
from report import progress
from standin_proc import standin

from tmdb_standin import DEFAULT_TOKEN, kind_of, movie_ids, write_movies_csv

# The proxy lives with the tests; this directory holds a script of the same name, so the tests' comes first.
sys.path.insert(0, str(REPO / "tests"))
from s3_faults import FaultCounts, FaultRates, proxy_in_thread

SERIES = {
    "errors": lambda r: FaultRates(slowdown=r, internal=r, upload_part=r),
    "all": FaultRates.each,
}
RUN_TIMEOUT_S = 600


@dataclass
class Row:
    series: str
    rate: float
    counts: FaultCounts
    codes: list[int] = field(default_factory=list)  # exit code of the first run, then of each resume
    exactly_once: str = ""  # "yes", or what is wrong
    elapsed_s: float = 0.0

    @property
    def survived(self) -> bool:
        return self.codes == [0] and self.exactly_once == "yes"


def check_lake(lake: Lake, bucket: str, found: set[str], misses: set[str]) -> str:
    """'yes' when the bucket holds the harvest exactly once, else what is wrong (read from moto itself)."""
    records: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    state: dict[str, object] = {}
    for key in lake.keys(bucket):
        body = lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rel = key.removeprefix(f"{PREFIX}/")
        if "/outcomes-" in rel:
            missed.update(json.loads(line)["imdb_id"] for line in body.splitlines() if line)
        elif rel == "_harvest/state-csv-movie.json":
            state = json.loads(body)
        elif not rel.startswith("_harvest/"):
            records.update(str(r["imdb_id"]) for r in json.loads(body))
    problems = []
    if state.get("status") != "complete":
        problems.append(f"state {state.get('status', 'missing')}")
    if set(records) != found:
        problems.append(f"{len(found - set(records))} movies missing, {len(set(records) - found)} extra")
    if twice := sum(1 for n in records.values() if n > 1):
        problems.append(f"{twice} movies written twice")
    if set(missed) != misses or any(n > 1 for n in missed.values()):
        problems.append("misses not recorded exactly once")
    if open_uploads := lake.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        problems.append(f"{len(open_uploads)} uploads open")
    return "; ".join(problems) or "yes"


def run_cli(config: Path, log: Path) -> int:
    env = {**os.environ, "TMDB_ACCESS_TOKEN": DEFAULT_TOKEN}
    cmd = [sys.executable, "-m", "harvester", "run", str(config), "--no-progress"]
    with log.open("ab") as err:
        return subprocess.run(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=RUN_TIMEOUT_S
        ).returncode


@dataclass(frozen=True)
class Harvest:
    csv: Path
    found: set[str]  # movies TMDB has: each must be in exactly one data object
    misses: set[str]  # the others: each must be in the outcomes exactly once


def one_rate(
    tmp: Path, lake: Lake, base_url: str, harvest: Harvest, series: str, rate: float, seed: int, resumes: int
) -> Row:
    bucket = lake.new_bucket(f"{series}-{rate:g}".replace(".", "p"))
    with proxy_in_thread(lake.endpoint, SERIES[series](rate), seed=seed) as proxy:
        config = tmp / f"{bucket}.toml"
        sections: dict[str, dict[str, Any]] = {
            "tmdb": {"base_url": base_url, "rate_limit": 100_000, "concurrency": 20},
            "source": {"path": str(harvest.csv)},
            "sink": {"url": f"s3://{bucket}/{PREFIX}", "endpoint_url": proxy.url, "chunk_size": 300},
        }
        config.write_text(toml(sections))
        row = Row(series, rate, proxy.counts)
        log = tmp / f"{bucket}.log"
        t0 = time.monotonic()
        row.codes.append(run_cli(config, log))
        row.elapsed_s = time.monotonic() - t0
        faulted = list(proxy.injected)  # the first run's
        while row.codes[-1] != 0 and len(row.codes) <= resumes:
            row.codes.append(run_cli(config, log))
    if row.codes[0] != 0:
        errors = [line for line in log.read_text(errors="replace").splitlines() if "error:" in line]
        # The faults on the bookkeeping objects (state, lease, outcomes) are the usual suspects.
        kept = [
            f"{kind} {method} {path.split('?')[0]}" for kind, method, path in faulted if "/_harvest/" in path
        ]
        progress(f"{series} {rate:g}: exits {row.codes}: {' / '.join(errors)}")
        progress(f"{series} {rate:g}: faults on _harvest/ objects in the first run: {', '.join(kept)}")
    row.exactly_once = check_lake(lake, bucket, harvest.found, harvest.misses)
    lake.empty(bucket)
    return row


def render(rows: list[Row]) -> str:
    header = (
        "series",
        "rate",
        "S3 requests",
        "503",
        "500",
        "reset",
        "part 500",
        "exit",
        "exactly once",
        "elapsed",
    )
    cells = [header] + [
        (
            r.series,
            f"{r.rate:.0%}",
            str(r.counts.requests),
            str(r.counts.slowdown),
            str(r.counts.internal),
            str(r.counts.reset),
            str(r.counts.upload_part),
            " -> ".join(map(str, r.codes)),
            r.exactly_once,
            f"{r.elapsed_s:.1f} s",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [" | ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def highest_survived(rows: list[Row]) -> str:
    """The highest rate at which this and every lower rate ended complete and exactly once in one run."""
    best = None
    for r in sorted(rows, key=lambda r: r.rate):
        if not r.survived:
            break
        best = r.rate
    return "none" if best is None else f"{best:.0%} per kind"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--titles", type=int, default=3000, help="distinct movies in movies.csv")
    ap.add_argument("--rates", default="0,0.02,0.05,0.1", help="fault rates per kind, comma-separated")
    ap.add_argument("--series", default="errors,all", help=f"which faults: {', '.join(SERIES)}")
    ap.add_argument("--resumes", type=int, default=2, help="runs again after a failed run (faults still on)")
    ap.add_argument("--seed", type=int, default=1, help="the proxy's RNG seed")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    series = args.series.split(",")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fake_aws(tmp)
        csv = write_movies_csv(tmp / "movies.csv", args.titles, seed=29).path
        ids = set(movie_ids(args.titles, seed=29))
        found = {i for i in ids if kind_of(i) in ("movie", "direct_404", "direct_wrong")}
        harvest = Harvest(csv, found, ids - found)
        lake = Lake()
        rows: list[Row] = []
        try:
            with standin(rate_limit=0) as tmdb:
                for name in series:
                    for rate in rates:
                        progress(f"{name} {rate:g}: harvesting {len(ids)} movies through the proxy")
                        rows.append(
                            one_rate(tmp, lake, tmdb.base_url, harvest, name, rate, args.seed, args.resumes)
                        )
        finally:
            lake.close()
    print(render(rows))
    print()
    for name in series:
        print(f"highest rate survived ({name}): {highest_survived([r for r in rows if r.series == name])}")
    print(
        "\nsurvived: the first run exited 0 and the bucket holds every movie exactly once. 'exit' lists the\n"
        "first run's exit code, then each resume's; 'exactly once' is judged after the last of them.\n"
        "'elapsed' is the first run's wall time, back-off sleeps included."
    )


if __name__ == "__main__":
    main()
