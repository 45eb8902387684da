"""What another harvest of the sink holds: its last complete version, read from its state and objects.

A harvest is a line of runs (lake/runs.py): a full run, then refreshes, each in its own partition. What it
holds is the ids of its last complete run's selection (lake/selection.py), each title's record being the
one of the newest run that fetched it. `last_complete` finds that run: the state's own run when it is
complete; while a refresh of it is under way, the run that refresh started from (its base), so a reader
never waits for a refresh and never reads one half done. A harvest whose first run has not completed
(or that started over with --fresh and has not completed since) holds nothing yet: NotReady (exit 5).

`data_keys` lists the data objects of those runs, newest run first, in commit order within a run (the
same order every time: a complete run's objects do not change) and `each_object` hands them over, a few
reads in flight: a reader that keeps the first record of each id it meets reads each held title's latest
record, and one that stops can continue from the index it reached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..errors import NotReady, StateError
from ..lake.layout import data_prefix, is_committed, seq_of
from ..lake.reads import in_order
from ..lake.selection import Selection, load_selection
from ..lake.sink import Sink
from ..lake.sink.base import HARVEST_DIR
from ..lake.state import RunRef, RunState, StateStore, state_key

READ_AHEAD = 4  # data objects read at once (each up to a few MB)


@dataclass(frozen=True)
class Held:
    """A harvest's last complete version."""

    harvest: str
    run: str  # the tag of its last complete run
    runs: tuple[RunRef, ...]  # the runs whose objects hold its records, newest first
    committed: RunState | None  # the state that accounts for runs[0]'s objects, when it is that run's
    media: str
    append: tuple[str, ...]
    ids: Selection  # the TMDB ids it holds (its own copy: a reader may take ids out as it reads them)


async def last_complete(sink: Sink, harvest: str) -> Held:
    """The last complete version of `harvest` (a name, or a kind such as "csv-movie") in `sink`."""
    store = StateStore(sink, state_key(harvest))
    state = await store.load()
    if state is None:
        others = sorted(await harvests_in(sink))
        listed = f"it holds {', '.join(others)}" if others else "it holds none"
        raise NotReady(f'harvest "{harvest}" has never run in {sink.url} ({listed}); run it first')
    if state.complete:
        runs, committed = (state.ref(), *reversed(state.lineage)), state
    elif state.mode == "refresh" and state.base is not None:
        runs, committed = tuple(reversed(state.lineage)), None  # lineage ends with the base
    else:
        raise NotReady(
            f'harvest "{harvest}" has not completed a run yet ({len(state.done)} titles done): '
            "its people are taken once it has; run again then"
        )
    ids = await load_selection(sink, runs[0])
    if ids is None:
        raise StateError(
            f'harvest "{harvest}": the selection of run {runs[0].tag} is missing; run it with --fresh'
        )
    identity = state.identity
    return Held(
        harvest, runs[0].tag, runs, committed, identity.source.media, tuple(identity.tmdb.append), ids
    )


async def harvests_in(sink: Sink) -> list[str]:
    """The harvests whose states the sink holds (by name or kind)."""
    prefix = f"{HARVEST_DIR}/state-"
    return [key.removeprefix(prefix).removesuffix(".json") for key in await sink.list_keys(prefix)]


async def data_keys(sink: Sink, held: Held) -> list[list[str]]:
    """The data object keys of each run, newest run first; commit order within a run."""
    out = []
    for n, run in enumerate(held.runs):
        keys = [k for k in await sink.list_keys(data_prefix(run)) if seq_of(k) is not None]
        if n == 0 and held.committed is not None:
            keys = [k for k in keys if is_committed(held.committed, k)]
        out.append(sorted(keys, key=lambda k: seq_of(k) or 0))
    return out


async def each_object(sink: Sink, keys: Sequence[str], use: Callable[[str, bytes], Awaitable[bool]]) -> bool:
    """Call `use(key, bytes)` for each data object in the order given, READ_AHEAD reads in flight (also
    while `use` awaits: a checkpoint overlaps the next reads); False as soon as `use` says stop (False),
    True when every object was used."""

    async def fetch(key: str) -> bytes:
        raw = await sink.get(key)
        if raw is None:
            raise StateError(f"{sink.url.rstrip('/')}/{key} vanished while it was read; run again")
        return raw

    return await in_order(keys, fetch, use, READ_AHEAD)
