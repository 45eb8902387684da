from __future__ import annotations

from pathlib import Path

import pytest

from harvester import config
from harvester.config import Credentials, Settings
from harvester.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_is_valid_and_matches_the_contract() -> None:
    s = config.load(ROOT / "config.toml")
    assert s.tmdb.rate_limit == 40 and s.tmdb.concurrency == 20 and s.tmdb.append == ("credits",)
    assert s.tmdb.lookup == "direct" and s.tmdb.max_retries == 6 and s.tmdb.timeout_s == 10
    assert s.source.genres == ("Sci-Fi", "Fantasy")
    assert s.source.path == str(ROOT / "movies.csv")  # relative to the config file
    assert s.sink.url == "s3://my-bucket/Raw/TMDB/JSON" and s.sink.chunk_size == 100


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = config.load(write(tmp_path, ""))
    assert s.tmdb == Settings().tmdb
    assert s.sink.url == str(tmp_path / "output")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tmdb\nrate_limit = 1", "not valid TOML"),
        ("[tmdb]\nrate_limt = 1", "unknown key tmdb.rate_limt"),
        ("[other]\nx = 1", "unknown section"),
        ('[tmdb]\nrate_limit = "fast"', "tmdb.rate_limit must be a number"),
        ("[tmdb]\nrate_limit = 0", "tmdb.rate_limit must be > 0"),
        ("[tmdb]\nrate_limit = -3", "tmdb.rate_limit must be > 0"),
        ("[tmdb]\nconcurrency = 0", "tmdb.concurrency must be >= 1"),
        ("[tmdb]\nconcurrency = 2.5", "tmdb.concurrency must be an integer"),
        ("[tmdb]\nconcurrency = true", "tmdb.concurrency must be an integer"),
        ('[tmdb]\nlookup = "guess"', "tmdb.lookup must be one of"),
        ("[tmdb]\nappend = " + str([f"a{i}" for i in range(21)]).replace("'", '"'), "at most 20"),
        ('[tmdb]\nappend = "credits"', "tmdb.append must be a list"),
        ('[tmdb]\nbase_url = "ftp://x"', "tmdb.base_url"),
        ("[tmdb]\nmax_retries = -1", "tmdb.max_retries"),
        ("[sink]\nchunk_size = 0", "sink.chunk_size must be >= 1"),
        ('[sink]\nformat = "xml"', "sink.format must be one of"),
        ('[sink]\ncompression = "zip"', "sink.compression"),
        ('[sink]\nurl = "s3://"', "names no bucket"),
        ("[source]\nyear_from = 2000\nyear_to = 1990", "year_from (2000) is after source.year_to"),
        ("[source]\nmin_votes = -1", "source.min_votes"),
        ('[source]\ntype = "xml"', "source.type must be one of"),
        ("tmdb = 3", "[tmdb] must be a table"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        config.load(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_credentials_from_env_never_show_in_repr() -> None:
    c = Credentials.from_env({"TMDB_ACCESS_TOKEN": "tok-secret", "TMDB_API_KEY": ""})
    assert c.present and c.access_token == "tok-secret" and c.api_key is None
    assert "tok-secret" not in repr(c)
    assert not Credentials.from_env({}).present
