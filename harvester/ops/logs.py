"""Logging for every way in: one handler on stderr, and no credential in any line it writes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence


class RedactSecrets(logging.Filter):
    """Last line of defence: no log record leaves with a credential in it."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            if any(s in message for s in self._secrets):
                record.msg, record.args = redact(message, self._secrets), None
        return True


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def setup_logging(verbose: bool, secrets: Sequence[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("harvester").setLevel(logging.DEBUG if verbose else logging.INFO)
