"""The one typed settings object, parsed and validated once at the edge.

`load(path)` reads a TOML file and returns `Settings` or raises `ConfigError` with one line that
names the offending key. Nothing downstream re-validates. Secrets never live in the file: they come
from the environment (`Credentials.from_env`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from .errors import ConfigError

LookupMode = Literal["direct", "find"]
SourceType = Literal["csv", "series_csv", "discover", "ids"]
GenresMode = Literal["any", "all", "only"]
Scalar = str | int | float | bool
Media = Literal["movie", "tv"]
OutputFormat = Literal["json", "jsonl"]
Compression = Literal["none", "gzip"]

MAX_APPENDS = 20  # TMDB answers the 21st append_to_response item with HTTP 400 (status 27)


@dataclass(frozen=True)
class TmdbSettings:
    base_url: str = "https://api.themoviedb.org/3"
    language: str = "en-US"
    append: tuple[str, ...] = ("credits",)
    lookup: LookupMode = "direct"
    rate_limit: float = 40.0
    concurrency: int = 20
    timeout_s: float = 10.0
    max_retries: int = 6


@dataclass(frozen=True)
class SourceSettings:
    type: SourceType = "csv"
    path: str = "movies.csv"  # csv, series_csv; ids (a file of ids, one a line) when `ids` is empty
    media: Media = "movie"
    genres: tuple[str | int, ...] = ()  # csv: IMDb names; discover: TMDB names or ids
    min_votes: int = 0
    year_from: int = 0  # csv, series_csv
    year_to: int = 0
    # discover
    genres_mode: GenresMode = "any"
    date_from: str = ""  # YYYY-MM-DD, primary_release_date (movie) / first_air_date (tv); "" = open
    date_to: str = ""
    language: str = ""  # "" = tmdb.language
    include_adult: bool = False
    sort_by: str = "popularity.desc"
    params: dict[str, Scalar] = field(default_factory=dict)  # any other discover parameter
    details: bool = True  # false: store the discover results themselves, no request per title
    # ids
    ids: tuple[str, ...] = ()  # IMDb (tt...) or TMDB (numeric) ids


@dataclass(frozen=True)
class SinkSettings:
    url: str = "output"
    endpoint_url: str = ""
    region: str = "us-east-1"
    chunk_size: int = 100
    partition: str = "{yyyy}/{mm}/{dd}"  # placeholders {yyyy} {mm} {dd} {media} ("movies"/"series")
    format: OutputFormat = "json"
    compression: Compression = "none"


@dataclass(frozen=True)
class Settings:
    tmdb: TmdbSettings = field(default_factory=TmdbSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    sink: SinkSettings = field(default_factory=SinkSettings)


class Secret(str):
    """A str that never shows its value in repr/str formatting of containers."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class Credentials:
    access_token: Secret | None = None
    api_key: Secret | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        token = env.get("TMDB_ACCESS_TOKEN", "").strip()
        key = env.get("TMDB_API_KEY", "").strip()
        return cls(Secret(token) if token else None, Secret(key) if key else None)

    @property
    def present(self) -> bool:
        return bool(self.access_token or self.api_key)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_token, self.api_key) if s)


# ---------------------------------------------------------------------------------------------
# Parsing


def load(path: str | Path) -> Settings:
    """Read and validate a TOML config file. Relative paths in it resolve against its folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.__class__.__name__}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return from_mapping(raw, base_dir=p.resolve().parent)


def from_mapping(raw: Mapping[str, Any], base_dir: Path | None = None) -> Settings:
    """Validate a parsed mapping (a TOML document or a Lambda event's inline settings)."""
    unknown = set(raw) - {"tmdb", "source", "sink"}
    if unknown:
        raise ConfigError(f"unknown section [{sorted(unknown)[0]}] (expected tmdb, source, sink)")
    sections: dict[str, Any] = {}
    for name, cls in (("tmdb", TmdbSettings), ("source", SourceSettings), ("sink", SinkSettings)):
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build(name, cls, table)
    settings = Settings(**sections)
    settings = _resolve_paths(settings, base_dir)
    _check_values(settings)
    return settings


def _build(section: str, cls: type[Any], table: Mapping[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}")
    values = {key: _coerce(f"{section}.{key}", hints[key], value) for key, value in table.items()}
    return cls(**values)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{name} must be one of {choices}, not {value!r}")
        return value
    if origin is tuple:
        item = get_args(hint)[0]
        kinds: tuple[type, ...] = (str,) if item is str else (str, int)
        if not isinstance(value, list) or not all(
            isinstance(v, kinds) and not isinstance(v, bool) for v in value
        ):
            what = "strings or integers" if int in kinds else "strings"
            raise ConfigError(f"{name} must be a list of {what}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(
            isinstance(v, (str, int, float, bool)) for v in value.values()
        ):
            raise ConfigError(f"{name} must be a table of strings, numbers or booleans")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, not {value!r}")
        return value
    raise AssertionError(f"no coercion for {hint}")  # a settings field with an unsupported type


def _resolve_paths(s: Settings, base_dir: Path | None) -> Settings:
    if base_dir is None:
        return s
    source, sink = s.source, s.sink
    if not is_s3_url(source.path) and not Path(source.path).is_absolute():
        source = dataclasses.replace(source, path=str(base_dir / source.path))
    if not is_s3_url(sink.url) and not Path(sink.url).is_absolute():
        sink = dataclasses.replace(sink, url=str(base_dir / sink.url))
    return dataclasses.replace(s, source=source, sink=sink)


def _check_values(s: Settings) -> None:
    t, src, snk = s.tmdb, s.source, s.sink
    if not t.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"tmdb.base_url must be an http(s) URL, not {t.base_url!r}")
    if not t.language.strip():
        raise ConfigError("tmdb.language must not be empty")
    if len(t.append) > MAX_APPENDS:
        raise ConfigError(f"tmdb.append has {len(t.append)} items; TMDB accepts at most {MAX_APPENDS}")
    for item in t.append:
        if not item or "," in item or item != item.strip():
            raise ConfigError(f"tmdb.append item {item!r} is not a sub-resource name")
    if len(set(t.append)) != len(t.append):
        raise ConfigError("tmdb.append lists a sub-resource twice")
    if not t.rate_limit > 0:
        raise ConfigError(f"tmdb.rate_limit must be > 0, not {t.rate_limit:g}")
    if t.concurrency < 1:
        raise ConfigError(f"tmdb.concurrency must be >= 1, not {t.concurrency}")
    if not t.timeout_s > 0:
        raise ConfigError(f"tmdb.timeout_s must be > 0, not {t.timeout_s:g}")
    if t.max_retries < 0:
        raise ConfigError(f"tmdb.max_retries must be >= 0, not {t.max_retries}")
    if not src.path:
        raise ConfigError("source.path must not be empty")
    if src.min_votes < 0:
        raise ConfigError(f"source.min_votes must be >= 0, not {src.min_votes}")
    if src.year_from < 0 or src.year_to < 0:
        raise ConfigError("source.year_from and source.year_to must be >= 0 (0 leaves that end open)")
    if src.year_from and src.year_to and src.year_from > src.year_to:
        raise ConfigError(f"source.year_from ({src.year_from}) is after source.year_to ({src.year_to})")
    _check_source_kind(src)
    if not snk.url:
        raise ConfigError("sink.url must not be empty")
    if is_s3_url(snk.url) and not parse_s3_url(snk.url)[0]:
        raise ConfigError(f"sink.url {snk.url!r} names no bucket")
    if is_s3_url(src.path):
        bucket, key = parse_s3_url(src.path)
        if not bucket or not key:
            raise ConfigError(f"source.path {src.path!r} must be s3://bucket/key")
    if snk.endpoint_url and not snk.endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(f"sink.endpoint_url must be an http(s) URL, not {snk.endpoint_url!r}")
    if snk.chunk_size < 1:
        raise ConfigError(f"sink.chunk_size must be >= 1, not {snk.chunk_size}")
    try:
        rendered = snk.partition.format(yyyy="2000", mm="01", dd="01", media="movies")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(
            f"sink.partition {snk.partition!r} may use only {{yyyy}} {{mm}} {{dd}} {{media}}"
        ) from None
    if ".." in rendered.split("/") or rendered.startswith("_"):
        raise ConfigError(f"sink.partition {snk.partition!r} must not start with '_' or contain '..'")
    if snk.chunk_size > 10_000:
        raise ConfigError(f"sink.chunk_size must be <= 10000, not {snk.chunk_size}")


def _check_source_kind(src: SourceSettings) -> None:
    if src.type in ("csv", "series_csv") and any(not isinstance(g, str) for g in src.genres):
        raise ConfigError("source.genres of a csv source are IMDb genre names (strings)")
    for name in ("date_from", "date_to"):
        value = getattr(src, name)
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"source.{name} must be a date YYYY-MM-DD, not {value!r}") from None
            if len(value) != 10:
                raise ConfigError(f"source.{name} must be a date YYYY-MM-DD, not {value!r}")
    if src.date_from and src.date_to and src.date_from > src.date_to:
        raise ConfigError(f"source.date_from ({src.date_from}) is after source.date_to ({src.date_to})")
    if src.type == "discover":
        if not src.sort_by.strip():
            raise ConfigError("source.sort_by must not be empty")
        reserved = {"page", "with_genres", "without_genres", "include_adult", "sort_by", "language"}
        for key in src.params:
            if key in reserved or key.startswith(("primary_release_date.", "first_air_date.")):
                raise ConfigError(f"source.params.{key} has a setting of its own in [source]")
        for g in src.genres:
            if isinstance(g, int) and g <= 0:
                raise ConfigError(f"source.genres: {g} is not a genre id")
    if src.type == "ids":
        for ident in src.ids:
            if not is_title_id(ident):
                raise ConfigError(f"source.ids: {ident!r} is neither an IMDb id (tt...) nor a TMDB id")


def is_title_id(text: str) -> bool:
    """'tt0111161' (IMDb) or '278' (TMDB)."""
    t = text.strip()
    return (t.startswith("tt") and t[2:].isdigit() and len(t) > 2) or (t.isdigit() and int(t) > 0)


def media_of(s: SourceSettings) -> Media:
    return "tv" if s.type == "series_csv" else s.media


def is_s3_url(url: str) -> bool:
    return url.startswith("s3://")


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b'); the key part has no leading or trailing slash."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")
