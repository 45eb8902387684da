from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from harvester import config
from harvester.config import (
    Credentials,
    RefreshSettings,
    Settings,
    SinkSettings,
    SourceSettings,
    TmdbSettings,
)
from harvester.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def refused(tmp_path: Path, text: str) -> str:
    """The one-line message a config file is refused with."""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_shipped_config_is_valid_and_matches_the_contract() -> None:
    s = config.load(ROOT / "config.toml")
    assert s.tmdb.rate_limit == 40 and s.tmdb.concurrency == 20 and s.tmdb.append == ("credits",)
    assert s.tmdb.lookup == "direct" and s.tmdb.max_retries == 6 and s.tmdb.timeout_s == 10
    assert s.tmdb.max_title_attempts == 3
    assert s.source.genres == ("Sci-Fi", "Fantasy")
    assert s.source.path == str(ROOT / "movies.csv")  # relative to the config file
    assert s.sink.url == "s3://my-bucket/Raw/TMDB/JSON" and s.sink.chunk_size == 100
    assert s.sink.lease_s == 60 and s.sink.unsafe_single_writer is False
    assert s.refresh.revisit_days == 30


def test_shipped_config_documents_every_key() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for section in (TmdbSettings, SourceSettings, SinkSettings, RefreshSettings):
        for key in (f.encode_name for f in msgspec.structs.fields(section)):  # `from` is field from_
            assert re.search(rf"\b{key} = ", text), key


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = config.load(write(tmp_path, ""))
    assert s.tmdb == Settings().tmdb
    assert s.sink.url == str(tmp_path / "output")
    assert s.tmdb.max_title_attempts == 3
    assert s.sink.lease_s == 60.0 and s.sink.unsafe_single_writer is False


def test_defaults_pass_their_own_validation() -> None:
    defaults = Settings()
    assert config.from_mapping(msgspec.to_builtins(defaults)) == defaults


def test_settings_built_in_code() -> None:
    s = Settings(tmdb=TmdbSettings(rate_limit=5.0), sink=SinkSettings(url="s3://b/p", lease_s=2.0))
    assert s.tmdb.rate_limit == 5.0 and s.tmdb.concurrency == 20 and s.source == SourceSettings()
    assert s.sink.url == "s3://b/p" and s.sink.lease_s == 2.0 and s.sink.partition == "{yyyy}/{mm}/{dd}"
    with pytest.raises(AttributeError):
        s.tmdb.rate_limit = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        TmdbSettings("https://x")  # type: ignore[call-arg]  # keyword-only: no positional mix-ups


def test_lists_become_tuples_and_numbers_floats(tmp_path: Path) -> None:
    s = config.load(
        write(
            tmp_path,
            '[tmdb]\nappend = ["credits", "keywords"]\nrate_limit = 5\ntimeout_s = 2\n'
            '[source]\ntype = "discover"\ngenres = ["Crime", 18]\n'
            'params = { with_original_language = "pt" }\n'
            "[sink]\nlease_s = 30\n",
        )
    )
    assert s.tmdb.append == ("credits", "keywords") and s.source.genres == ("Crime", 18)
    assert s.source.params == {"with_original_language": "pt"}
    for value in (s.tmdb.rate_limit, s.tmdb.timeout_s, s.sink.lease_s):
        assert type(value) is float
    assert (s.tmdb.rate_limit, s.tmdb.timeout_s, s.sink.lease_s) == (5.0, 2.0, 30.0)
    ids = config.load(write(tmp_path, '[source]\ntype = "ids"\nids = ["tt0111161", "550"]'))
    assert ids.source.ids == ("tt0111161", "550")


def test_new_settings_are_read(tmp_path: Path) -> None:
    s = config.load(
        write(tmp_path, "[tmdb]\nmax_title_attempts = 1\n[sink]\nlease_s = 1\nunsafe_single_writer = true\n")
    )
    assert s.tmdb.max_title_attempts == 1 and s.sink.lease_s == 1.0 and s.sink.unsafe_single_writer is True
    assert config.load(write(tmp_path, "")).refresh.revisit_days == 30  # the default
    for days in (0, 1, 7):
        assert (
            config.load(write(tmp_path, f"[refresh]\nrevisit_days = {days}\n")).refresh.revisit_days == days
        )
    inline = config.from_mapping({"refresh": {"revisit_days": 0}})  # a Lambda event's settings
    assert inline.refresh == RefreshSettings(revisit_days=0)
    with pytest.raises(ConfigError, match=r"^refresh.revisit_days must be >= 0, not -2$"):
        config.from_mapping({"refresh": {"revisit_days": -2}})


def test_relative_paths_resolve_only_when_loaded_from_a_file(tmp_path: Path) -> None:
    text = '[source]\npath = "in/movies.csv"\n[sink]\nurl = "lake"\n'
    s = config.load(write(tmp_path, text))
    assert s.source.path == str(tmp_path / "in" / "movies.csv") and s.sink.url == str(tmp_path / "lake")
    s3 = config.load(write(tmp_path, '[source]\npath = "s3://b/movies.csv"\n[sink]\nurl = "s3://b/raw"\n'))
    assert s3.source.path == "s3://b/movies.csv" and s3.sink.url == "s3://b/raw"
    inline = config.from_mapping({"source": {"path": "in/movies.csv"}, "sink": {"url": "lake"}})
    assert inline.source.path == "in/movies.csv" and inline.sink.url == "lake"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tmdb]\nrate_limt = 1", "unknown key tmdb.rate_limt"),
        ("[sink]\nfoo = 1", "unknown key sink.foo"),
        ("[bar]\nx = 1", "unknown section [bar] (expected tmdb, source, sink, refresh, harvest)"),
        ("tmdb = 3", "[tmdb] must be a table"),
        ('[tmdb]\nrate_limit = "fast"', "tmdb.rate_limit must be a number, not 'fast'"),
        ("[tmdb]\nrate_limit = 0", "tmdb.rate_limit must be > 0, not 0"),
        ("[tmdb]\nrate_limit = -3.5", "tmdb.rate_limit must be > 0, not -3.5"),
        ("[tmdb]\nrate_limit = nan", "tmdb.rate_limit must be > 0, not nan"),
        ("[tmdb]\nrate_limit = inf", "tmdb.rate_limit must be a finite number, not inf"),
        ("[tmdb]\ntimeout_s = inf", "tmdb.timeout_s must be a finite number, not inf"),
        ("[sink]\nlease_s = inf", "sink.lease_s must be a finite number, not inf"),
        ("[tmdb]\nconcurrency = 0", "tmdb.concurrency must be >= 1, not 0"),
        ("[tmdb]\ntimeout_s = 0", "tmdb.timeout_s must be > 0, not 0"),
        ("[tmdb]\nmax_retries = -1", "tmdb.max_retries must be >= 0, not -1"),
        ("[tmdb]\nmax_title_attempts = 0", "tmdb.max_title_attempts must be >= 1, not 0"),
        ('[tmdb]\nlookup = "guess"', "tmdb.lookup must be one of 'direct', 'find', not 'guess'"),
        ('[tmdb]\nappend = "credits"', "tmdb.append must be a list of strings, not 'credits'"),
        ('[tmdb]\nappend = ["credits", 3]', "tmdb.append[1] must be a string, not 3"),
        (
            "[tmdb]\nappend = " + str([f"a{i}" for i in range(21)]).replace("'", '"'),
            "tmdb.append has 21 items; at most 20 are allowed",
        ),
        ('[tmdb]\nappend = ["credits", "credits"]', "tmdb.append lists a sub-resource twice"),
        ('[tmdb]\nbase_url = "ftp://x"', "tmdb.base_url must be an http(s) URL, not 'ftp://x'"),
        (
            '[source]\ntype = "xml"',
            "source.type must be one of 'csv', 'series_csv', 'discover', 'ids', 'export', 'people', "
            "not 'xml'",
        ),
        ('[source]\npath = ""', "source.path must not be empty"),
        ("[source]\nmin_votes = -1", "source.min_votes must be >= 0, not -1"),
        ("[source]\nyear_to = -1", "source.year_to must be >= 0, not -1"),
        (
            "[source]\nyear_from = 2000\nyear_to = 1990",
            "source.year_from (2000) is after source.year_to (1990)",
        ),
        ("[source]\ngenres = [1.5]", "source.genres[0] must be a string or an integer, not 1.5"),
        (
            '[source]\ntype = "discover"\nparams = { region = "BR", page = [1] }',
            "source.params.page must be a string, an integer, a number or a boolean, not [1]",
        ),
        (
            '[source]\ntype = "discover"\ndate_from = 1990-01-01',
            'source.date_from must be a string, not the unquoted TOML date 1990-01-01 (write "1990-01-01")',
        ),
        ("[source]\ninclude_adult = 1", "source.include_adult must be true or false, not 1"),
        ("[sink]\nchunk_size = 0", "sink.chunk_size must be >= 1, not 0"),
        ("[sink]\nchunk_size = 10001", "sink.chunk_size must be <= 10000, not 10001"),
        ('[sink]\nformat = "xml"', "sink.format must be one of 'json', 'jsonl', not 'xml'"),
        ('[sink]\ncompression = "zip"', "sink.compression must be one of 'none', 'gzip', not 'zip'"),
        ('[sink]\nurl = ""', "sink.url must not be empty"),
        ('[sink]\nurl = "s3://"', "sink.url 's3://' names no bucket"),
        ("[sink]\nlease_s = 0.5", "sink.lease_s must be >= 1, not 0.5"),
        ("[refresh]\nrevisit_days = -1", "refresh.revisit_days must be >= 0, not -1"),
        ('[refresh]\nrevisit_days = "30"', "refresh.revisit_days must be an integer, not '30'"),
        ("[refresh]\nrevisit_dayz = 3", "unknown key refresh.revisit_dayz"),
        ("refresh = 30", "[refresh] must be a table"),
        (
            '[sink]\nunsafe_single_writer = "yes"',
            "sink.unsafe_single_writer must be true or false, not 'yes'",
        ),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert refused(tmp_path, text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tmdb]\nappend = ["credit"]', "tmdb.append item 'credit' is not appended to movie details by TMDB"),
        (
            '[tmdb]\nappend = ["aggregate_credits"]',
            "tmdb.append item 'aggregate_credits' is not appended to movie details by TMDB",
        ),
        (
            '[source]\ntype = "series_csv"\n[tmdb]\nappend = ["release_dates"]',
            "tmdb.append item 'release_dates' is not appended to tv details by TMDB",
        ),
        (
            '[source]\ntype = "series_csv"\n[tmdb]\nappend = ["season/x"]',
            "tmdb.append item 'season/x' is not appended to tv details by TMDB",
        ),
    ],
)
def test_an_append_tmdb_does_not_serve_for_the_media_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    # TMDB leaves an unknown name out in silence: every body would lack it and fail `append_missing`.
    error = refused(tmp_path, text)
    assert error.startswith(message + " (known: ") and "credits" in error


def test_the_appends_tmdb_serves_are_accepted(tmp_path: Path) -> None:
    movie = '[tmdb]\nappend = ["credits", "external_ids", "watch/providers", "release_dates"]'
    tv = '[source]\ntype = "series_csv"\n[tmdb]\nappend = ["aggregate_credits", "season/1", "season/12"]'
    assert config.load(write(tmp_path, movie)).tmdb.append[2] == "watch/providers"
    assert config.load(write(tmp_path, tv)).tmdb.append[1:] == ("season/1", "season/12")


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("tmdb.concurrency", "an integer"),
        ("tmdb.max_retries", "an integer"),
        ("tmdb.max_title_attempts", "an integer"),
        ("sink.chunk_size", "an integer"),
        ("source.min_votes", "an integer"),
        ("refresh.revisit_days", "an integer"),
        ("tmdb.rate_limit", "a number"),
        ("tmdb.timeout_s", "a number"),
        ("sink.lease_s", "a number"),
    ],
)
def test_booleans_are_not_numbers(tmp_path: Path, key: str, kind: str) -> None:
    section, name = key.split(".")
    assert refused(tmp_path, f"[{section}]\n{name} = true") == f"{key} must be {kind}, not True"


@pytest.mark.parametrize(
    "key",
    [
        "tmdb.concurrency",
        "tmdb.max_retries",
        "tmdb.max_title_attempts",
        "sink.chunk_size",
        "refresh.revisit_days",
    ],
)
def test_floats_are_not_integers(tmp_path: Path, key: str) -> None:
    section, name = key.split(".")
    assert refused(tmp_path, f"[{section}]\n{name} = 2.0") == f"{key} must be an integer, not 2.0"


def test_other_file_errors(tmp_path: Path) -> None:
    assert "not valid TOML" in refused(tmp_path, "[tmdb\nrate_limit = 1")
    with pytest.raises(ConfigError, match=r"^config file not found: "):
        config.load(tmp_path / "nope.toml")


def test_inline_settings_errors() -> None:
    with pytest.raises(ConfigError, match=r"^the settings must be a table$"):
        config.from_mapping([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^source.params keys must be strings$"):
        config.from_mapping({"source": {"params": {3: "x"}}})


@pytest.mark.parametrize(
    ("partition", "needle"),
    [
        ("", "must not be empty"),
        ("{yyyy}//{mm}", "empty folder name"),
        ("/x", "empty folder name"),
        ("x/", "empty folder name"),
        ("/", "empty folder name"),
        ("a/./{yyyy}", "has a '.' folder"),
        ("..", "has a '..' folder"),
        ("{yyyy}/../x", "has a '..' folder"),
        ("_tmp/{yyyy}", "folder '_tmp' starts with '_'"),
        ("{media}/_{yyyy}", "folder '_{yyyy}' starts with '_'"),
        (".hidden/{yyyy}", "folder '.hidden' starts with '.'"),
        ("{yyyy}\\{mm}", "has a backslash"),
        ("{year}/{mm}", "uses {year}; the placeholders are {yyyy} {mm} {dd} {media}"),
        ("{0}", "uses {0}"),
        ("{}", "uses {}"),
        ("{yyyy:>6}", "uses {yyyy:>6}; the placeholders are {yyyy} {mm} {dd} {media} (no conversion"),
        ("{yyyy!r}", "uses {yyyy!r}"),
        ("{yyyy/{mm}", "unmatched brace"),
        ("x}", "unmatched brace"),
    ],
)
def test_bad_partition_is_refused_at_load(tmp_path: Path, partition: str, needle: str) -> None:
    text = f"[sink]\npartition = {msgspec.json.encode(partition).decode()}"
    message = refused(tmp_path, text)
    assert message.startswith("sink.partition") and needle in message


@pytest.mark.parametrize(
    "partition",
    [
        "{yyyy}/{mm}/{dd}",
        "{media}/{yyyy}/{mm}/{dd}",
        "year={yyyy}/month={mm}",
        "raw",
        "tmdb-{media}/{yyyy}{mm}",
    ],
)
def test_good_partitions(tmp_path: Path, partition: str) -> None:
    text = f"[sink]\npartition = {msgspec.json.encode(partition).decode()}"
    assert config.load(write(tmp_path, text)).sink.partition == partition


def test_credentials_from_env_never_show_in_repr() -> None:
    c = Credentials.from_env({"TMDB_ACCESS_TOKEN": "tok-secret", "TMDB_API_KEY": ""})
    assert c.present and c.access_token == "tok-secret" and c.api_key is None
    assert "tok-secret" not in repr(c)
    assert not Credentials.from_env({}).present
