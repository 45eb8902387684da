"""The audit's pure decisions, fed bytes, keys and run states directly: no sink, no harvest.

What the whole audit proves over a real lake is in test_verify.py and test_verify_readers.py; here are
the decisions it only reaches through that lake: the run's own folder, missing commits, the findings'
shape, formats, which objects readers read and who accounts for them, the sections records must hold.
"""

from __future__ import annotations

import gzip

import msgspec
import orjson
import pytest

from harvester.errors import StateError
from harvester.lake.audit_checks import (
    EXAMPLES,
    Finding,
    Findings,
    Holder,
    RunTally,
    check_counts,
    data_extension,
    in_table,
    is_committed_data,
    judge_run_key,
    missing_commits,
    note_sections,
    required_sections,
    run_folder,
    scan_data,
    sharing,
    table_jobs,
)
from harvester.lake.layout import data_key, ids_key, outcomes_key, spool_key, summary_key
from harvester.lake.state import Identity, RunState, Spool

WRITER, STALE = "w000001", "w0dead0"


def a_run(
    fmt: str = "json",
    compression: str = "none",
    commits: int = 2,
    *,
    partition: str = "{yyyy}",
    media: str = "movie",
    append: tuple[str, ...] = (),
    source_type: str = "csv",
    source_input: str = "i",
    writer: str = WRITER,
) -> RunState:
    """A run of one writer that made `commits` commits."""
    identity = msgspec.convert(
        {
            "source": {
                "input": source_input,
                "type": source_type,
                "media": media,
                "genres": [],
                "min_votes": 0,
                "year_from": 0,
                "year_to": 0,
            },
            "tmdb": {"base_url": "http://t", "language": "en-US", "append": list(append), "lookup": "find"},
            "sink": {"chunk_size": 3, "format": fmt, "compression": compression, "partition": partition},
        },
        Identity,
    )
    state = RunState.new(identity, partition=partition, name="series" if media == "tv" else "movies")
    state.start_writer(writer)
    state.next_seq = commits
    return state


def test_the_runs_own_folder_holds_what_its_state_accounts_for() -> None:
    state = a_run()
    state.source.spool = Spool(WRITER, 2, 0, 0, 0, 0, 0, 0, 0, 0)  # a discover listing in two parts
    judged = {
        outcomes_key(state, 0, WRITER): "outcomes",
        outcomes_key(state, 1, WRITER): "outcomes",
        outcomes_key(state, 2, WRITER): "orphan",  # a commit that did not finish
        outcomes_key(state, 1, STALE): "orphan",  # a writer that lost its lease
        ids_key(state, 0, WRITER): "accounted",
        ids_key(state, 0, STALE): "orphan",
        spool_key(state, WRITER, 1): "accounted",
        spool_key(state, WRITER, 2): "orphan",  # past the parts the state lists
        spool_key(state, WRITER, 0, "refresh"): "orphan",  # no refresh plan in this state
        summary_key(state): "other",
    }
    assert {key: judge_run_key(state, key) for key in judged} == judged

    findings = Findings()
    outcomes = run_folder(list(judged), state, findings)
    assert outcomes == [outcomes_key(state, 0, WRITER), outcomes_key(state, 1, WRITER)]
    orphans = [key for key, kind in judged.items() if kind == "orphan"]
    assert findings.listed() == [Finding("leftovers", len(orphans), orphans[:EXAMPLES])]  # readers skip _


def test_commits_with_no_object_are_missing_and_counts_the_objects_contradict() -> None:
    state = a_run(commits=3)
    state.counts.objects = 3
    present = [data_key(state, 0, WRITER, ".json"), data_key(state, 2, WRITER, ".json")]
    findings = Findings()
    check_counts(state, RunTally(objects=2, records=5), [*present, outcomes_key(state, 0, WRITER)], findings)
    assert findings.listed() == [
        Finding("missing", 1, ["the state counts 3, and 2 are there", "commit 000001 has no object"]),
        Finding(
            "counts", 1, ["the state counts 0 harvested titles, and there are 5 records in its data objects"]
        ),
    ]
    assert missing_commits(10, {3}) == [0, 1, 2, 4, 5]  # the first few, not all


def test_findings_count_every_one_and_name_the_first_few_in_report_order() -> None:
    findings = Findings()
    for n in range(EXAMPLES + 2):
        findings.add("orphans", f"k{n}")
    findings.add("invalid", "bad", count=3)
    assert findings.listed() == [
        Finding("invalid", 3, ["bad"]),
        Finding("orphans", EXAMPLES + 2, [f"k{n}" for n in range(EXAMPLES)]),
    ]


def test_a_committed_data_key_has_the_states_format() -> None:
    state = a_run("jsonl", "gzip")
    assert data_extension(state) == ".jsonl.gz"
    assert is_committed_data(state, data_key(state, 1, WRITER, ".jsonl.gz"))
    assert not is_committed_data(state, data_key(state, 1, WRITER, ".json"))
    with pytest.raises(StateError, match="unknown format 'parquet'"):
        data_extension(a_run("parquet"))


def test_an_object_over_chunk_size_keeps_its_ids_and_none_means_no_limit() -> None:
    body = b"[" + b",".join(b'{"id": %d}' % n for n in range(5)) + b"]"
    over = scan_data("a.json", body, chunk_size=3)
    assert over.ids == [0, 1, 2, 3, 4] and over.problem == "5 records, more than chunk_size 3"
    assert scan_data("a.json", body, chunk_size=None).problem is None


# -------------------------------------------------------------------------------------------------
# What readers of the table read, and who accounts for it


def test_readers_read_every_object_under_the_folder_but_hidden_paths() -> None:
    for key in ["2026/01/movies-x-000000.json", "2026/01/copy.json", "2026/01/notes.txt", "readme.md"]:
        assert in_table(key, ""), key  # whatever its name
    for key in ["_harvest/state-a.json", "2026/_temporary/0/part.json", "2026/01/.extra.json", ".keep"]:
        assert not in_table(key, ""), key  # Athena, Glue, Spark and DuckDB's glob skip `_` and `.`
    assert in_table("movies/2026/x.json", "movies/") and not in_table("moviesx/2026/x.json", "movies/")


def test_the_states_of_the_folder_account_for_what_readers_read() -> None:
    shared = "movies/{yyyy}/{mm}/{dd}"
    ours = a_run(partition=shared, append=("credits", "keywords"))
    mate = a_run(partition=shared, writer="w000002", commits=1, append=("credits",))  # shares the folder
    series = a_run(
        partition=shared, media="tv", writer="w000003", commits=1
    )  # not of one list: a config each
    nested = a_run(partition="movies/more/{yyyy}", writer="w000004", commits=1)  # its table is inside ours
    elsewhere = a_run(partition="tv/{yyyy}", media="tv", writer="w000005", commits=1)
    holders = [Holder("ours", ours), Holder("mate", mate), Holder("tv", series), Holder("deep", nested)]
    holders.append(Holder("apart", elsewhere))
    assert [h.table for h in holders] == ["movies/", "movies/", "movies/", "movies/more/", "tv/"]
    assert sharing(holders) == ["mate"]  # same folder, same media

    committed = data_key(ours, 0, WRITER, ".json")
    mates = data_key(mate, 0, "w000002", ".json")
    other_media = data_key(series, 0, "w000003", ".json")
    deeper = data_key(nested, 0, "w000004", ".json")
    partition = ours.partition
    copy, stray, text = f"{partition}/copy.json", f"{partition}/extra.jsonl.gz", f"{partition}/notes.txt"
    hidden = [f"{partition}/_temporary/part-0.json", f"{partition}/.part-0.json.crc"]
    keys = sorted([committed, mates, other_media, deeper, copy, stray, text, *hidden])
    findings = Findings()
    jobs, superseded = table_jobs(keys, "movies/", holders, findings)
    assert superseded == 0
    by_key = {job.key: job for job in jobs}
    assert sorted(by_key) == sorted([committed, mates, deeper, copy, stray])  # not the other media's
    assert by_key[committed].ours and by_key[committed].sections == ("credits", "keywords")
    assert by_key[mates].lineage == 1 and not by_key[mates].ours and by_key[mates].sections == ("credits",)
    assert by_key[copy].lineage < 0 and by_key[copy].sections == () and by_key[copy].chunk_size is None
    listed = {f.kind: (f.count, sorted(f.examples)) for f in findings.listed()}
    assert listed == {
        "mixed": (1, [f"{other_media} (of harvest tv, of series)"]),
        "orphans": (
            4,
            sorted([copy, stray, text, f"{deeper} (of harvest deep, whose table is 'movies/more/')"]),
        ),
    }


def test_what_a_harvest_appended_is_what_its_records_must_hold() -> None:
    assert required_sections(a_run(append=("credits", "keywords")).identity) == ("credits", "keywords")
    tv = a_run(media="tv", source_type="series_csv", append=("aggregate_credits", "season/1", "season/12"))
    assert required_sections(tv.identity) == ("aggregate_credits",)  # TMDB leaves out a season it lacks
    listing = orjson.dumps({"media": "movie", "details": False}).decode()
    assert (
        required_sections(a_run(append=("credits",), source_type="discover", source_input=listing).identity)
        == ()
    )
    details = orjson.dumps({"media": "movie", "details": True}).decode()
    assert required_sections(
        a_run(append=("credits",), source_type="discover", source_input=details).identity
    ) == ("credits",)
    odd = a_run(append=("credits",), source_type="discover", source_input="not json")
    assert required_sections(odd.identity) == ("credits",)


@pytest.mark.parametrize("key", ["a.json", "a.jsonl.gz"])
def test_records_are_scanned_for_the_sections_their_harvest_appended(key: str) -> None:
    whole = {"credits": {"cast": []}, "watch/providers": {"results": {}}}
    records = [
        {"id": 1, **whole},
        {"id": 2, "watch/providers": {}},  # no credits
        {"id": 3, "credits": None, "watch/providers": {}},  # null: as good as absent
        {"id": 4, "credits": {}},  # no watch/providers
        *({"id": n, "title": "none at all"} for n in range(5, 5 + EXAMPLES)),
    ]
    lines = key.endswith((".jsonl", ".jsonl.gz"))
    body = b"".join(orjson.dumps(r) + b"\n" for r in records) if lines else orjson.dumps(records)
    body = gzip.compress(body) if key.endswith(".gz") else body
    scan = scan_data(key, body, chunk_size=None, sections=("credits", "watch/providers"))
    assert scan.problem is None and scan.ids == [r["id"] for r in records]
    assert scan.lacking == len(records) - 1 and scan.lacking_ids == tuple(range(2, 2 + EXAMPLES))
    assert scan.lacked == ("credits", "watch/providers")  # in the harvest's order
    assert scan_data(key, body, chunk_size=None).lacking == 0  # nothing appended: nothing to hold
    assert scan_data(key, body, chunk_size=None, sections=("keywords",)).lacked == ("keywords",)


def test_records_without_a_section_are_one_line_per_object_counted_by_record() -> None:
    records = [{"id": n} for n in range(1, 3 + EXAMPLES)]  # none has its credits
    many = scan_data("a.json", orjson.dumps(records), chunk_size=None, sections=("credits",))
    one = scan_data("b.json", orjson.dumps([{"id": 7, "credits": {}}, {"id": 8}]), None, ("credits",))
    whole = scan_data("c.json", orjson.dumps([{"id": 9, "credits": {}}]), None, ("credits",))
    findings = Findings()
    for key, scan in (("a.json", many), ("b.json", one), ("c.json", whole)):
        note_sections(key, scan, findings)
    shown = ", ".join(str(n) for n in range(1, 1 + EXAMPLES))
    assert findings.listed() == [
        Finding(
            "sections",
            len(records) + 1,
            [
                f"{len(records)} records (ids {shown}, ...) without credits in a.json",
                "id 8 without credits in b.json",
            ],
        )
    ]
