"""Counters of one pass over a source's input, for the summary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InputCounts:
    """Counters of one pass over a source's input.

    rows = malformed + duplicates + filtered_out + selected once the pass is complete. `selected` is
    counted by whoever yields the titles, so it means "yielded", even on an early stop.
    """

    rows: int = 0  # data rows read: not the header, not blank lines
    malformed: int = 0  # wrong field count, or an id that is not tt + digits
    duplicates: int = 0  # rows whose id was already seen (whether that id was selected or filtered)
    filtered_out: int = 0  # distinct ids dropped by the filters
    selected: int = 0  # distinct ids yielded
