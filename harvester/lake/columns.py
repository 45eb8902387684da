"""The columns a reader of a harvest's table gets: the fields of TMDB's bodies that analysts use.

Pure. `columns(settings)` is the one list the Athena DDL (table.py) and the Glue table of the SAM
template both take, as (name, type) pairs in Hive/Glue type syntax (`array<struct<id:int,name:string>>`):
the DDL quotes struct field names (`cast` and `order` are reserved words there), Glue takes them as
they are. A body's other fields stay in the objects; a column can be added here at any time, since
the table is read by name from JSON (OpenX SerDe), never by position.

Types follow what TMDB sends, holes included (tmdb-quirks.md): ids are bigint (some pass 2^32),
dates are strings (TMDB sends "" for an unknown one), `popularity` and `runtime` may be null.
"""

from __future__ import annotations

from ..config import Settings, media_of
from ..items import Media

Column = tuple[str, str]  # (name, Hive/Glue type)

GENRES = "array<struct<id:int,name:string>>"
_PERSON = (
    "adult:boolean,gender:int,id:bigint,known_for_department:string,name:string,original_name:string,"
    "popularity:double,profile_path:string,credit_id:string"
)
# `credits` as TMDB appends it: cast_id is the movies' only (null for series).
CREDITS = (
    f"struct<cast:array<struct<{_PERSON},cast_id:int,character:string,order:int>>,"
    f"crew:array<struct<{_PERSON},department:string,job:string>>>"
)
_SOCIAL = "wikidata_id:string,facebook_id:string,instagram_id:string,twitter_id:string"
EXTERNAL_IDS: dict[Media, str] = {
    "movie": f"struct<imdb_id:string,{_SOCIAL}>",
    "tv": f"struct<imdb_id:string,tvdb_id:bigint,{_SOCIAL}>",
    "person": f"struct<imdb_id:string,tvrage_id:bigint,{_SOCIAL},tiktok_id:string,youtube_id:string>",
}
_COUNTRIES = "array<struct<iso_3166_1:string,name:string>>"
_COMPANIES = "array<struct<id:bigint,name:string,origin_country:string>>"

DETAILS: dict[Media, tuple[Column, ...]] = {
    "movie": (
        ("id", "bigint"),
        ("imdb_id", "string"),
        ("title", "string"),
        ("original_title", "string"),
        ("original_language", "string"),
        ("release_date", "string"),
        ("genres", GENRES),
        ("popularity", "double"),
        ("vote_average", "double"),
        ("vote_count", "int"),
        ("budget", "bigint"),
        ("revenue", "bigint"),
        ("runtime", "int"),
        ("status", "string"),
        ("adult", "boolean"),
        ("overview", "string"),
        ("belongs_to_collection", "struct<id:bigint,name:string>"),
        ("production_companies", _COMPANIES),
        ("production_countries", _COUNTRIES),
    ),
    "tv": (
        ("id", "bigint"),
        ("name", "string"),
        ("original_name", "string"),
        ("original_language", "string"),
        ("first_air_date", "string"),
        ("last_air_date", "string"),
        ("genres", GENRES),
        ("popularity", "double"),
        ("vote_average", "double"),
        ("vote_count", "int"),
        ("number_of_seasons", "int"),
        ("number_of_episodes", "int"),
        ("episode_run_time", "array<int>"),
        ("status", "string"),
        ("in_production", "boolean"),
        ("adult", "boolean"),
        ("overview", "string"),
        ("origin_country", "array<string>"),
        ("networks", _COMPANIES),
        ("production_companies", _COMPANIES),
        ("production_countries", _COUNTRIES),
    ),
    "person": (
        ("id", "bigint"),
        ("name", "string"),
        ("known_for_department", "string"),
        ("popularity", "double"),
        ("birthday", "string"),
        ("deathday", "string"),
        ("place_of_birth", "string"),
        ("imdb_id", "string"),
        ("gender", "int"),
        ("adult", "boolean"),
        ("also_known_as", "array<string>"),
        ("biography", "string"),
        ("homepage", "string"),
        ("profile_path", "string"),
    ),
}
# A person's `combined_credits` (movies and series, `media_type` says which; title/release_date of a
# movie, name/first_air_date of a series); `movie_credits` and `tv_credits` are its halves.
_WORK = (
    "id:bigint,media_type:string,title:string,original_title:string,name:string,original_name:string,"
    "release_date:string,first_air_date:string,genre_ids:array<int>,original_language:string,"
    "popularity:double,vote_average:double,vote_count:int,adult:boolean,credit_id:string"
)
PERSON_CREDITS = (
    f"struct<cast:array<struct<{_WORK},character:string,order:int,episode_count:int>>,"
    f"crew:array<struct<{_WORK},department:string,job:string,episode_count:int>>>"
)
# What `details = false` stores: discover's own results (genre ids only, no money, no appends).
SUMMARIES: dict[Media, tuple[Column, ...]] = {
    "movie": (
        ("id", "bigint"),
        ("title", "string"),
        ("original_title", "string"),
        ("original_language", "string"),
        ("release_date", "string"),
        ("genre_ids", "array<int>"),
        ("popularity", "double"),
        ("vote_average", "double"),
        ("vote_count", "int"),
        ("adult", "boolean"),
        ("video", "boolean"),
        ("overview", "string"),
    ),
    "tv": (
        ("id", "bigint"),
        ("name", "string"),
        ("original_name", "string"),
        ("original_language", "string"),
        ("first_air_date", "string"),
        ("genre_ids", "array<int>"),
        ("popularity", "double"),
        ("vote_average", "double"),
        ("vote_count", "int"),
        ("adult", "boolean"),
        ("origin_country", "array<string>"),
        ("overview", "string"),
    ),
}
_EPISODE = (
    "air_date:string,episode_number:int,episode_type:string,id:bigint,name:string,overview:string,"
    "production_code:string,runtime:int,season_number:int,show_id:bigint,still_path:string,"
    f"vote_average:double,vote_count:int,crew:array<struct<{_PERSON},department:string,job:string>>,"
    f"guest_stars:array<struct<{_PERSON},character:string,order:int>>"
)
# A seasons table's records (tmdb/seasons.py): the series' id and the season's number around the
# season body as TMDB sends it.
SEASONS: tuple[Column, ...] = (
    ("series_id", "bigint"),
    ("season_number", "int"),
    (
        "season",
        "struct<_id:string,air_date:string,name:string,overview:string,id:bigint,poster_path:string,"
        f"season_number:int,vote_average:double,episodes:array<struct<{_EPISODE}>>>",
    ),
)
# The outcome lines under _harvest/<run>/outcomes-*.jsonl (lake/committer.py).
OUTCOMES: tuple[Column, ...] = (
    ("imdb_id", "string"),
    ("tmdb_id", "bigint"),
    ("media", "string"),
    ("outcome", "string"),
    ("reason", "string"),
    ("attempts", "int"),
)


_WORKS = ("combined_credits", "movie_credits", "tv_credits")


def columns(settings: Settings) -> tuple[Column, ...]:
    """The columns of a harvest's table: its media's details (or discover's results with `details =
    false`) and the sections it appends that have one (`credits`, `external_ids`)."""
    media = media_of(settings.source)
    if settings.source.type == "discover" and not settings.source.details:
        return SUMMARIES[media]
    appended = {"credits": CREDITS, "external_ids": EXTERNAL_IDS[media]}
    if media == "person":  # a person's credits are their works, not a cast and crew
        appended = {"external_ids": EXTERNAL_IDS[media], **dict.fromkeys(_WORKS, PERSON_CREDITS)}
    return DETAILS[media] + tuple((name, appended[name]) for name in settings.tmdb.append if name in appended)
