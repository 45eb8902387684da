"""Where each object goes, relative to the sink's root. Deterministic, so a retried write replaces.

    <partition>/<name>-<tag>-<writer>-<seq>.json   data: at most chunk_size records
    <seasons>/seasons-<tag>-<writer>-<seq>.json    the seasons of commit <seq>'s series (with seasons)
    _harvest/state-<source type>-<media>.json      the run's state (see state.py)
    _harvest/lease-<source type>-<media>.json      who writes the harvest now (see lease.py)
    _harvest/<tag>/outcomes-<writer>-<seq>.jsonl   misses, removed titles and final failures of commit <seq>
    _harvest/<tag>/ids-<writer>-<seq>.txt          TMDB ids commit <seq> harvested or removed (selection.py)
    _harvest/<tag>/selection.bin                   the harvest's TMDB ids once the run completed
    _harvest/<tag>/refresh-<writer>-<n>.jsonl      a refresh's work list (source/refresh.py)
    _harvest/<tag>/discover-<writer>-<n>.jsonl     a discover source's enumerated ids (source/discover.py)
    _harvest/<tag>/summary.json                    the latest invocation's summary

`<partition>` is `sink.partition` rendered with the run's start date (default "{yyyy}/{mm}/{dd}", e.g.
2026/11/23; "{media}/{yyyy}/{mm}/{dd}" keeps movies and series apart); `<name>` is "movies" or "series";
`<tag>` is the run's creation time and a random id; `<writer>` is the token of the lease holder that wrote
the object (so two writers never write one key); `<seq>` counts commits from 0. `<seasons>` is
the partition with its table folder's last folder named `<folder>-seasons` (config.seasons_partition).
Paths starting with `_`
are skipped by Spark, Glue and Athena, so only data objects are seen as the table.
Runs of version 1 wrote keys without `<writer>-`: an empty writer token stands for them.
"""

from __future__ import annotations

import re

from .sink.base import HARVEST_DIR
from .state import RunRef, RunState

_SEQ = re.compile(r"-(?:(w[0-9a-f]{6})-)?(\d{6,})\.")


def data_prefix(run: RunState | RunRef) -> str:
    return f"{run.partition}/{run.name}-{run.tag}-"


def data_key(state: RunState, seq: int, writer: str, ext: str) -> str:
    return f"{data_prefix(state)}{_writer(writer)}{seq:06d}{ext}"


def seasons_prefix(run: RunState | RunRef) -> str | None:
    """Where the run's season records go (their own table folder), or None for a run without seasons."""
    return f"{run.seasons}/seasons-{run.tag}-" if run.seasons else None


def seasons_key(state: RunState, seq: int, writer: str, ext: str) -> str:
    prefix = seasons_prefix(state)
    assert prefix is not None, "a run with seasons"
    return f"{prefix}{_writer(writer)}{seq:06d}{ext}"


def data_prefixes(run: RunState | RunRef) -> list[str]:
    """The prefixes of every object of the run's that readers take as a table."""
    seasons = seasons_prefix(run)
    return [data_prefix(run)] + ([seasons] if seasons else [])


def run_dir(run: RunState | RunRef) -> str:
    """Everything of a run's that is not data: outcomes, spool, summary."""
    return f"{HARVEST_DIR}/{run.tag}/"


def outcomes_prefix(state: RunState) -> str:
    return f"{run_dir(state)}outcomes-"


def outcomes_key(state: RunState, seq: int, writer: str) -> str:
    return f"{outcomes_prefix(state)}{_writer(writer)}{seq:06d}.jsonl"


def ids_prefix(state: RunState) -> str:
    return f"{run_dir(state)}ids-"


def ids_key(state: RunState, seq: int, writer: str) -> str:
    return f"{ids_prefix(state)}{_writer(writer)}{seq:06d}.txt"


def spool_prefix(state: RunState, kind: str = "discover") -> str:
    return f"{run_dir(state)}{kind}-"


def spool_key(state: RunState, writer: str, n: int, kind: str = "discover") -> str:
    return f"{spool_prefix(state, kind)}{_writer(writer)}{n:06d}.jsonl"


def summary_key(state: RunState) -> str:
    return f"{run_dir(state)}summary.json"


def seq_of(key: str) -> int | None:
    """The commit number in a data or outcomes key, or None for other keys."""
    m = _SEQ.search(key.rsplit("/", 1)[-1])
    return int(m.group(2)) if m else None


def writer_in(key: str) -> str | None:
    """The writer token in a data or outcomes key ("" for a version 1 key), or None for other keys."""
    m = _SEQ.search(key.rsplit("/", 1)[-1])
    return (m.group(1) or "") if m else None


def is_committed(state: RunState, key: str) -> bool:
    """Whether the state accounts for this data or outcomes key of its run."""
    seq = seq_of(key)
    return seq is not None and state.writer_of(seq) == writer_in(key)


def _writer(token: str) -> str:
    return f"{token}-" if token else ""
