"""Output locations: S3 (or an S3-compatible endpoint) and a local directory."""

from __future__ import annotations

from ...config import SinkSettings, is_s3_url
from .base import HARVEST_DIR, MULTIPART_PART_SIZE, Capabilities, Sink, Versioned

__all__ = ["HARVEST_DIR", "MULTIPART_PART_SIZE", "Capabilities", "Sink", "Versioned", "open_sink"]


def open_sink(settings: SinkSettings) -> Sink:
    """The sink for `settings.url`; call inside the running loop, and `aclose()` it when done."""
    if is_s3_url(settings.url):
        from .s3 import S3Sink

        return S3Sink(settings)
    from .local import LocalSink

    return LocalSink(settings.url)
