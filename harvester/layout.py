"""Where each object goes, relative to the sink's root. Deterministic, so a retried write replaces.

    <partition>/<name>-<tag>-<seq>.json         data: at most chunk_size records
    _harvest/state-<source type>-<media>.json   the run's state (see state.py)
    _harvest/<tag>/outcomes-<seq>.jsonl         misses and failures committed with chunk <seq>
    _harvest/<tag>/discover-<n>.jsonl           a discover source's enumerated ids (see source/discover.py)
    _harvest/<tag>/summary.json                 the latest invocation's summary

`<partition>` is `sink.partition` rendered with the run's start date (default "{yyyy}/{mm}/{dd}", e.g.
2026/11/23; "{media}/{yyyy}/{mm}/{dd}" keeps movies and series apart); `<name>` is "movies" or "series";
`<tag>` is the run's creation time and id; `<seq>` counts commits from 0. Paths starting with `_` are
skipped by Spark, Glue and Athena, so only data objects are seen as the table.
"""

from __future__ import annotations

import re

from .sink.base import HARVEST_DIR
from .state import RunState

_SEQ = re.compile(r"-(\d{6,})\.")


def data_prefix(state: RunState) -> str:
    return f"{state.partition}/{state.name}-{state.tag}-"


def data_key(state: RunState, seq: int, ext: str) -> str:
    return f"{data_prefix(state)}{seq:06d}{ext}"


def outcomes_prefix(state: RunState) -> str:
    return f"{HARVEST_DIR}/{state.tag}/outcomes-"


def outcomes_key(state: RunState, seq: int) -> str:
    return f"{outcomes_prefix(state)}{seq:06d}.jsonl"


def spool_prefix(state: RunState) -> str:
    return f"{HARVEST_DIR}/{state.tag}/discover-"


def spool_key(state: RunState, n: int) -> str:
    return f"{spool_prefix(state)}{n:06d}.jsonl"


def summary_key(state: RunState) -> str:
    return f"{HARVEST_DIR}/{state.tag}/summary.json"


def seq_of(key: str) -> int | None:
    """The commit number in a data or outcomes key, or None for other keys."""
    m = _SEQ.search(key.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None
