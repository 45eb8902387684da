"""Running a command as a child process to its end, with the child's own CPU time and peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common import REPO

MB = 1e6


@dataclass
class Child:
    code: int
    wall_s: float
    cpu_s: float  # user + sys of the child alone (wait4)
    peak_rss_mb: float  # ru_maxrss of the child
    stdout: str
    stderr: str


# Linux sets a child's ru_maxrss to at least the RSS high-water mark of the memory it exec'd from, which
# for a (v)fork of this process is this process's: moto's objects would show up as the harvester's peak.
# So children are started by a small launcher process; what it reports is wait4's rusage of the child.
_LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(job["cmd"], env=job["env"], cwd=job["cwd"], stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
    report = {"code": os.waitstatus_to_exitcode(status), "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
              "maxrss_kb": ru.ru_maxrss}
    print(json.dumps(report), flush=True)
"""


class Launcher:
    """Runs one command at a time to its end and returns the child's own rusage (os.wait4)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
        out, err = log.with_suffix(".out"), log.with_suffix(".err")
        job = {"cmd": cmd, "env": dict(os.environ if env is None else env), "cwd": str(REPO),
               "stdout": str(out), "stderr": str(err)}  # fmt: skip
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(job) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the launcher process died")
        r = json.loads(line)
        return Child(
            code=r["code"],
            wall_s=r["wall"],
            cpu_s=r["cpu"],
            peak_rss_mb=r["maxrss_kb"] * 1024 / MB,  # Linux: kilobytes
            stdout=out.read_text(),
            stderr=err.read_text(),
        )

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=10)
