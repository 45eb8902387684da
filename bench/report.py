"""The report of bench/run.py: progress lines on stderr while it runs, one table of figures at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

T0 = time.monotonic()  # the script's start: progress lines and the total wall time count from here


def progress(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    figure: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, figure: str, measure: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(figure, measure, value, target, met))

    def note(self, figure: str, text: str) -> None:
        self.notes.setdefault(figure, []).append(text)

    def render(self) -> str:
        header = ("figure", "measure", "value", "target", "met")
        cells = [header] + [
            (r.figure, r.measure, r.value, r.target, {True: "yes", False: "NO", None: ""}[r.met])
            for r in self.rows
        ]
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        lines = [" | ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        out = ["\n".join(lines), "", "How each figure was measured:"]
        for figure, texts in self.notes.items():
            out += [f"  {figure}:"] + [f"    - {t}" for t in texts]
        return "\n".join(out)
