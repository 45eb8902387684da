"""What people cost: requests per person of a people harvest, and of its refresh.

    python bench/people.py [--movies 2000]

One process, one `[[harvest]]` list: a movies.csv harvest appending credits, then the people of its
directors (`type = "people"`, `from`, `jobs = ["Director"]`, appending combined_credits and
external_ids), from the bundled stand-in in this process into a temporary local sink. Then the
stand-in moves a day on and both refresh. Prints the people found, the requests the people harvest
made (its summary's, the credential check left out), requests per person, and the refresh's.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harvester.config import Credentials, deployment_from_mapping
from harvester.fleet import FleetResult, harvest_all
from tmdb_standin import DEFAULT_TOKEN, StandinConfig, running_standin, write_movies_csv

CREDS = Credentials.from_env({"TMDB_ACCESS_TOKEN": DEFAULT_TOKEN})


def report(label: str, fleet: FleetResult) -> None:
    for outcome in fleet.outcomes:
        s = outcome.summary
        assert s is not None, outcome.error or outcome.internal
        if outcome.name != "directors":
            continue
        # The process asks TMDB the credential once, counted by the harvest that asks first: may be this.
        requests = s.requests
        looked_up = s.harvested + sum(s.misses.values()) + s.failed
        plan = s.refresh
        pages = plan.change_pages if plan else 0
        print(
            f"{label}: {s.status}; people {looked_up} (harvested {s.harvested}, "
            f"misses {sum(s.misses.values())}); "
            f"requests {requests}, of them change-list pages {pages}; "
            f"{(requests - pages) / max(looked_up, 1):.3f} a person (with the credential check if it asked)"
        )


async def main(args: argparse.Namespace) -> None:
    today = datetime.now(UTC).date()
    config = StandinConfig(base_date=today - timedelta(days=1), changed_share=0.02, hour=12.0)
    async with running_standin(config) as standin:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "movies.csv"
            write_movies_csv(csv, args.movies, seed=5)
            deployment = deployment_from_mapping(
                {
                    "tmdb": {"base_url": standin.base_url, "rate_limit": 100_000, "concurrency": 16},
                    "sink": {"url": str(Path(tmp) / "lake"), "format": "jsonl"},
                    "refresh": {"revisit_days": 0},
                    "harvest": [
                        {"name": "movies", "source": {"type": "csv", "path": str(csv)}},
                        {
                            "name": "directors",
                            "source": {"type": "people", "from": "movies", "jobs": ["Director"]},
                            "tmdb": {"append": ["combined_credits", "external_ids"]},
                        },
                    ],
                }
            )
            report(
                f"directors of a {args.movies}-row movies.csv",
                await harvest_all(deployment, CREDS, progress=False),
            )
            standin.config.day = 1
            report(
                "their refresh a day later",
                await harvest_all(deployment, CREDS, mode="refresh", progress=False),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--movies", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
