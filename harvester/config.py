"""The one typed settings object, parsed and validated once at the edge.

`load(path)` reads a TOML file and returns `Settings` or raises `ConfigError` with one line that
names the offending key. Nothing downstream re-validates. Secrets never live in the file: they come
from the environment (`Credentials.from_env`) or from AWS Secrets Manager (secret.py).

The settings are frozen msgspec Structs: types and bounds live in the annotations and are checked by
`msgspec.convert(..., strict=True)`; what spans several keys is checked after it (`_check_values`).
Built in code (`Settings(sink=SinkSettings(url=...))`), they are taken as given.
"""

from __future__ import annotations

import math
import operator
import os
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import inspect as mi

from .errors import ConfigError
from .items import OBJECT_NAMES, Media

LookupMode = Literal["direct", "find"]
SourceType = Literal["csv", "series_csv", "discover", "ids", "export", "people"]
GenresMode = Literal["any", "all", "only"]
Scalar = str | int | float | bool
OutputFormat = Literal["json", "jsonl"]
Compression = Literal["none", "gzip"]

MAX_APPENDS = 20  # TMDB answers the 21st append_to_response item with HTTP 400 (status 27)
# What TMDB appends to a details body, by media (its reference; account_states needs a user session).
# TMDB leaves an unknown name out without a word, and a body without a section the harvest asked for
# is never stored (tmdb/lookup.py), so a misspelt name would fail every title: refused at load instead.
APPENDS: Final[Mapping[str, frozenset[str]]] = {
    "movie": frozenset({
        "alternative_titles", "changes", "credits", "external_ids", "images", "keywords", "lists",
        "recommendations", "release_dates", "reviews", "similar", "translations", "videos",
        "watch/providers",
    }),
    "tv": frozenset({
        "aggregate_credits", "alternative_titles", "changes", "content_ratings", "credits",
        "episode_groups", "external_ids", "images", "keywords", "lists", "recommendations", "reviews",
        "screened_theatrically", "similar", "translations", "videos", "watch/providers",
    }),
    "person": frozenset({
        "changes", "combined_credits", "external_ids", "images", "movie_credits", "tagged_images",
        "translations", "tv_credits",
    }),
}  # fmt: skip
_SEASON = re.compile(r"season/[0-9]+")  # TV only: one season with its episodes

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class TmdbSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    base_url: str = "https://api.themoviedb.org/3"
    language: str = "en-US"
    append: Annotated[tuple[str, ...], msgspec.Meta(max_length=MAX_APPENDS)] = ("credits",)
    lookup: LookupMode = "direct"
    rate_limit: Positive = 40.0
    concurrency: AtLeastOne = 20
    timeout_s: Positive = 10.0
    max_retries: NonNegative = 6
    max_title_attempts: AtLeastOne = 3  # runs a transiently failing title gets before it fails for good


class SourceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    type: SourceType = "csv"
    path: NonEmpty = "movies.csv"  # csv, series_csv; ids (a file of ids, one a line) when `ids` is empty
    media: Media = "movie"
    genres: tuple[str | int, ...] = ()  # csv: IMDb names; discover: TMDB names or ids
    min_votes: NonNegative = 0
    year_from: NonNegative = 0  # csv, series_csv; 0 leaves that end open
    year_to: NonNegative = 0
    # discover
    genres_mode: GenresMode = "any"
    date_from: str = ""  # YYYY-MM-DD, primary_release_date (movie) / first_air_date (tv); "" = open
    date_to: str = ""
    language: str = ""  # "" = tmdb.language
    include_adult: bool = False
    sort_by: str = "popularity.desc"
    params: dict[str, Scalar] = msgspec.field(default_factory=dict)  # any other discover parameter
    details: bool = True  # false: store the discover results themselves, no request per title
    # ids
    ids: tuple[str, ...] = ()  # IMDb (tt...) or TMDB (numeric) ids
    # export: TMDB's daily id export (include_adult also reads the adult file)
    export_url: str = "https://files.tmdb.org/p/exports"
    export_date: str = ""  # YYYY-MM-DD; "" = the latest published (today's from 08:00 UTC)
    min_popularity: NonNegativeFloat = 0.0
    include_video: bool = False  # movies: keep the lines with "video": true
    # series: every season with its episodes too, into a seasons table of its own (tmdb/seasons.py)
    seasons: bool = False
    # people: the people in the credits of the harvest `from` (source/people.py); a credit is taken
    # when its department is in `departments` ("Acting" for the cast) or its job in `jobs`
    from_: str = msgspec.field(default="", name="from")
    departments: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()


class SinkSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: NonEmpty = "output"
    endpoint_url: str = ""
    region: str = "us-east-1"
    chunk_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    partition: str = "{yyyy}/{mm}/{dd}"  # placeholders {yyyy} {mm} {dd} {media} ("movies"/"series")
    format: OutputFormat = "json"
    compression: Compression = "none"
    lease_s: Annotated[float, msgspec.Meta(ge=1)] = 60.0  # a crashed run's lease blocks others this long
    unsafe_single_writer: bool = False  # the store cannot fence writers; the user promises there is one
    # An object also closes before the record that would take it past this many MB (1 MB = 1,000,000
    # bytes, as stored, gzip included); 0 = no limit. At most S3's 5 TB; TOML's inf is refused. Not in
    # the run's identity: it moves where objects end, never what a commit settles, so it may change.
    max_object_mb: Annotated[float, msgspec.Meta(ge=0, le=5_000_000)] = 0.0


class RefreshSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Each refresh also fetches again the held titles whose id % revisit_days is the slice of a day
    # since the last complete run (source/revisit.py): none is staler than that many days, whatever
    # the change lists missed. 0 turns it off. Not in the run's identity: it may change between runs.
    revisit_days: NonNegative = 30


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One harvest: what to take (source), from where (tmdb), to where (sink). `name` names its state,
    lease and summary; "" (a config of one harvest without a name) keeps the keys of its kind."""

    tmdb: TmdbSettings = msgspec.field(default_factory=TmdbSettings)
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    sink: SinkSettings = msgspec.field(default_factory=SinkSettings)
    refresh: RefreshSettings = msgspec.field(default_factory=RefreshSettings)
    name: str = ""


class HarvestSink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What one harvest of a list may set for itself; the rest of [sink] (where, the lease) is shared."""

    partition: str | None = None  # default in a list: "<name>/{yyyy}/{mm}/{dd}", a table folder each
    format: OutputFormat | None = None
    compression: Compression | None = None
    chunk_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    max_object_mb: Annotated[float, msgspec.Meta(ge=0, le=5_000_000)] | None = None


class HarvestTmdb(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What one harvest of a list may set of [tmdb] for itself: its appends (a people harvest appends a
    person's sections, not a movie's); the rest (one rate budget, one connection pool) is shared."""

    append: Annotated[tuple[str, ...], msgspec.Meta(max_length=MAX_APPENDS)] | None = None


class HarvestEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One `[[harvest]]` table."""

    name: str
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    sink: HarvestSink = msgspec.field(default_factory=HarvestSink)
    tmdb: HarvestTmdb = msgspec.field(default_factory=HarvestTmdb)
    refresh: RefreshSettings | None = None  # default: the shared [refresh]


class ConfigFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A config document: one harvest (`[source]`, optionally `name`), or a list of them (`[[harvest]]`)
    sharing `[tmdb]`, `[sink]` and `[refresh]`."""

    tmdb: TmdbSettings = msgspec.field(default_factory=TmdbSettings)
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    sink: SinkSettings = msgspec.field(default_factory=SinkSettings)
    refresh: RefreshSettings = msgspec.field(default_factory=RefreshSettings)
    harvest: tuple[HarvestEntry, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class Deployment:
    """The harvests one config describes, each a whole `Settings`; they share `[tmdb]` (one rate
    budget, one connection pool) and the sink's place. `listed`: the config has `[[harvest]]` tables."""

    harvests: tuple[Settings, ...]
    listed: bool = False
    sink: SinkSettings | None = None  # a list's [sink] as written (its url resolved); None: the harvest's

    @property
    def tmdb(self) -> TmdbSettings:
        return self.harvests[0].tmdb

    def only(self, names: Sequence[str]) -> Deployment:
        """The harvests named (`--only`), in the config's order."""
        known = [h.name for h in self.harvests]
        unknown = [n for n in names if n not in known]
        if unknown:
            listed = ", ".join(known) if self.listed else "none: this config is one harvest"
            raise ConfigError(f"--only {unknown[0]!r}: no such harvest (the config lists {listed})")
        return Deployment(tuple(h for h in self.harvests if h.name in names), self.listed, self.sink)


class Secret(str):
    """A str that never shows its value in repr/str formatting of containers."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class Credentials:
    """The TMDB credential, from the environment (`from_env`) or a Secrets Manager secret (secret.py);
    `secrets()` is what every log line and error message must not show."""

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
    """Read and validate a TOML config file of one harvest. Relative paths resolve against its folder."""
    return _single(load_deployment(path), str(path))


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate a TOML config file: one harvest or a `[[harvest]]` list."""
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
    return deployment_from_mapping(raw, base_dir=p.resolve().parent)


def from_mapping(raw: Mapping[str, Any], base_dir: Path | None = None) -> Settings:
    """Validate a parsed mapping of one harvest (a TOML document or a Lambda event's inline settings)."""
    return _single(deployment_from_mapping(raw, base_dir), "the settings")


def deployment_from_mapping(raw: Mapping[str, Any], base_dir: Path | None = None) -> Deployment:
    """Validate a parsed mapping: one harvest, or a `[[harvest]]` list sharing [tmdb], [sink], [refresh]."""
    try:
        doc = msgspec.convert(raw, ConfigFile, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), raw)) from None
    # TMDB's default append (`credits`) is no section of a person: a people harvest appends none unless told.
    tmdb_raw = raw.get("tmdb")
    said = isinstance(tmdb_raw, Mapping) and "append" in tmdb_raw
    if not doc.harvest:
        _check_name(doc.name, "name")
        tmdb = doc.tmdb
        if not said and media_of(doc.source) == "person":
            tmdb = msgspec.structs.replace(tmdb, append=())
        one = Settings(tmdb=tmdb, source=doc.source, sink=doc.sink, refresh=doc.refresh, name=doc.name)
        one = _resolve_paths(one, base_dir)
        _check_values(one)
        return Deployment((one,))
    for key in ("source", "name"):
        if key in raw:
            raise ConfigError(
                f"a config with [[harvest]] tables takes each harvest's source and name from them: "
                f"remove the top-level {'[source]' if key == 'source' else 'name'}"
            )
    harvests = tuple(_resolve_paths(_entry(doc, entry, said), base_dir) for entry in doc.harvest)
    for n, h in enumerate(harvests):
        _check_name(h.name, f"harvest[{n}].name", required=True)
        try:
            _check_values(h)
        except ConfigError as exc:
            raise ConfigError(f'harvest "{h.name}": {exc}') from None
    _check_list(harvests, doc.harvest)
    _check_from(harvests)
    shared = _resolve_paths(Settings(sink=doc.sink), base_dir).sink  # what spans the list: reference.py
    return Deployment(harvests, listed=True, sink=shared)


def _single(deployment: Deployment, where: str) -> Settings:
    if deployment.listed:
        raise ConfigError(f"{where} lists {len(deployment.harvests)} harvests; one was expected here")
    return deployment.harvests[0]


HARVEST_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The tables every run writes beside the harvests (reference.py): Athena's tmdb_reference_<table>.
REFERENCE: Final = "reference"
REFERENCE_TABLES: Final = ("genres", "countries", "languages", "certifications")


def _check_name(name: str, where: str, required: bool = False) -> None:
    if not name and not required:
        return
    if not HARVEST_NAME.fullmatch(name):
        raise ConfigError(
            f"{where} {name!r} must be 1-63 lowercase letters, digits, '-' or '_', starting with a "
            "letter or digit (it names the harvest's state, lease and table folder)"
        )
    if name.replace("-", "_") in {f"{REFERENCE}_{table}" for table in REFERENCE_TABLES}:
        raise ConfigError(
            f"{where} {name!r} gives the Athena table tmdb_{name.replace('-', '_')}, the name of a reference "
            "table (README: Reference tables): choose another name"
        )


def _entry(doc: ConfigFile, entry: HarvestEntry, said_append: bool) -> Settings:
    """One harvest of a list: the shared sections with what the entry sets for itself."""
    own = {k: v for k, v in msgspec.structs.asdict(entry.sink).items() if v is not None}
    own.setdefault("partition", f"{entry.name}/{{yyyy}}/{{mm}}/{{dd}}")
    append = entry.tmdb.append
    if append is None:
        append = doc.tmdb.append if said_append or media_of(entry.source) != "person" else ()
    return Settings(
        tmdb=msgspec.structs.replace(doc.tmdb, append=append),
        source=entry.source,
        sink=msgspec.structs.replace(doc.sink, **own),
        refresh=entry.refresh or doc.refresh,
        name=entry.name,
    )


def table_folder(partition: str, media: Media) -> str:
    """The folder readers take as one table for a partition template ('' is the sink's root): the
    folders before the first date placeholder."""
    fixed: list[str] = []
    for segment in partition.strip("/").split("/"):
        if any(p in segment for p in ("{yyyy}", "{mm}", "{dd}")):
            break
        fixed.append(segment.replace("{media}", OBJECT_NAMES[media]))
    return "".join(f"{folder}/" for folder in fixed)


def seasons_partition(partition: str) -> str:
    """Where a series harvest's seasons go: its partition with the table folder's last folder named
    `<folder>-seasons`, a table folder beside the series' ("series/{yyyy}/..." ->
    "series-seasons/{yyyy}/..."). A series table at the sink's root has no such place (refused at load)."""
    segments = partition.strip("/").split("/")
    fixed = 0
    while fixed < len(segments) and not _DATED.search(segments[fixed]):
        fixed += 1
    assert fixed, "a series table folder of its own"
    segments[fixed - 1] += "-seasons"
    return "/".join(segments)


_DATED = re.compile(r"\{(yyyy|mm|dd)\}")


def _athena_names(name: str) -> set[str]:
    table = name.replace("-", "_")
    return {table, f"{table}_outcomes", f"{table}_latest", f"{table}_seasons", f"{table}_seasons_latest"}


def _check_list(harvests: tuple[Settings, ...], entries: tuple[HarvestEntry, ...]) -> None:
    """Names unique; a table folder shared only by harvests that each say so, of one media."""
    seen: dict[str, Settings] = {}
    tables: _Tables = {}
    for h, entry in zip(harvests, entries, strict=True):
        # Athena's table names (lake/table.py): tmdb_<name> with '-' as '_', and its _outcomes and
        # _latest beside it; two names that meet there would make one CREATE ... IF NOT EXISTS a no-op.
        table = h.name.replace("-", "_")
        clash = next(
            (n for n in seen if table in _athena_names(n) or n.replace("-", "_") in _athena_names(h.name)),
            None,
        )
        if h.name in seen:
            raise ConfigError(f'harvest name "{h.name}" is used twice; each harvest needs its own')
        if clash is not None:
            raise ConfigError(
                f'harvest names "{clash}" and "{h.name}" give Athena tables of one name; rename one'
            )
        seen[h.name] = h
        media = media_of(h.source)
        folders: list[tuple[str, str]] = [(table_folder(h.sink.partition, media), media)]
        if h.source.seasons:
            folders.append((table_folder(seasons_partition(h.sink.partition), media), "seasons"))
        for folder, kind in folders:
            _claim_folder(folder, kind, h, entry, tables)


_Tables = dict[str, tuple["Settings", "HarvestEntry", str]]  # table folder -> who holds it, and what


def _claim_folder(folder: str, kind: str, h: Settings, entry: HarvestEntry, tables: _Tables) -> None:
    """A table folder of `kind` (a media, or "seasons") for harvest `h`: not nested in another, shared
    only when both harvests say so and hold one kind."""
    for other_folder, (other, _, _) in tables.items():
        outer, inner = sorted((folder, other_folder), key=len)
        if outer != inner and inner.startswith(outer):
            a, b = (other, h) if other_folder == outer else (h, other)
            raise ConfigError(
                f'the table folder of harvest "{a.name}" ({outer or "the sink root"!r}) holds that of '
                f'"{b.name}" ({inner!r}): readers of the first would read the second\'s objects too; '
                "give them folders side by side"
            )
    if folder not in tables:
        tables[folder] = (h, entry, kind)
        return
    other, other_entry, other_kind = tables[folder]
    where = f"table folder {folder or '(the sink root)'!r}"
    if entry.sink.partition is None or other_entry.sink.partition is None:
        raise ConfigError(
            f'harvests "{other.name}" and "{h.name}" would share the {where}: give each a '
            "partition of its own, or set the same partition in both to share it on purpose"
        )
    if kind != other_kind:
        kinds = {"movie": "movies", "tv": "series", "person": "people", "seasons": "seasons"}
        raise ConfigError(
            f'harvests "{other.name}" and "{h.name}" share the {where} but one holds {kinds[other_kind]} '
            f"and the other {kinds[kind]}: a reader of that folder would mix them"
        )


# ---------------------------------------------------------------------------------------------
# msgspec's errors ("Expected `int` >= 1 - at `$.tmdb.concurrency`") name the place but neither the
# value nor what would do. The message is rebuilt from the path, the raw value and the field's type.

_STEP = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>.*)`")
_MISSING = re.compile(r"Object missing required field `(?P<key>.*)`")


def _explain(error: str, raw: Any) -> str:
    what, _, where = error.partition(" - at ")
    name, hint, value = _walk(where.removeprefix("`key` in ").strip("`").removeprefix("$"), raw)
    if where.startswith("`key` in "):
        return f"{name} keys must be strings"
    missing = _MISSING.fullmatch(what)
    if missing:
        return f"{name}.{missing['key']} is required" if name else f"{missing['key']} is required"
    unknown = _UNKNOWN.fullmatch(what)
    if unknown:
        if not name:
            sections = ", ".join(f for f in ConfigFile.__struct_fields__ if f != "name")
            return f"unknown section [{unknown['key']}] (expected {sections})"
        return f"unknown key {name}.{unknown['key']}"
    info = mi.type_info(hint)
    if isinstance(info, mi.StructType):
        return f"[{name}] must be a table" if name else "the settings must be a table"
    if get_origin(_bare(hint)) is Literal:  # listed as declared (type_info sorts them)
        choices = ", ".join(repr(v) for v in get_args(_bare(hint)))
        return f"{name} must be one of {choices}, not {_show(value)}"
    if "got `" in what:
        return f"{name} must be {_describe(info)}, not {_show(value)}"
    return f"{name} {_violated(info, value) or what}"


def _walk(path: str, raw: Any) -> tuple[str, Any, Any]:
    """Follow msgspec's path through the settings types and the raw document together:
    (dotted name, type hint, raw value) of the place it names."""
    name: str = ""
    hint: Any = ConfigFile
    value: Any = raw
    for field, index in _STEP.findall(path):
        hint = _bare(hint)
        if field:
            attr = {f.encode_name: f.name for f in msgspec.structs.fields(hint)}.get(field, field)  # from
            hint = get_type_hints(hint, include_extras=True)[attr]
            value = value.get(field) if isinstance(value, Mapping) else None
            name = f"{name}.{field}" if name else field
        elif index == "...":  # a value in a table; msgspec does not say which one
            hint = get_args(hint)[1]
            key, value = _first_bad(value, hint)
            name = f"{name}.{key}"
        else:
            hint = get_args(hint)[0]
            value = value[int(index)] if isinstance(value, list | tuple) else None
            name = f"{name}[{index}]"
    return name, hint, value


def _bare(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


def _first_bad(table: Any, hint: Any) -> tuple[str, Any]:
    for key, value in table.items() if isinstance(table, Mapping) else ():
        try:
            msgspec.convert(value, hint, strict=True)
        except msgspec.ValidationError:
            return str(key), value
    return "...", None


def _describe(info: mi.Type, plural: bool = False, in_union: bool = False) -> str:
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in info.values)
    if isinstance(info, mi.VarTupleType):
        return ("lists" if plural else "a list") + " of " + _describe(info.item_type, plural=True)
    if isinstance(info, mi.DictType):
        return ("tables" if plural else "a table") + " of " + _describe(info.value_type, plural=True)
    if isinstance(info, mi.UnionType):
        words = [_describe(t, plural, in_union=True) for t in info.types]
        return ", ".join(words[:-1]) + " or " + words[-1]
    if isinstance(info, mi.BoolType) and not plural and not in_union:
        return "true or false"
    nouns = {
        mi.IntType: ("an integer", "integers"),
        mi.FloatType: ("a number", "numbers"),
        mi.StrType: ("a string", "strings"),
        mi.BoolType: ("a boolean", "booleans"),
    }
    singular, many = nouns.get(type(info), (str(info), str(info)))
    return many if plural else singular


def _violated(info: mi.Type, value: Any) -> str | None:
    """The bound of `info` that `value` (of the right type) breaks, as the end of a sentence."""
    if isinstance(info, mi.IntType | mi.FloatType):
        for sign, bound, holds in (
            (">=", info.ge, operator.ge),
            (">", info.gt, operator.gt),
            ("<=", info.le, operator.le),
            ("<", info.lt, operator.lt),
        ):
            if bound is not None and not holds(value, bound):
                return f"must be {sign} {bound}, not {_show(value)}"
    if isinstance(info, mi.StrType | mi.VarTupleType | mi.DictType) and isinstance(value, str | list | dict):
        what = "characters" if isinstance(value, str) else "items"
        if info.min_length is not None and len(value) < info.min_length:
            return "must not be empty" if info.min_length == 1 else f"needs at least {info.min_length} {what}"
        if info.max_length is not None and len(value) > info.max_length:
            return f"has {len(value)} {what}; at most {info.max_length} are allowed"
    return None


def _show(value: Any) -> str:
    if isinstance(value, date | time):  # TOML reads an unquoted 1990-01-01 as a date
        return f'the unquoted TOML date {value.isoformat()} (write "{value.isoformat()}")'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve_paths(s: Settings, base_dir: Path | None) -> Settings:
    if base_dir is None:
        return s
    source, sink = s.source, s.sink
    if not is_s3_url(source.path) and not Path(source.path).is_absolute():
        source = msgspec.structs.replace(source, path=str(base_dir / source.path))
    if not is_s3_url(sink.url) and not Path(sink.url).is_absolute():
        sink = msgspec.structs.replace(sink, url=str(base_dir / sink.url))
    return msgspec.structs.replace(s, source=source, sink=sink)


def _check_values(s: Settings) -> None:
    """What the field types cannot say: URL schemes, item syntax, ranges spanning two keys."""
    t, src, snk = s.tmdb, s.source, s.sink
    if not t.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"tmdb.base_url must be an http(s) URL, not {t.base_url!r}")
    if not t.language.strip():
        raise ConfigError("tmdb.language must not be empty")
    for item in t.append:
        if not item or "," in item or item != item.strip():
            raise ConfigError(f"tmdb.append item {item!r} is not a sub-resource name")
    if len(set(t.append)) != len(t.append):
        raise ConfigError("tmdb.append lists a sub-resource twice")
    media = media_of(src)
    for item in t.append:
        if item not in APPENDS[media] and not (media == "tv" and _SEASON.fullmatch(item)):
            known = ", ".join(sorted(APPENDS[media])) + (", season/N" if media == "tv" else "")
            raise ConfigError(
                f"tmdb.append item {item!r} is not appended to {media} details by TMDB (known: {known})"
            )
    for name, number in (
        ("tmdb.rate_limit", t.rate_limit),
        ("tmdb.timeout_s", t.timeout_s),
        ("sink.lease_s", snk.lease_s),
    ):
        if math.isinf(number):  # TOML has `inf`: an endless timeout hangs, an endless lease blocks later runs
            raise ConfigError(f"{name} must be a finite number, not {number}")
    if src.year_from and src.year_to and src.year_from > src.year_to:
        raise ConfigError(f"source.year_from ({src.year_from}) is after source.year_to ({src.year_to})")
    _check_source_kind(src)
    if src.seasons:
        _check_seasons(s)
    if is_s3_url(snk.url) and not parse_s3_url(snk.url)[0]:
        raise ConfigError(f"sink.url {snk.url!r} names no bucket")
    if is_s3_url(src.path):
        bucket, key = parse_s3_url(src.path)
        if not bucket or not key:
            raise ConfigError(f"source.path {src.path!r} must be s3://bucket/key")
    if snk.endpoint_url and not snk.endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(f"sink.endpoint_url must be an http(s) URL, not {snk.endpoint_url!r}")
    _check_partition(snk.partition)


PARTITION_PLACEHOLDERS = ("yyyy", "mm", "dd", "media")


def _check_partition(template: str) -> None:
    """Refuse a template that could put data where readers miss it or outside its folder."""
    where = f"sink.partition {template!r}"
    known = " ".join(f"{{{p}}}" for p in PARTITION_PLACEHOLDERS)
    if not template:
        raise ConfigError(f"sink.partition must not be empty (e.g. {'{yyyy}/{mm}/{dd}'!r})")
    if "\\" in template:
        raise ConfigError(f"{where} has a backslash; folders are separated by '/'")
    try:
        fields = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(template) if n is not None]
    except ValueError:
        raise ConfigError(f"{where} has an unmatched brace; placeholders are {known}") from None
    for name, spec, conv in fields:
        if name not in PARTITION_PLACEHOLDERS or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            plain = " (no conversion or format spec)" if spec or conv else ""
            raise ConfigError(f"{where} uses {shown}; the placeholders are {known}{plain}")
    for segment in template.split("/"):
        folder = segment.format(yyyy="2000", mm="01", dd="01", media="movies")
        if not folder:
            raise ConfigError(f"{where} has an empty folder name (a leading, trailing or double '/')")
        if folder in (".", ".."):
            raise ConfigError(f"{where} has a {folder!r} folder; it must name real folders")
        if folder.startswith(("_", ".")):
            raise ConfigError(
                f"{where}: folder {segment!r} starts with {folder[0]!r}, and Spark, Glue and Athena "
                "skip such folders"
            )


def _check_source_kind(src: SourceSettings) -> None:
    if src.type in ("csv", "series_csv") and any(not isinstance(g, str) for g in src.genres):
        raise ConfigError("source.genres of a csv source are IMDb genre names (strings)")
    for name in ("date_from", "date_to", "export_date"):
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
    if src.type == "export":
        _check_export(src)
    if src.type == "ids":
        for ident in src.ids:
            if not is_title_id(ident):
                raise ConfigError(f"source.ids: {ident!r} is neither an IMDb id (tt...) nor a TMDB id")
            if src.media == "person" and not ident.strip().isdigit():
                raise ConfigError(f"source.ids: {ident!r} is not a TMDB person id (a person has no tt id)")
    _check_people(src)


# TMDB's departments (/configuration/jobs), and "Acting" for the cast: a misspelt one would match nobody.
DEPARTMENTS: Final = frozenset({
    "Acting", "Art", "Camera", "Costume & Make-Up", "Creator", "Crew", "Directing", "Editing", "Lighting",
    "Production", "Sound", "Visual Effects", "Writing",
})  # fmt: skip


def _check_people(src: SourceSettings) -> None:
    """A people harvest names the harvest whose credits it reads; person media only where TMDB has it."""
    if src.type != "people":
        used = next((key for key in ("from_", "departments", "jobs") if getattr(src, key)), None)
        if used is not None:
            raise ConfigError(f'source.{used.rstrip("_")} applies to type = "people" only')
        if src.media == "person" and src.type not in ("export", "ids"):
            raise ConfigError('source.media "person" is for type "people", "export" or "ids" only')
        return
    if not src.from_:
        raise ConfigError('source.from is required with type = "people": the harvest whose credits it reads')
    if not HARVEST_NAME.fullmatch(src.from_):
        raise ConfigError(f"source.from {src.from_!r} is not a harvest name (e.g. 'movies', 'csv-movie')")
    for item in src.departments:
        if item not in DEPARTMENTS:
            known = ", ".join(sorted(DEPARTMENTS))
            raise ConfigError(f"source.departments: {item!r} is not a TMDB department ({known})")
    for item in src.jobs:
        if not item.strip() or item != item.strip():
            raise ConfigError(f"source.jobs item {item!r} is not a job name (e.g. 'Director')")
    other = ("genres", "min_votes", "year_from", "year_to", "date_from", "date_to", "ids", "export_date")
    unused = [key for key in other if getattr(src, key)]
    if unused:
        raise ConfigError(
            f"source.{unused[0]} does not apply to a people harvest (use departments, jobs, min_popularity)"
        )


def _check_from(harvests: tuple[Settings, ...]) -> None:
    """In a list, a people harvest reads the credits of another harvest of it, of movies or series."""
    by_name = {h.name: h for h in harvests}
    for h in harvests:
        if h.source.type != "people":
            continue
        where = f'harvest "{h.name}": source.from {h.source.from_!r}'
        other = by_name.get(h.source.from_)
        if other is None or other is h:
            raise ConfigError(f"{where} names no other harvest of this list ({', '.join(by_name)})")
        if media_of(other.source) == "person":
            raise ConfigError(f"{where} is a harvest of people; name a harvest of movies or series")
        summaries = other.source.type == "discover" and not other.source.details
        if summaries or not CREDIT_SECTIONS & set(other.tmdb.append):
            raise ConfigError(
                f"{where}: its records carry no credits (it appends neither credits nor aggregate_credits)"
            )


CREDIT_SECTIONS: Final = frozenset({"credits", "aggregate_credits"})  # what a people harvest reads


def _check_seasons(s: Settings) -> None:
    src, append = s.source, s.tmdb.append
    if media_of(src) != "tv":
        raise ConfigError('source.seasons applies to series (series_csv, or media = "tv")')
    if src.type == "discover" and not src.details:
        raise ConfigError("source.seasons needs details = true (a discover summary has no seasons)")
    if not table_folder(s.sink.partition, "tv"):
        raise ConfigError(
            f"source.seasons needs the series in a table folder of their own, beside the seasons': "
            f"sink.partition {s.sink.partition!r} puts them at the sink's root, whose readers would read "
            'the seasons too (e.g. partition = "series/{yyyy}/{mm}/{dd}")'
        )
    chained = [item for item in append if _SEASON.fullmatch(item)]
    if chained:
        raise ConfigError(f"tmdb.append item {chained[0]!r}: with source.seasons every season is fetched")
    # What TMDB appends to a series is 17 names: a season always has a place beside them.


def _check_export(src: SourceSettings) -> None:
    if not src.export_url.startswith(("http://", "https://")):
        raise ConfigError(f"source.export_url must be an http(s) URL, not {src.export_url!r}")
    if math.isinf(src.min_popularity):
        raise ConfigError("source.min_popularity must be a finite number")
    # The export's lines carry only id, title, popularity, adult and video: refuse filters it cannot apply.
    filters = ("genres", "min_votes", "year_from", "year_to", "date_from", "date_to")
    unused = [name for name in filters if getattr(src, name)]
    if unused:
        raise ConfigError(
            f"source.{unused[0]} does not apply to an export source (its lines have only popularity, "
            "adult and video: use min_popularity, include_adult, include_video)"
        )


def is_title_id(text: str) -> bool:
    """'tt0111161' (IMDb) or '278' (TMDB)."""
    t = text.strip()
    return (t.startswith("tt") and t[2:].isdigit() and len(t) > 2) or (t.isdigit() and int(t) > 0)


def harvest_id(s: Settings) -> str:
    """What names a harvest's state and lease objects: its name, else its kind ("csv-movie"), the keys
    a config of one harvest has always had, so an existing harvest resumes where it is."""
    return s.name or f"{s.source.type}-{media_of(s.source)}"


def media_of(s: SourceSettings) -> Media:
    return "tv" if s.type == "series_csv" else "person" if s.type == "people" else s.media


def is_s3_url(url: str) -> bool:
    return url.startswith("s3://")


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b'); the key part has no leading or trailing slash."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")
