"""The TMDB stand-in in a process of its own, driven through its control routes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from report import progress


def arrival_rate(stats: dict[str, Any]) -> float:
    """Requests per second the stand-in saw: (requests - 1) / (last - first arrival); 0 for fewer than two."""
    seconds = stats["last_arrival"] - stats["first_arrival"]
    return (stats["requests"] - 1) / seconds if seconds > 0 else 0.0


class Standin:
    """The TMDB stand-in in a process of its own (its CPU is not the harvester's)."""

    def __init__(self, rate_limit: float, latency_ms: tuple[float, float]) -> None:
        self.rate_limit, self.latency_ms = rate_limit, latency_ms
        lo, hi = latency_ms
        args = ["--port", "0", "--rate-limit", f"{rate_limit:g}", "--latency-ms", f"{lo:g}", f"{hi:g}"]
        self._proc, self.base_url = start(args)
        self._control = self.base_url.removesuffix("/3") + "/__standin__"

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self._control}/stats", timeout=10).json())

    def reset(self) -> None:
        requests.post(f"{self._control}/reset", timeout=10).raise_for_status()

    def describe(self) -> str:
        limit = f"rate limit {self.rate_limit:g}/s" if self.rate_limit else "no rate limit"
        lo, hi = self.latency_ms
        return f"{limit}, latency {lo:g}-{hi:g} ms" if hi else f"{limit}, no latency"

    def close(self) -> None:
        stop(self._proc)


def start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """`python -m tmdb_standin standin ARGS` in a process of its own, and the base URL it prints."""
    cmd = [sys.executable, "-m", "tmdb_standin", "standin", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http://"):
        stop(proc)
        raise RuntimeError(f"the stand-in did not start: {' '.join(cmd)}")
    return proc, base_url


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def standin_process(args: list[str]) -> Iterator[str]:
    """A stand-in started with `args` (any of its options); yields its base URL."""
    proc, base_url = start(args)
    try:
        yield base_url
    finally:
        stop(proc)


@contextmanager
def standin(rate_limit: float, latency_ms: tuple[float, float] = (0.0, 0.0)) -> Iterator[Standin]:
    server = Standin(rate_limit, latency_ms)
    progress(f"stand-in up at {server.base_url} ({server.describe()})")
    try:
        yield server
    finally:
        server.close()
