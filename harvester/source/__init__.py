"""The input: titles read from movies.csv / series.csv, a local file or an s3:// object."""

from __future__ import annotations

from .csv_rows import MOVIES, SERIES, Filters, IdSet, Layout, LineSplitter, RowSelector, Stats
from .csv_source import CsvSource
from .reader import BLOCK_SIZE, LocalReader, Reader, S3Reader, open_reader

__all__ = [
    "BLOCK_SIZE",
    "MOVIES",
    "SERIES",
    "CsvSource",
    "Filters",
    "IdSet",
    "Layout",
    "LineSplitter",
    "LocalReader",
    "Reader",
    "RowSelector",
    "S3Reader",
    "Stats",
    "open_reader",
]
