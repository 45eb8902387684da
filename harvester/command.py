"""How a command runs from a terminal or a container: signals, one error line, a documented exit code.

Shared by the harvester's CLI and the stand-in's demo, so both stop and fail alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .errors import HarvesterError, Interrupted
from .ops import metrics
from .ops.logs import log_summary, redact
from .ops.stats import Summary, format_summary

log = logging.getLogger("harvester")

EXIT_INTERNAL = 1

Body = Callable[[asyncio.Event], Coroutine[Any, Any, int]]


def run_command(body: Body, *, verbose: bool, secrets: Sequence[str]) -> int:
    """Run `body(stop)` to its exit code. The first SIGTERM/SIGINT sets `stop` (a clean stop), the
    second cancels. Every failure becomes one line on stderr and its exit code, never a traceback."""
    try:
        return _run_async(body)
    except HarvesterError as exc:
        print(f"harvester: error: {redact(str(exc), secrets)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the one place an unexpected error becomes a line and an exit code
        if verbose:
            log.exception("internal error")
        message = redact(f"{exc.__class__.__name__}: {exc}", secrets)
        print(f"harvester: internal error: {message} (run with -v for details)", file=sys.stderr)
        return EXIT_INTERNAL


def report_summary(summary: Summary, harvest: str, *, metrics_flag: bool = False) -> None:
    """How a finished run reports: the human summary on stdout, the summary event in JSON logs, and
    with `--metrics` (or HARVESTER_METRICS=emf) its metrics as one EMF line on stdout."""
    print(format_summary(summary), flush=True)
    log_summary(summary)
    if metrics.wanted(metrics_flag, os.environ):
        metrics.emit(summary, harvest)


def _run_async(body: Body) -> int:
    async def wrapper() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signame: str) -> None:
            if stop.is_set():
                log.warning("%s again: stopping now", signame)
                task.cancel()
            else:
                log.warning("%s: finishing in-flight work, then saving progress (again to stop now)", signame)
                stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            return await body(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(wrapper())
    except asyncio.CancelledError:
        # Only the second signal cancels the main task; every commit is atomic, so the state is
        # consistent and the next run resumes.
        print("harvester: stopped at once; progress up to the last commit is saved", file=sys.stderr)
        return Interrupted.exit_code
