"""Which run an invocation works on, and finishing one: the line of runs that makes a harvest's table.

A harvest is a line of runs sharing one state object: a full run, then refresh runs, each with its own
tag and date partition. `Opener` resumes the run in the state, starts a new one (first, `--fresh`, or a
refresh of the last complete run), and saves the state before anything else is written, so every object
a run writes is one its state can account for. `finish` folds the run into the harvest's selection
and only then says so; the runs a fresh start replaced are deleted after that.
"""

from __future__ import annotations

import logging

from ..errors import StateError
from .committer import reconcile, remove_runs
from .layout import ids_prefix, is_committed, seq_of
from .lease import Lease
from .selection import Selection, fold_records, load_selection, selection_key
from .sink import Sink
from .state import Identity, RunState, StateStore

log = logging.getLogger(__name__)


class Opener:
    """Finds the run this invocation works on: resumed, new, fresh or a refresh; saves it first."""

    def __init__(
        self,
        store: StateStore,
        sink: Sink,
        lease: Lease,
        identity: Identity,
        partition: str,
        name: str,
        *,
        seasons: str = "",
        defer_new: bool = False,
    ) -> None:
        self._store, self._sink, self._lease = store, sink, lease
        self._identity, self._partition, self._name = identity, partition, name
        self._seasons = seasons  # the seasons' partition template, "" without seasons
        # A new run's first save waits for `started()`: the runner calls it once TMDB has accepted the
        # credential, so a refused one leaves nothing behind. Resumed runs are saved at once (the save
        # fences out the writer before us, and must precede the clean-up of what it left).
        self._defer = defer_new
        self._unsaved: tuple[RunState, str] | None = None

    async def run(self, fresh: bool, fresh_id: str | None) -> RunState:
        store = self._store
        raw = await store.load_raw()
        old: RunState | None = None
        if raw is not None:
            try:
                old = RunState.from_bytes(raw, store.where)
            except StateError:
                if not fresh:
                    raise
                log.warning("replacing the unreadable state %s; the objects it described stay", store.where)
        if fresh and old is not None and fresh_id is not None and old.fresh_id == fresh_id:
            fresh = False  # this fresh request already started the run: a retry resumes it
        if not fresh and old is not None:
            self._same_harvest(old)
        if fresh or old is None:
            state = self._new(old.tag if old is not None else "")
            state.fresh_id = fresh_id
            if old is not None:
                # Replaced only once the new run completes: until then readers keep the old ones.
                state.supersedes = [*old.supersedes, *old.lineage, old.ref()]
            return await self._start(state, "new harvest")
        if old.complete:
            await finish_superseded(self._sink, store, old)
            return old
        return await self._resume(old)

    async def refresh(self) -> RunState:
        """A new refresh run after the last complete one. A harvest that never completed has nothing to
        refresh from: its full run is started (or resumed) instead, so a daily schedule that refreshes
        also fills the lake the first time."""
        old = await self._store.load()
        if old is None or (not old.complete and old.mode == "run"):
            log.info("no complete harvest to refresh yet: the full harvest runs first")
            return await self.run(fresh=False, fresh_id=None)
        self._same_harvest(old)
        if not old.complete:
            return await self._resume(old)  # a refresh cut short continues
        if await load_selection(self._sink, old.ref()) is None:
            raise StateError(
                f"run {old.tag} completed without a selection (an older version): a refresh needs one; "
                "use --fresh"
            )
        state = self._new(old.tag)
        state.mode = "refresh"
        state.since = old.created
        state.base = old.ref()
        state.lineage = [*old.lineage, old.ref()]
        return await self._start(state, f"refresh of {old.tag}: new run")

    def _same_harvest(self, old: RunState) -> None:
        if old.identity != self._identity:
            changed = self._identity.changed(old.identity)
            # Never just "use --fresh": the state may be another harvest's that shares the key (two
            # configs of one kind on one prefix), and --fresh would delete its objects.
            raise StateError(
                f"{self._store.where} belongs to another harvest (changed: {', '.join(changed)}): "
                "if this config is a harvest of its own, give it a `name` (or list both as [[harvest]]) "
                "so that it has a state of its own; if it replaces that harvest, --fresh starts over "
                "and deletes that harvest's objects once the new run completes"
            )

    def _new(self, after: str) -> RunState:
        partition, name, seasons = self._partition, self._name, self._seasons
        return RunState.new(self._identity, partition=partition, name=name, seasons=seasons, after=after)

    async def _start(self, state: RunState, what: str) -> RunState:
        state.start_writer(self._lease.token)
        if self._defer:
            self._unsaved = (state, what)
            return state
        await self._store.save(state)  # before any data object, so a crash never leaves untracked objects
        log.info("%s %s", what, state.tag)
        return state

    async def started(self) -> None:
        """Save the new run whose first save was deferred (nothing to do for a resumed one)."""
        if self._unsaved is None:
            return
        state, what = self._unsaved
        await self._store.save(state)  # before any data object, so a crash never leaves untracked objects
        log.info("%s %s", what, state.tag)
        self._unsaved = None

    async def _resume(self, old: RunState) -> RunState:
        # Saving first fences out the writer before us (its next conditional save is refused); only then
        # is what it left behind safe to remove.
        old.start_writer(self._lease.token)
        await self._store.save(old)
        await reconcile(self._sink, old)
        log.info("resuming harvest %s: %d titles done, %d pending, next commit %d",
                 old.tag, len(old.done), len(old.pending), old.next_seq)  # fmt: skip
        return old


async def finish_superseded(sink: Sink, store: StateStore, state: RunState) -> None:
    """Remove the runs a completed fresh start replaced (again, if a crash interrupted it)."""
    if not state.supersedes:
        return
    removed = await remove_runs(sink, state.supersedes)
    log.info("removed %d objects of %d replaced run(s)", removed, len(state.supersedes))
    state.supersedes = []
    await store.save(state)


async def finish(sink: Sink, store: StateStore, state: RunState) -> None:
    """Clean up after stale writers, fold this run into the harvest's selection, then say complete;
    only then may the runs a fresh start replaced go."""
    await reconcile(sink, state)
    selection = Selection()
    if state.base is not None:
        selection = await load_selection(sink, state.base) or selection
    records = sorted(
        (k for k in await sink.list_keys(ids_prefix(state)) if is_committed(state, k)),
        key=lambda k: seq_of(k) or 0,
    )
    await fold_records(sink, selection, records)
    await sink.put(selection_key(state.ref()), selection.to_bytes(), "application/octet-stream")
    state.status = "complete"
    await store.save(state)
    await finish_superseded(sink, store, state)
