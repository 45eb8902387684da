"""The pure parts of fetching seasons (harvester/tmdb/seasons.py): what is asked, how a body is taken
apart, what a series costs; and where the seasons go (config.seasons_partition)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import msgspec
import orjson
import pytest

from harvester import config
from harvester.check import estimate_requests
from harvester.errors import ConfigError
from harvester.lake.chunks import ChunkEncoder
from harvester.lake.state import Identity, SinkIdentity, SourceIdentity, TmdbIdentity, run_id_for
from harvester.tmdb import seasons
from harvester.tmdb.client import UnusableBody


def test_the_details_request_fills_its_20_appends_with_the_first_seasons() -> None:
    assert seasons.first_seasons(("credits",)) == tuple(f"season/{n}" for n in range(19))
    assert len(seasons.first_seasons(("credits", "external_ids", "keywords"))) == 17
    assert len(seasons.first_seasons(())) == 20


@pytest.mark.parametrize(
    ("listed", "own", "requests"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (19, 1, 1),
        (20, 1, 2),
        (38, 1, 2),
        (39, 1, 3),
        (61, 1, 4),
        (20, 0, 1),
        (21, 0, 2),
    ],
)
def test_a_series_costs_one_request_and_one_per_19_seasons_past_the_first(
    listed: int, own: int, requests: int
) -> None:
    assert seasons.requests_for(listed, own) == requests
    first = len(seasons.first_seasons(("x",) * own))
    assert 1 + len(seasons.follow_ups(list(range(first, listed)))) == requests


def test_split_takes_the_seasons_out_and_keeps_every_other_member_as_sent() -> None:
    season_1 = b'{"_id":"a","season_number":1,"episodes":[{"id":9,"name":"Pilot \\u00e9"}]}'
    body = (
        b'{"id":1399,"name":"GoT","seasons":[{"season_number":0},{"season_number":1},{"season_number":2}],'
        b'"credits":{"cast":[{"id":1,"name":"A"}]},"season/1":' + season_1 + b',"season/5":null,"x":1.50}'
    )
    parts = seasons.split(body)
    assert parts.listed == (0, 1, 2)
    assert parts.sections == {1: season_1}  # a null section is none
    assert orjson.loads(parts.series) == {
        "id": 1399,
        "name": "GoT",
        "seasons": [{"season_number": 0}, {"season_number": 1}, {"season_number": 2}],
        "credits": {"cast": [{"id": 1, "name": "A"}]},
        "x": 1.5,
    }
    assert b'"x":1.50' in parts.series  # the bytes as sent, not re-serialised


def test_split_ignores_listed_entries_without_a_usable_number() -> None:
    body = (
        b'{"id":1,"seasons":[{"season_number":null},{"season_number":"2"},{},'
        b'{"season_number":3},{"season_number":3}]}'
    )
    assert seasons.split(body).listed == (3,)
    assert seasons.split(b'{"id":1}').listed == ()
    assert seasons.split(b'{"id":1,"seasons":null}').listed == ()


def test_a_follow_up_without_its_witness_dropped_its_appends_and_is_retried() -> None:
    decode = seasons.follow_up_decoder((20, 21))
    assert decode(b'{"id":1,"external_ids":{"imdb_id":"tt1"},"season/20":{"season_number":20}}') == {
        20: b'{"season_number":20}'
    }
    with pytest.raises(UnusableBody) as err:
        decode(b'{"id":1,"season/20":{"season_number":20}}')
    assert err.value.reason == "append_missing"


def test_a_season_record_names_its_series_and_number_around_the_body_as_sent() -> None:
    got = orjson.loads(seasons.record(1399, 3, b'{"season_number":3,"episodes":[]}'))
    assert got == {"series_id": 1399, "season_number": 3, "season": {"season_number": 3, "episodes": []}}


@pytest.mark.parametrize(
    ("partition", "expected"),
    [
        ("series/{yyyy}/{mm}/{dd}", "series-seasons/{yyyy}/{mm}/{dd}"),
        ("tv/got/{yyyy}/{mm}", "tv/got-seasons/{yyyy}/{mm}"),
        ("{media}/{yyyy}/{mm}/{dd}", "{media}-seasons/{yyyy}/{mm}/{dd}"),
        ("series", "series-seasons"),
    ],
)
def test_seasons_go_to_a_table_folder_beside_the_series(partition: str, expected: str) -> None:
    assert config.seasons_partition(partition) == expected
    assert config.table_folder(expected, "tv") != config.table_folder(partition, "tv")


def _refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config.load_deployment(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\ntype = "csv"\nseasons = true\n', "source.seasons applies to series"),
        (
            '[source]\ntype = "series_csv"\nseasons = true\n',
            "source.seasons needs the series in a table folder of their own",
        ),
        (
            '[source]\ntype = "discover"\nmedia = "tv"\ndetails = false\nseasons = true\n'
            '[sink]\npartition = "s/{yyyy}"\n',
            "source.seasons needs details = true",
        ),
        (
            '[tmdb]\nappend = ["credits", "season/1"]\n[source]\ntype = "series_csv"\nseasons = true\n'
            '[sink]\npartition = "s/{yyyy}"\n',
            "with source.seasons every season is fetched",
        ),
    ],
)
def test_seasons_settings_that_cannot_work_are_refused_at_load(
    tmp_path: Path, text: str, message: str
) -> None:
    assert message in _refused(tmp_path, text)


def test_a_season_always_has_a_place_beside_every_append_tmdb_makes_to_a_series() -> None:
    assert len(config.APPENDS["tv"]) < config.MAX_APPENDS
    assert seasons.first_seasons(tuple(config.APPENDS["tv"]))


def test_a_list_refuses_a_seasons_folder_that_is_another_harvests_table(tmp_path: Path) -> None:
    text = (
        '[[harvest]]\nname = "got"\n[harvest.source]\ntype = "series_csv"\nseasons = true\n'
        '[harvest.sink]\npartition = "got/{yyyy}"\n'
        '[[harvest]]\nname = "other"\n[harvest.source]\ntype = "series_csv"\n'
        '[harvest.sink]\npartition = "got-seasons/{yyyy}"\n'
    )
    assert _refused(tmp_path, text) == (
        'harvests "got" and "other" share the table folder \'got-seasons/\' but one holds seasons and '
        "the other series: a reader of that folder would mix them"
    )


def test_a_list_refuses_a_harvest_whose_table_name_is_anothers_seasons_table(tmp_path: Path) -> None:
    text = '[[harvest]]\nname = "got"\n[[harvest]]\nname = "got_seasons"\n'
    assert "give Athena tables of one name" in _refused(tmp_path, text)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_group_of_records_goes_into_one_object_whole_or_not_at_all(compression: str) -> None:
    pad = [hashlib.sha512(bytes([n])).hexdigest() * 2 for n in range(3)]  # hex: gzip cannot shrink it much
    records = [orjson.dumps({"n": n, "pad": pad[n]}) for n in range(3)]
    encoder = ChunkEncoder("json", compression, max_bytes=600 if compression == "none" else 300)  # type: ignore[arg-type]
    assert encoder.add(b'{"first":1}')
    assert not encoder.add_all(records)  # they do not all fit: none is taken
    assert encoder.count == 1
    data = encoder.finish()
    text = gzip.decompress(data) if compression == "gzip" else data
    assert orjson.loads(text) == [{"first": 1}]
    empty = ChunkEncoder("json", compression, max_bytes=10)  # type: ignore[arg-type]
    assert empty.add_all(records)  # an empty object takes the whole group, whatever the limit
    data = empty.finish()
    text = gzip.decompress(data) if compression == "gzip" else data
    assert [r["n"] for r in orjson.loads(text)] == [0, 1, 2]


def test_check_says_what_seasons_add_to_a_harvests_requests() -> None:
    s = config.Settings(
        source=config.SourceSettings(type="ids", media="tv", ids=("1399",), seasons=True),
        sink=config.SinkSettings(partition="series/{yyyy}"),
    )
    requests, how = estimate_requests(s, 100)
    assert requests == 100  # at least one a series: its details carry the first 19 seasons
    assert "the first 19 of each series in that request, then 1 more request per 19 seasons" in how


def test_a_harvest_without_seasons_keeps_the_run_id_it_had_before_seasons_existed() -> None:
    """`seasons` joined the identity omitted when false: existing lakes resume and refresh as they are."""
    ident = Identity(
        source=SourceIdentity(
            input="x", type="csv", media="movie", genres=[], min_votes=0, year_from=0, year_to=0
        ),
        tmdb=TmdbIdentity(base_url="b", language="en-US", append=["credits"], lookup="direct"),
        sink=SinkIdentity(chunk_size=100, format="json", compression="none", partition="{yyyy}/{mm}/{dd}"),
    )
    before = msgspec.to_builtins(ident)
    assert "seasons" not in before["tmdb"]
    as_json = orjson.dumps(before, option=orjson.OPT_SORT_KEYS)
    assert run_id_for(ident) == hashlib.sha256(as_json).hexdigest()[:16]
    with_seasons = msgspec.structs.replace(ident, tmdb=msgspec.structs.replace(ident.tmdb, seasons=True))
    assert run_id_for(with_seasons) != run_id_for(ident)  # turning seasons on is another harvest
