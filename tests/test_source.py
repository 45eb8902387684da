"""The CSV source: real sample files against a plain reference implementation, edge cases in temp
files, and an s3:// source against a local moto server."""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import aclosing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from fixtures_s3 import s3_client  # a helper, not a fixture: the fixtures come in through conftest

from harvester import aws
from harvester.config import SinkSettings, SourceSettings
from harvester.errors import InputUnavailable, SourceError
from harvester.items import Title
from harvester.source import CsvSource, IdSet, InputCounts, LineSplitter, csv_rows, reader

DATA = Path(__file__).parents[2] / "shared/data"
MOVIES_SAMPLE = DATA / "movies_sample.csv"
SERIES_SAMPLE = DATA / "series_sample.csv"

MOVIES_HEADER = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|tempoMinutos|genero|notaMedia|numeroVotos|"
    "generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|titulosMaisConhecidos"
)
SERIES_HEADER = MOVIES_HEADER.replace("|anoLancamento|", "|anoLancamento|anoTermino|")


# ---------------------------------------------------------------------------------------------
# Helpers


def reference(path: Path, series: bool = False, **filters: Any) -> list[str]:
    """Distinct ids in order, the obvious way: whole file in memory, str fields, a dict for dedupe."""
    header = SERIES_HEADER if series else MOVIES_HEADER
    cols = header.split("|")
    g_i, v_i, y_i = cols.index("genero"), cols.index("numeroVotos"), cols.index("anoLancamento")
    genres = {g.lower() for g in filters.get("genres", ())}
    min_votes = filters.get("min_votes", 0)
    y0, y1 = filters.get("year_from", 0), filters.get("year_to", 0)
    lines = [ln for ln in path.read_text("utf-8").lstrip("\ufeff").split("\n") if ln.strip()]
    assert lines[0].strip() == header
    seen: dict[int, bool] = {}
    for line in lines[1:]:
        f = line.rstrip("\r").split("|")
        if len(f) != len(cols) or not re.fullmatch(r"tt[0-9]+", f[0]) or int(f[0][2:]) in seen:
            continue
        ok = True
        if genres:
            ok = ok and f[g_i] != r"\N" and bool(genres & set(f[g_i].lower().split(",")))
        if min_votes:
            ok = ok and (int(f[v_i]) if f[v_i].isdigit() else 0) >= min_votes
        if y0 or y1:
            ok = ok and f[y_i].isdigit() and (not y0 or int(f[y_i]) >= y0) and (not y1 or int(f[y_i]) <= y1)
        seen[int(f[0][2:])] = ok
    return [f"tt{n:07d}" for n, ok in seen.items() if ok]


def source(path: Path | str, sink: SinkSettings | None = None, **settings: Any) -> CsvSource:
    return CsvSource(SourceSettings(path=str(path), **settings), sink or SinkSettings())


async def collect(src: CsvSource) -> list[Title]:
    return [t async for t in src.titles()]


async def ids_of(src: CsvSource) -> list[str]:
    titles = await collect(src)
    assert [t.pos for t in titles] == list(range(len(titles)))
    return [t.imdb_id or "" for t in titles]


def row(id_: str, year: str = "2000", genres: str = "Drama", votes: str = "100", title: str = "T") -> str:
    """One movies.csv row with the columns the source reads set, the rest plausible."""
    return f"{id_}|{title}|{title}|{year}|90|{genres}|7.0|{votes}|actor|Role|Name|1950|\\N|actor|{id_}"


def write(tmp_path: Path, *lines: str, name: str = "movies.csv", newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return p


@pytest.fixture
def movies_sample() -> Path:
    if not MOVIES_SAMPLE.is_file():
        pytest.skip(f"real-format sample {MOVIES_SAMPLE} is not on this machine")
    return MOVIES_SAMPLE


@pytest.fixture
def series_sample() -> Path:
    if not SERIES_SAMPLE.is_file():
        pytest.skip(f"real-format sample {SERIES_SAMPLE} is not on this machine")
    return SERIES_SAMPLE


# ---------------------------------------------------------------------------------------------
# The real samples


async def test_movies_sample_gives_distinct_ids_in_file_order(movies_sample: Path) -> None:
    expected = reference(movies_sample)
    assert expected[:3] == ["tt0000009", "tt0000502", "tt0000574"]  # the reference reads the file
    src = source(movies_sample)
    titles = await collect(src)
    assert [t.imdb_id for t in titles] == expected
    assert [t.pos for t in titles] == list(range(len(expected)))
    assert {t.media for t in titles} == {"movie"}
    assert asdict(src.stats) == {
        "rows": 100,
        "malformed": 0,
        "duplicates": 100 - len(expected),
        "filtered_out": 0,
        "selected": len(expected),
    }


@pytest.mark.parametrize(
    "filters",
    [
        {"genres": ("drama",)},
        {"genres": ("Comedy", "ROMANCE")},
        {"min_votes": 500},
        {"year_from": 1910},
        {"year_to": 1908},
        {"year_from": 1905, "year_to": 1910, "genres": ("Drama",), "min_votes": 21},
    ],
)
async def test_movies_sample_with_filters(movies_sample: Path, filters: dict[str, Any]) -> None:
    expected = reference(movies_sample, **filters)
    distinct = len(reference(movies_sample))
    assert 0 < len(expected) < distinct  # each case really filters something
    src = source(movies_sample, **filters)
    assert await ids_of(src) == expected
    assert src.stats.filtered_out == distinct - len(expected)
    assert src.stats.selected == len(expected)


async def test_series_sample_uses_the_16_column_header(series_sample: Path) -> None:
    expected = reference(series_sample, series=True)
    assert expected
    src = source(series_sample, type="series_csv")
    titles = await collect(src)
    assert [t.imdb_id for t in titles] == expected
    assert {t.media for t in titles} == {"tv"}
    assert src.stats.malformed == 0
    # media "tv" alone also means the series layout
    assert await ids_of(source(series_sample, media="tv")) == expected
    filtered = reference(series_sample, series=True, year_from=1990)
    assert await ids_of(source(series_sample, type="series_csv", year_from=1990)) == filtered


async def test_series_file_read_as_movies_says_what_to_set(series_sample: Path) -> None:
    with pytest.raises(SourceError, match=re.escape('series.csv header: set source.type = "series_csv"')):
        await collect(source(series_sample))


async def test_movies_file_read_as_series_is_rejected(movies_sample: Path) -> None:
    with pytest.raises(SourceError, match=re.escape("not the series.csv header")) as err:
        await collect(source(movies_sample, type="series_csv"))
    assert SERIES_HEADER in str(err.value)


async def test_count_matches_titles_and_keeps_its_own_counters(movies_sample: Path) -> None:
    src = source(movies_sample, genres=("Drama",))
    assert await src.count() == len(reference(movies_sample, genres=("Drama",)))
    assert src.stats == InputCounts()  # count() does not touch the counters of titles()
    assert len(await collect(src)) == await src.count()


async def test_same_input_gives_same_positions_across_block_sizes(
    movies_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = await collect(source(movies_sample))
    # Tiny blocks cut lines (and multi-byte characters) everywhere: the carry-over must not show.
    monkeypatch.setattr(reader, "BLOCK_SIZE", 7)
    assert await collect(source(movies_sample)) == whole


# ---------------------------------------------------------------------------------------------
# Edge cases


async def test_crlf_blank_lines_bom_missing_values_and_quotes(tmp_path: Path) -> None:
    p = tmp_path / "movies.csv"
    lines = [
        "",  # blank lines before the header are skipped too
        MOVIES_HEADER,
        row("tt0000001", title='"Quoted" start'),  # no quote handling: the quote is just a character
        "",
        row("tt0000002", year="\\N", genres="\\N", votes="\\N"),
        "   ",
        row("tt0000001"),
        row("tt0000003", title='"unbalanced'),
    ]
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n\r\n")
    src = source(p)
    assert await ids_of(src) == ["tt0000001", "tt0000002", "tt0000003"]
    assert asdict(src.stats) == {"rows": 4, "malformed": 0, "duplicates": 1, "filtered_out": 0, "selected": 3}


async def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    p = tmp_path / "movies.csv"
    p.write_bytes(f"{MOVIES_HEADER}\n{row('tt0000001')}\n{row('tt0000002')}".encode())
    assert await ids_of(source(p)) == ["tt0000001", "tt0000002"]


async def test_malformed_rows_are_skipped_counted_and_the_first_five_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = write(
        tmp_path,
        MOVIES_HEADER,  # line 1
        row("tt0000001"),  # 2
        row("nm0000123"),  # 3 bad id
        row("tt"),  # 4 bad id
        row("tt12a"),  # 5 bad id
        "tt0000004|too|few",  # 6 wrong field count
        row("tt0000005") + "|extra",  # 7 wrong field count
        "",  # 8 blank: not malformed
        row("tt0000006"),  # 9
        row("TT0000007"),  # 10 bad id (case matters), counted but not logged: sixth
        row("tt0000001"),  # 11 duplicate, not adjacent to its first row
        row("tt0000006"),  # 12 duplicate
    )
    caplog.set_level(logging.WARNING, logger="harvester.source")
    src = source(p)
    assert await ids_of(src) == ["tt0000001", "tt0000006"]
    assert asdict(src.stats) == {
        "rows": 10,
        "malformed": 6,
        "duplicates": 2,
        "filtered_out": 0,
        "selected": 2,
    }
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("harvester.source")]
    assert len(messages) == 5
    assert [int(re.search(r" line (\d+):", m).group(1)) for m in messages] == [3, 4, 5, 6, 7]  # type: ignore[union-attr]
    assert "'nm0000123' is not tt + digits" in messages[0]
    assert "3 fields, expected 15" in messages[3]
    assert "16 fields, expected 15" in messages[4]
    assert all(str(p) in m for m in messages)


async def test_count_does_not_log_malformed_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = write(tmp_path, MOVIES_HEADER, row("x1"), row("tt0000001"))
    caplog.set_level(logging.WARNING, logger="harvester.source")
    assert await source(p).count() == 1
    assert caplog.records == []


async def test_undecodable_bytes_in_a_title_keep_the_row(tmp_path: Path) -> None:
    p = tmp_path / "movies.csv"
    bad = row("tt0000002", title="X").encode().replace(b"|X|", b"|\xff\xfe caf\xc3|")
    p.write_bytes(f"{MOVIES_HEADER}\n{row('tt0000001')}\n".encode() + bad + b"\n")
    src = source(p)
    assert await ids_of(src) == ["tt0000001", "tt0000002"]
    assert src.stats.malformed == 0


async def test_undecodable_bytes_in_an_id_make_the_row_malformed(tmp_path: Path) -> None:
    p = tmp_path / "movies.csv"
    p.write_bytes(f"{MOVIES_HEADER}\n".encode() + row("tt00\xff01").encode("latin-1") + b"\n")
    src = source(p)
    assert await ids_of(src) == []
    assert src.stats.malformed == 1


async def test_ids_are_deduplicated_by_number_and_yielded_canonical(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        MOVIES_HEADER,
        row("tt000009"),
        row("tt0000009"),
        row("tt9"),
        row("tt12345678"),
        row("tt00000010"),
        row("tt9999999999"),  # beyond the bitmap: the fallback set
        row("tt09999999999"),
    )
    src = source(p)
    assert await ids_of(src) == ["tt0000009", "tt12345678", "tt0000010", "tt9999999999"]
    assert src.stats.duplicates == 3


async def test_an_id_seen_only_in_a_malformed_row_is_not_a_duplicate_later(tmp_path: Path) -> None:
    p = write(tmp_path, MOVIES_HEADER, row("tt0000001") + "|x", row("tt0000001"), row("tt0000001"))
    src = source(p)
    assert await ids_of(src) == ["tt0000001"]
    assert asdict(src.stats) == {"rows": 3, "malformed": 1, "duplicates": 1, "filtered_out": 0, "selected": 1}


async def test_filters_apply_to_the_first_row_of_an_id(tmp_path: Path) -> None:
    # A later row of a filtered id is a duplicate, never a second chance.
    p = write(tmp_path, MOVIES_HEADER, row("tt0000001", genres="Comedy"), row("tt0000001", genres="Drama"))
    src = source(p, genres=("drama",))
    assert await ids_of(src) == []
    assert asdict(src.stats) == {"rows": 2, "malformed": 0, "duplicates": 1, "filtered_out": 1, "selected": 0}


@pytest.fixture
def boundary_file(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        MOVIES_HEADER,
        row("tt0000001", year="1999", votes="99", genres="Drama,Sci-Fi"),
        row("tt0000002", year="2000", votes="100", genres="Comedy"),
        row("tt0000003", year="2001", votes="101", genres="\\N"),
        row("tt0000004", year="\\N", votes="\\N", genres="sci-fi"),
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [1, 2, 3, 4]),
        ({"year_from": 2000}, [2, 3]),  # from only; the missing year fails
        ({"year_to": 2000}, [1, 2]),  # to only
        ({"year_from": 2000, "year_to": 2000}, [2]),
        ({"min_votes": 100}, [2, 3]),  # equal passes; \N counts as 0
        ({"min_votes": 1}, [1, 2, 3]),
        ({"genres": ("SCI-FI",)}, [1, 4]),  # any of the row's genres, case-insensitive
        ({"genres": ("Drama", "Comedy")}, [1, 2]),  # \N genres fail a genre filter
        ({"genres": ("Western",)}, []),
    ],
)
async def test_filter_boundaries(boundary_file: Path, filters: dict[str, Any], expected: list[int]) -> None:
    src = source(boundary_file, **filters)
    assert await ids_of(src) == [f"tt{n:07d}" for n in expected]
    assert src.stats.filtered_out == 4 - len(expected)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file; expected the movies.csv header"),
        (b"\n\r\n  \n", "empty file"),
        (
            MOVIES_HEADER.replace("Pincipal", "Principal").encode() + b"\n",
            "line 1 is not the movies.csv header",
        ),
        (b"\n" + row("tt0000001").encode() + b"\n", "line 2 is not the movies.csv header"),
    ],
)
async def test_wrong_or_missing_header_is_a_source_error(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "movies.csv"
    p.write_bytes(content)
    with pytest.raises(SourceError, match=match) as err:
        await collect(source(p))
    assert str(p) in str(err.value)
    if content.strip():
        assert MOVIES_HEADER in str(err.value)


async def test_missing_file_is_one_clear_source_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "movies.csv"
    src = source(missing)
    with pytest.raises(SourceError, match=f"^cannot read source {re.escape(str(missing))}: no such file$"):
        await collect(src)
    with pytest.raises(SourceError, match="no such file"):
        await src.count()
    with pytest.raises(SourceError, match="no such file"):
        await src.identity()


async def test_a_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory"):
        await collect(source(tmp_path))


async def test_a_line_without_end_is_a_source_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_rows, "MAX_LINE", 100)
    p = tmp_path / "movies.csv"
    p.write_bytes(MOVIES_HEADER.encode() + b"\n" + b"x" * 1000)
    with pytest.raises(SourceError, match="a line longer than"):
        await collect(source(p))


async def test_identity_changes_with_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, MOVIES_HEADER, row("tt0000001"))
    src = source(p)
    first = await src.identity()
    assert re.fullmatch(r"size=\d+\|sha256=[0-9a-f]{64}", first)  # the content, not the path
    assert first == await src.identity()
    write(tmp_path, MOVIES_HEADER, row("tt0000001"), row("tt0000002"))
    assert await src.identity() != first


def test_describe_names_the_file_and_filters(tmp_path: Path) -> None:
    d = source(tmp_path / "m.csv", genres=("Drama",), min_votes=10, year_from=1990).describe()
    assert d == f"movies.csv {tmp_path / 'm.csv'} (movie; genres Drama; votes >= 10; years 1990-...)"
    assert source("s.csv", type="series_csv").describe() == "series.csv s.csv (tv; no filters)"
    assert source("s3://b/k.csv").count_is_cheap is False


async def test_stopping_early_closes_the_stream_and_counts_what_was_yielded(movies_sample: Path) -> None:
    src = source(movies_sample)
    async with aclosing(src.titles()) as titles:
        async for _ in titles:
            break
    assert src.stats.selected == 1


async def test_iteration_gives_the_loop_a_turn_per_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file of duplicates yields no title for many blocks; other tasks must still run meanwhile.
    monkeypatch.setattr(reader, "BLOCK_SIZE", 1024)
    p = write(tmp_path, MOVIES_HEADER, *[row("tt0000001")] * 200)
    turns = 0
    done = False

    async def other() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    assert await source(p).count() == 1
    done = True
    await task
    assert turns > 20  # ~30 blocks


# ---------------------------------------------------------------------------------------------
# Pure pieces


def test_idset_grows_with_the_largest_id_and_falls_back_for_huge_ones() -> None:
    s = IdSet(bitmap_limit=1 << 20)
    assert s.add(0) and not s.add(0)
    assert s.nbytes == 64 * 1024  # the minimum step, not the limit
    assert s.add(600_000) and 600_000 in s and 599_999 not in s
    assert s.nbytes == (1 << 20) // 8  # capped at the limit
    assert s.add(1 << 40) and not s.add(1 << 40) and (1 << 40) in s
    assert s.nbytes == (1 << 20) // 8  # the huge id did not grow the bitmap


def test_line_splitter_carries_partial_lines() -> None:
    sp = LineSplitter()
    assert sp.feed(b"ab") == []
    assert sp.feed(b"c\nd") == [b"abc"]
    assert sp.feed(b"\n\n") == [b"d", b""]
    assert sp.feed(b"e\r\n") == [b"e\r"]
    assert sp.finish() == []
    sp.feed(b"tail")
    assert sp.finish() == [b"tail"]


# ---------------------------------------------------------------------------------------------
# S3: the shared moto server of tests/fixtures_s3.py (`moto_server`, `s3_bucket`, wired in by conftest)


@pytest.fixture
async def s3_input(s3_bucket: tuple[str, str]) -> tuple[str, str]:
    """(endpoint_url, s3:// url of a copy of the movies sample)."""
    if not MOVIES_SAMPLE.is_file():
        pytest.skip(f"real-format sample {MOVIES_SAMPLE} is not on this machine")
    endpoint, bucket = s3_bucket
    async with s3_client(endpoint) as client:
        await client.put_object(Bucket=bucket, Key="in/movies.csv", Body=MOVIES_SAMPLE.read_bytes())
    return endpoint, f"s3://{bucket}/in/movies.csv"


async def test_s3_source_reads_the_same_titles_as_the_local_file(
    s3_input: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = s3_input
    monkeypatch.setattr(reader, "BLOCK_SIZE", 1000)  # many blocks, each gathered from the body
    src = source(url, SinkSettings(endpoint_url=endpoint), genres=("Drama",))
    assert src.count_is_cheap is False
    assert await ids_of(src) == reference(MOVIES_SAMPLE, genres=("Drama",))
    assert await src.count() == src.stats.selected
    identity = await src.identity()
    assert re.fullmatch(re.escape(url) + r"\|etag=[0-9a-f]{32}\|size=\d+", identity)


@pytest.mark.parametrize(
    ("where", "reason"),
    [("{bucket}/in/missing.csv", "no such key"), ("no-such-bucket-here/movies.csv", "no such bucket")],
)
async def test_s3_missing_object_is_one_clear_source_error(
    s3_bucket: tuple[str, str], where: str, reason: str
) -> None:
    endpoint, bucket = s3_bucket
    url = "s3://" + where.format(bucket=bucket)
    src = source(url, SinkSettings(endpoint_url=endpoint))
    with pytest.raises(SourceError, match=f"^cannot read source {re.escape(url)}: {reason}$"):
        await collect(src)
    with pytest.raises(SourceError, match=f"^cannot read source {re.escape(url)}: {reason}$"):
        await src.identity()


async def test_s3_unreachable_endpoint_is_input_unavailable(
    moto_server: str, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto_server only for its fake credentials: without any, botocore fails before connecting.
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", 2.0)
    endpoint = f"http://127.0.0.1:{unused_tcp_port}"
    src = source("s3://b/movies.csv", SinkSettings(endpoint_url=endpoint))
    with pytest.raises(  # exit 4, not 2: S3 was not there, the input may be fine
        InputUnavailable,
        match="^" + re.escape(f"cannot read source s3://b/movies.csv: cannot connect to {endpoint}") + "$",
    ):
        await collect(src)
