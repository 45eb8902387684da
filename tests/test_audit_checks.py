"""The audit's pure decisions, fed bytes, keys and run states directly: no sink, no harvest.

What the whole audit proves over a real lake is in test_verify.py; here are the decisions it only
reaches through that lake: the run's own folder, missing commits, the findings' shape, formats.
"""

from __future__ import annotations

import msgspec
import pytest

from harvester.errors import StateError
from harvester.lake.audit_checks import (
    EXAMPLES,
    Finding,
    Findings,
    RunTally,
    check_counts,
    data_extension,
    is_committed_data,
    judge_run_key,
    missing_commits,
    run_folder,
    scan_data,
)
from harvester.lake.layout import data_key, ids_key, outcomes_key, spool_key, summary_key
from harvester.lake.state import Identity, RunState, Spool

WRITER, STALE = "w000001", "w0dead0"


def a_run(fmt: str = "json", compression: str = "none", commits: int = 2) -> RunState:
    """A run of one writer that made `commits` commits."""
    identity = msgspec.convert(
        {
            "source": {
                "input": "i",
                "type": "csv",
                "media": "movie",
                "genres": [],
                "min_votes": 0,
                "year_from": 0,
                "year_to": 0,
            },
            "tmdb": {"base_url": "http://t", "language": "en-US", "append": [], "lookup": "find"},
            "sink": {"chunk_size": 3, "format": fmt, "compression": compression, "partition": "{yyyy}"},
        },
        Identity,
    )
    state = RunState.new(identity)
    state.start_writer(WRITER)
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
    assert findings.listed() == [Finding("orphans", len(orphans), orphans[:EXAMPLES])]


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
