"""The one duration format, shared by the progress ETA and `check`'s time estimate."""

from __future__ import annotations

import pytest

from harvester.ops.progress import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (44.6, "45s"),
        (60, "1m00s"),
        (187, "3m07s"),
        (3599.4, "59m59s"),
        (3600, "1h00m"),
        (6725, "1h52m"),  # seconds are dropped once there are hours
        (100 * 3600 + 5 * 60, "100h05m"),
        (-3, "0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
