"""A faithful local stand-in for the TMDB API v3, with generated inputs in the real CSV format.

A test double, kept out of the harvester: the harvester never imports it (it is not in the Lambda
zip nor in the container image); it imports the harvester's shared constants and, for the demo, its
runner.

titles      which IMDb ids TMDB knows, as what, and each title's date, genres and votes
templates   what a pool of titles shares, pre-serialized with slots for per-title values
credits     cast and crew, pre-serialized once and sliced per title
bodies      the JSON bodies TMDB returns for a title (details, sub-resources, /find, /discover)
seasonplan  which seasons a series has (Specials, gaps, long runs), their episode counts and dates
seasons     season bodies with their episodes (/tv/{id}/season/{n}, season/N appends)
errors      TMDB's error bodies and status codes
discover    /discover listings over a fixed universe of titles
days        the catalogue over days: which titles change, appear and go on each day after day 0
changes     /movie/changes and /tv/changes: the ids a window of days changed
exports     the daily id exports (/p/exports/movie_ids_MM_DD_YYYY.json.gz), streamed
people      /person/{id}, /person/changes and the person export: exactly the people credits name
reference   /configuration/countries, /configuration/languages, /certification/{movie,tv}/list
server      the HTTP server: auth, rate limit, latency, faults, statistics
csvgen      movies.csv / series.csv style inputs of any size
demo        the harvester against the stand-in, on one machine (`python -m tmdb_standin demo`)
"""

from .bodies import MOVIE_APPENDS, TV_APPENDS, details_body
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
from .titles import (
    KINDS,
    MOVIE_GENRES,
    TV_GENRES,
    Kind,
    direct_lookup,
    imdb_id_for,
    imdb_id_from_number,
    kind_of,
    media_of_kind,
    parse_imdb_id,
    tmdb_id_of,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_TOKEN",
    "KINDS",
    "MOVIE_APPENDS",
    "MOVIE_GENRES",
    "TV_APPENDS",
    "TV_GENRES",
    "Kind",
    "RunningStandin",
    "StandinConfig",
    "StandinServer",
    "StandinStats",
    "Written",
    "details_body",
    "direct_lookup",
    "imdb_id_for",
    "imdb_id_from_number",
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
