"""Figure 1, rate: a paced harvest's achieved rate, 429s and requests per movie; and 5, the projection."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from harness import TMDB_RATE, Bench, Harvest
from standin_proc import arrival_rate, standin

from tmdb_standin import kind_of, movie_ids

FULL_HARVEST_MOVIES = 244_544  # the distinct movies of the real movies.csv
EXPECTED_DIRECT_RPM = 1.10  # stand-in catalogue: 92% plain movies at 1 request, the rest 2 or 3
RATE_SEED = 1

# Requests per title by the stand-in catalogue's kind, as lookup.py documents them (preflight not included).
LOOKUP_COST = {
    "direct": {"movie": 1, "tv": 2, "unknown": 2, "direct_404": 3, "direct_wrong": 3},
    "find": {"movie": 2, "tv": 1, "unknown": 1, "direct_404": 2, "direct_wrong": 2},
}


def expected_requests(movies: int, seed: int, lookup: str) -> tuple[int, dict[str, int]]:
    """Requests a lookup mode needs for csvgen's first `movies` ids (+1 preflight), and the ids by kind."""
    kinds: dict[str, int] = {}
    for imdb_id in movie_ids(movies, seed):
        kind = kind_of(imdb_id)
        kinds[kind] = kinds.get(kind, 0) + 1
    return 1 + sum(LOOKUP_COST[lookup][k] * n for k, n in kinds.items()), kinds


@dataclass
class RateRun:
    movies: int
    harvested: int
    requests: int
    seconds: float  # first to last arrival at the stand-in
    rate: float  # requests per second the stand-in saw
    throttled: int
    max_window: int
    by_route: dict[str, int]

    @classmethod
    def of(cls, h: Harvest, movies: int) -> RateRun:
        s = h.standin
        seconds = s["last_arrival"] - s["first_arrival"]
        routes = {k: v for k, v in s["by_route"].items() if v}
        return cls(
            movies,
            h.summary["harvested"],
            s["requests"],
            seconds,
            arrival_rate(s),
            s["rate_limited"],
            s["max_window"],
            routes,
        )

    @property
    def per_movie(self) -> float:
        return self.requests / self.movies

    @property
    def per_harvested(self) -> float:
        return self.requests / self.harvested


def figure_rate(bench: Bench, args: argparse.Namespace) -> RateRun:
    r = bench.report
    movies = math.ceil(args.rate_seconds * TMDB_RATE * 0.98 / EXPECTED_DIRECT_RPM)
    with standin(TMDB_RATE, (100, 200)) as tmdb:
        direct_csv = bench.csv("rate-direct", movies, seed=RATE_SEED)
        direct = RateRun.of(
            bench.harvest("rate-direct", tmdb, direct_csv, rate_limit=40, concurrency=20), movies
        )
        find_csv = bench.csv("rate-find", args.find_movies, seed=RATE_SEED)
        h = bench.harvest("rate-find", tmdb, find_csv, rate_limit=40, concurrency=20, lookup="find")
        find = RateRun.of(h, args.find_movies)
    f = "1 rate"
    ratio = direct.rate / TMDB_RATE
    r.add(
        f, "achieved rate / 40 (direct)", f"{ratio:.3f} ({direct.rate:.2f} req/s)", ">= 0.97", ratio >= 0.97
    )
    per_k = direct.throttled / direct.requests * 1000
    r.add(
        f,
        "429s per 1,000 requests",
        f"{per_k:.2f} ({direct.throttled} of {direct.requests})",
        "<= 1",
        per_k <= 1,
    )
    r.add(f, "max requests in any 1 s window", str(direct.max_window), "<= 40", direct.max_window <= 40)
    r.add(
        f, "harvest length (first..last request)", f"{direct.seconds:.1f} s", ">= 60 s", direct.seconds >= 60
    )
    r.add(
        f,
        "requests per movie in CSV (direct)",
        f"{direct.per_movie:.3f} ({direct.requests}/{movies})",
        "<= 1.05",
        direct.per_movie <= 1.05,
    )
    r.add(
        f,
        "requests per harvested movie (direct)",
        f"{direct.per_harvested:.3f} ({direct.requests}/{direct.harvested})",
    )
    r.add(f, "requests by route (direct)", routes_text(direct.by_route))
    need, kinds = expected_requests(movies, RATE_SEED, "direct")
    r.add(f, "ids in the CSV by catalogue kind", ", ".join(f"{k} {v}" for k, v in kinds.items()))
    r.add(f, "least requests possible (direct), per movie", f"{need / movies:.3f} ({need})")
    r.add(f, "requests per movie in CSV (find)", f"{find.per_movie:.3f} ({find.requests}/{find.movies})")
    r.add(
        f,
        "requests per harvested movie (find)",
        f"{find.per_harvested:.3f} ({find.requests}/{find.harvested})",
    )
    r.add(f, "requests by route (find)", routes_text(find.by_route))
    need, _ = expected_requests(args.find_movies, RATE_SEED, "find")
    r.add(f, "least requests possible (find), per movie", f"{need / args.find_movies:.3f} ({need})")
    r.add(
        f,
        "achieved rate / 40, 429s, max window (find)",
        f"{find.rate / TMDB_RATE:.3f}, {find.throttled}, {find.max_window}",
    )
    r.note(
        f,
        "stand-in --rate-limit 40 --latency-ms 100 200 (own process; 429'd requests fill its window); "
        "harvester rate_limit 40, concurrency 20, S3 sink on moto",
    )
    r.note(
        f,
        f"direct: {movies} movies (sized for ~{args.rate_seconds:g} s at ~{EXPECTED_DIRECT_RPM} req/movie); "
        f"find: a second run over the first {args.find_movies} of the same ids",
    )
    r.note(
        f,
        "rate = (requests - 1) / (last_arrival - first_arrival), all from the stand-in's own stats; "
        "requests include the preflight GET /authentication (1 per run), which also opens the "
        "interval, so the S3 preflight and state setup before the first lookup count as harvest time",
    )
    r.note(f, "max window = most arrivals the stand-in saw in any sliding 1.0 s window (429'd ones included)")
    r.note(
        f,
        "the stand-in's catalogue has ~8% ids that are not plain movies (3% tv, 3% unknown, 1% "
        "direct-404, 1% direct-wrong), each costing a /find (and details) on top: hence 'per harvested'; "
        "'least possible' = 1 preflight + the cost of each id's kind as lookup.py documents it (direct: "
        "movie 1, tv 2, unknown 2, direct_404 3, direct_wrong 3; find: movie 2, others 1 or 2)",
    )
    return direct


def routes_text(routes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(routes.items(), key=lambda kv: -kv[1]))


def figure_projection(bench: Bench, direct: RateRun) -> None:
    minutes = FULL_HARVEST_MOVIES * direct.per_movie / direct.rate / 60
    bench.report.add(
        "5 projection", f"minutes for {FULL_HARVEST_MOVIES:,} movies at rate_limit 40", f"{minutes:.1f} min"
    )
    bench.report.note(
        "5 projection",
        f"{FULL_HARVEST_MOVIES:,} x {direct.per_movie:.3f} requests/movie (direct, figure 1) / "
        f"{direct.rate:.2f} requests/s (figure 1) / 60",
    )
