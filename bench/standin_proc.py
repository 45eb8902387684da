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


class Standin:
    """The TMDB stand-in in a process of its own (its CPU is not the harvester's)."""

    def __init__(self, rate_limit: float, latency_ms: tuple[float, float]) -> None:
        self.rate_limit, self.latency_ms = rate_limit, latency_ms
        lo, hi = latency_ms
        args = ["--port", "0", "--rate-limit", f"{rate_limit:g}", "--latency-ms", f"{lo:g}", f"{hi:g}"]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harvester", "standin", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError("the stand-in did not print its base URL")
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
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


@contextmanager
def standin(rate_limit: float, latency_ms: tuple[float, float] = (0.0, 0.0)) -> Iterator[Standin]:
    server = Standin(rate_limit, latency_ms)
    progress(f"stand-in up at {server.base_url} ({server.describe()})")
    try:
        yield server
    finally:
        server.close()
