"""A faithful local stand-in for the TMDB API v3, with generated inputs in the real CSV format.

catalogue   which IMDb ids TMDB knows, and the bodies it returns (pure, deterministic)
server      the HTTP server: auth, rate limit, latency, faults, statistics
csvgen      movies.csv / series.csv style inputs of any size
"""

from .catalogue import (
    KINDS,
    MAX_APPENDS,
    MOVIE_APPENDS,
    MOVIE_GENRES,
    TV_APPENDS,
    TV_GENRES,
    Kind,
    Media,
    direct_lookup,
    imdb_id_for,
    kind_of,
    media_of_kind,
    parse_imdb_id,
    tmdb_id_of,
)
from .csvgen import Written, movie_ids, series_ids, write_movies_csv, write_series_csv
from .server import (
    DEFAULT_API_KEY,
    DEFAULT_TOKEN,
    RunningStandin,
    StandinConfig,
    StandinServer,
    StandinStats,
    main_standin,
    running_standin,
    serve,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_TOKEN",
    "KINDS",
    "MAX_APPENDS",
    "MOVIE_APPENDS",
    "MOVIE_GENRES",
    "TV_APPENDS",
    "TV_GENRES",
    "Kind",
    "Media",
    "RunningStandin",
    "StandinConfig",
    "StandinServer",
    "StandinStats",
    "Written",
    "direct_lookup",
    "imdb_id_for",
    "kind_of",
    "main_standin",
    "media_of_kind",
    "movie_ids",
    "parse_imdb_id",
    "running_standin",
    "series_ids",
    "serve",
    "tmdb_id_of",
    "write_movies_csv",
    "write_series_csv",
]
