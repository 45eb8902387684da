"""What the benchmark scripts share: a fake AWS environment and config files written from dicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parent.parent
PREFIX = "Raw/TMDB/JSON"  # where the harvester writes in every benchmark bucket


def fake_aws(tmp: Path) -> None:
    """Credentials for moto only: no real profile, region or instance metadata can leak in."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )


def toml(sections: dict[str, dict[str, Any]]) -> str:
    """A harvester config file from {section: {key: value}}."""
    return tomli_w.dumps(sections)
