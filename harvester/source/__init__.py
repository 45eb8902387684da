"""The input: titles read from movies.csv / series.csv, a local file or an s3:// object."""

from __future__ import annotations

from ..config import Settings
from ..lake.sink import Sink
from .base import Prepare, Source
from .counts import InputCounts
from .csv_rows import MOVIES, SERIES, Filters, IdSet, Layout, LineSplitter, RowSelector
from .csv_source import CsvSource
from .discover import DiscoverSource
from .export import ExportSource
from .ids_source import IdsSource
from .people import PeopleSource
from .reader import BLOCK_SIZE, LocalReader, Reader, S3Reader, open_reader

__all__ = [
    "BLOCK_SIZE",
    "MOVIES",
    "SERIES",
    "CsvSource",
    "DiscoverSource",
    "ExportSource",
    "Filters",
    "IdSet",
    "IdsSource",
    "InputCounts",
    "Layout",
    "LineSplitter",
    "LocalReader",
    "PeopleSource",
    "Prepare",
    "Reader",
    "RowSelector",
    "S3Reader",
    "Source",
    "open_reader",
    "open_source",
]


def open_source(settings: Settings, sink: Sink) -> Source:
    """The source that `settings.source.type` names."""
    src = settings.source
    if src.type == "discover":
        return DiscoverSource(src, settings.tmdb, sink)
    if src.type == "ids":
        return IdsSource(src, settings.sink)
    if src.type == "export":
        return ExportSource(src, sink)
    if src.type == "people":
        return PeopleSource(src, sink)
    return CsvSource(src, settings.sink)
