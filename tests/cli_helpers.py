"""Running `python -m harvester` as a real process, as users and schedulers do."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(sections), encoding="utf-8")
    return path


def cli_env(token: str | None = None, api_key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMDB_")}
    if token:
        env["TMDB_ACCESS_TOKEN"] = token
    if api_key:
        env["TMDB_API_KEY"] = api_key
    return env


async def start_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "harvester",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(*args: str, env: dict[str, str], limit_s: float = 120) -> Done:
    proc = await start_cli(*args, env=env)
    async with asyncio.timeout(limit_s):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def wait_for_line(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    """Read lines until one contains `needle` (keeping them in `seen`)."""
    async with asyncio.timeout(60):
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"process ended before printing {needle!r}: {''.join(seen)}")
            seen.append(line.decode())
            if needle in seen[-1]:
                return
