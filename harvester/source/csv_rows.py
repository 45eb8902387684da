"""Pure parsing and filtering of movies.csv / series.csv rows: bytes in, IMDb ids out, no I/O.

The files are IMDb-derived, pipe-separated, unquoted, one row per (title, artist), so an id repeats.
Everything here works on *bytes*: the columns we interpret (id, genero, numeroVotos, anoLancamento)
are ASCII, and the title columns are never decoded, so invalid UTF-8 in a title can neither crash the
run nor cost us the row. Bytes are only decoded (with replacement) for messages and genre names.

Splitting on b"|" and b"\\n" is safe in UTF-8: neither byte occurs inside a multi-byte sequence.

Pieces, in the order data flows through them:
    LineSplitter  blocks of any size -> complete lines (the partial last line is carried over)
    RowSelector   lines -> header check, malformed/duplicate/filter decisions -> selected ids
      IdSet       the "seen" structure: a growable bitmap over the numeric part of the id
      Filters     genres / min_votes / year range, applied to the first row of each id
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import SourceSettings
from ..errors import SourceError
from ..items import Media
from .counts import InputCounts

log = logging.getLogger(__name__)

MISSING = b"\\N"  # IMDb's marker for a missing value
BOM = b"\xef\xbb\xbf"
MAX_LINE = 16 * 1024 * 1024  # a "line" this long means the file is not one of ours (or has no newlines)
MAX_ID_DIGITS = 18  # IMDb ids have 7-9 digits; an 18-digit cap keeps int() cheap and bounded
MALFORMED_LOG_LIMIT = 5  # the caller logs the total; this many individual rows are shown

MOVIES_COLUMNS: tuple[str, ...] = (
    "id", "tituloPincipal", "tituloOriginal", "anoLancamento", "tempoMinutos", "genero", "notaMedia",
    "numeroVotos", "generoArtista", "personagem", "nomeArtista", "anoNascimento", "anoFalecimento",
    "profissao", "titulosMaisConhecidos",
)  # fmt: skip
SERIES_COLUMNS: tuple[str, ...] = (*MOVIES_COLUMNS[:4], "anoTermino", *MOVIES_COLUMNS[4:])


@dataclass(frozen=True, slots=True)
class Layout:
    """The column layout of one kind of file; the header must match it exactly."""

    name: str  # "movies.csv" or "series.csv", for messages
    columns: tuple[str, ...]

    @property
    def header(self) -> str:
        return "|".join(self.columns)

    @property
    def separators(self) -> int:
        return len(self.columns) - 1

    def col(self, name: str) -> int:
        return self.columns.index(name)


MOVIES = Layout("movies.csv", MOVIES_COLUMNS)
SERIES = Layout("series.csv", SERIES_COLUMNS)


def layout_for(media: Media) -> Layout:
    return SERIES if media == "tv" else MOVIES


class IdSet:
    """A set of non-negative ints (the numeric part of IMDb ids) with memory flat in the row count.

    A bitmap indexed by the number costs one bit per possible id below the largest seen: 4.4 MB for
    today's ids (up to ~3.5e7), against ~70 bytes per entry for a set of str (17 MB for the 245k ids
    of movies.csv, unbounded for bigger inputs). It grows geometrically, so only as far as the ids go.
    Numbers at or above `bitmap_limit` go to a plain set instead: one stray huge id must not allocate
    a huge bitmap. 2**28 (a 32 MiB bitmap at most) leaves ~7x headroom over today's ids.
    """

    __slots__ = ("_big", "_bits", "_limit")

    def __init__(self, bitmap_limit: int = 1 << 28) -> None:
        self._bits = bytearray()
        self._big: set[int] = set()
        self._limit = bitmap_limit

    def add(self, n: int) -> bool:
        """Add `n`; True when it was not there before."""
        if n >= self._limit:
            if n in self._big:
                return False
            self._big.add(n)
            return True
        i = n >> 3
        bits = self._bits
        if i >= len(bits):
            self._grow(i)
        mask = 1 << (n & 7)
        b = bits[i]
        if b & mask:
            return False
        bits[i] = b | mask
        return True

    def __contains__(self, n: int) -> bool:
        if n >= self._limit:
            return n in self._big
        i = n >> 3
        return i < len(self._bits) and bool(self._bits[i] & (1 << (n & 7)))

    @property
    def nbytes(self) -> int:
        """Bytes held by the bitmap (the fallback set is not counted)."""
        return len(self._bits)

    def _grow(self, index: int) -> None:
        # Doubling keeps growth amortised O(1) for files sorted by id (the usual case); the cap keeps it
        # within the limit we promised.
        cap = (self._limit + 7) >> 3
        size = min(cap, max(index + 1, 2 * len(self._bits), 64 * 1024))
        self._bits.extend(bytes(size - len(self._bits)))


@dataclass(frozen=True, slots=True)
class Filters:
    """Which titles to keep, judged on the first row of each id (all rows of an id share the title)."""

    genres: frozenset[str] = frozenset()  # lower-case; empty keeps all
    min_votes: int = 0
    year_from: int = 0  # 0 leaves that end open
    year_to: int = 0
    genre_col: int = MOVIES.col("genero")
    votes_col: int = MOVIES.col("numeroVotos")
    year_col: int = MOVIES.col("anoLancamento")

    @classmethod
    def from_settings(cls, s: SourceSettings, layout: Layout) -> Filters:
        return cls(
            genres=frozenset(str(g).strip().lower() for g in s.genres if str(g).strip()),
            min_votes=s.min_votes,
            year_from=s.year_from,
            year_to=s.year_to,
            genre_col=layout.col("genero"),
            votes_col=layout.col("numeroVotos"),
            year_col=layout.col("anoLancamento"),
        )

    @property
    def active(self) -> bool:
        return bool(self.genres) or self.min_votes > 0 or bool(self.year_from) or bool(self.year_to)

    def keeps(self, line: bytes) -> bool:
        """Whether a well-formed row passes. `\\N` (or anything not a number) in numeroVotos counts as
        0 votes; a missing year fails any range that is not fully open; missing genres fail a genre
        filter."""
        fields = line.split(b"|")
        if self.genres:
            raw = fields[self.genre_col]
            if raw == MISSING:
                return False
            names = raw.decode("utf-8", "replace").lower().split(",")
            if not any(g.strip() in self.genres for g in names):
                return False
        if self.min_votes > 0:
            votes = fields[self.votes_col]
            if (int(votes) if votes.isdigit() else 0) < self.min_votes:
                return False
        if self.year_from or self.year_to:
            raw = fields[self.year_col]
            if not raw.isdigit():
                return False
            year = int(raw)
            if self.year_from and year < self.year_from:
                return False
            if self.year_to and year > self.year_to:
                return False
        return True


class LineSplitter:
    """Cuts a stream of blocks into lines at b"\\n", carrying the partial last line to the next block.

    Lines keep a trailing b"\\r" (CRLF files): the selector tolerates it, and stripping each line
    would cost a copy per row.
    """

    __slots__ = ("_carry", "_name")

    def __init__(self, name: str = "input") -> None:
        self._carry = b""
        self._name = name

    def feed(self, block: bytes) -> list[bytes]:
        if self._carry:
            block = self._carry + block
        lines = block.split(b"\n")
        self._carry = lines.pop()  # b"" when the block ended with a newline
        if len(self._carry) > MAX_LINE:
            raise SourceError(
                f"{self._name}: a line longer than {MAX_LINE // (1024 * 1024)} MiB; not a pipe-separated CSV"
            )
        return lines

    def finish(self) -> list[bytes]:
        """The last line when the file does not end with a newline."""
        carry, self._carry = self._carry, b""
        return [carry] if carry else []


class RowSelector:
    """Turns the lines of one pass into the ids to look up, in file order, counting into `stats`.

    The first non-empty line must be the header of `layout` (a UTF-8 BOM before it is tolerated).
    A row is malformed when its field count is wrong or its id is not `tt` + digits; the first
    `log_limit` malformed rows are logged with their 1-based line number.

    Ids are compared by number, so `tt000009` and `tt0000009` are the same title: leading zeros are
    only padding, and keying on the number is what lets the seen-set be a bitmap. The id is yielded
    in IMDb's canonical form (`tt` + at least 7 digits, zero-padded), the form TMDB stores; for a
    well-formed file that is the string as written.
    """

    def __init__(
        self,
        layout: Layout,
        filters: Filters,
        stats: InputCounts,
        name: str = "input",
        log_limit: int = MALFORMED_LOG_LIMIT,
    ) -> None:
        self.layout = layout
        self.stats = stats
        self._filters = filters
        self._name = name
        self._log_limit = log_limit
        self._seen = IdSet()
        self._header_seen = False
        self._lineno = 0  # lines consumed so far, header and blank lines included
        # The id of the last well-formed row followed by "|": repeats are usually adjacent, and one
        # startswith() is the cheapest test for them. b"\n" matches no line (lines have no newline).
        self._last = b"\n"

    def feed(self, lines: list[bytes]) -> list[str]:
        """Consume the next lines; return the ids selected among them."""
        start = 0
        if not self._header_seen:
            start = self._take_header(lines)
            if start:
                lines = lines[start:]
        return self._rows(lines)

    def finish(self) -> None:
        """Call after the last line: a file with no header at all is an error too."""
        if not self._header_seen:
            raise SourceError(f"{self._name}: empty file; expected the {self.layout.name} header")

    # -----------------------------------------------------------------------------------------

    def _take_header(self, lines: list[bytes]) -> int:
        """Check the header if it is among `lines`; return how many lines it used up."""
        for i, line in enumerate(lines):
            self._lineno += 1
            if self._lineno == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            line = line.strip()
            if not line:
                continue
            self._check_header(line)
            self._header_seen = True
            return i + 1
        return len(lines)

    def _check_header(self, line: bytes) -> None:
        if line == self.layout.header.encode():
            return
        other = MOVIES if self.layout is SERIES else SERIES
        hint = ""
        if line == other.header.encode():
            hint = (
                '; this is a series.csv header: set source.type = "series_csv"'
                if other is SERIES
                else '; this is a movies.csv header: set source.type = "csv" and source.media = "movie"'
            )
        got = line[:60].decode("utf-8", "replace")
        raise SourceError(
            f"{self._name}: line {self._lineno} is not the {self.layout.name} header "
            f"(got {got!r}{'...' if len(line) > 60 else ''}); expected {self.layout.header!r}{hint}"
        )

    def _rows(self, lines: list[bytes]) -> list[str]:
        # The hot loop: ~4 rows per id, so the adjacent-repeat test comes before any parsing, and the
        # line is only split into fields for the first row of an id, and only when a filter needs it.
        out: list[str] = []
        seps = self.layout.separators
        add = self._seen.add
        keep = self._filters.keeps if self._filters.active else None
        last = self._last
        blanks = dups = filtered = 0
        lineno = self._lineno
        for lineno, line in enumerate(lines, self._lineno + 1):
            if line.count(b"|") != seps:
                if line.strip():
                    self._malformed(lineno, line, f"{line.count(b'|') + 1} fields, expected {seps + 1}")
                else:
                    blanks += 1  # a blank (or CR-only) line is not a row
                continue
            if line.startswith(last):
                dups += 1
                continue
            cut = line.find(b"|")
            rid = line[:cut]
            digits = rid[2:]
            if not (rid.startswith(b"tt") and digits.isdigit() and len(digits) <= MAX_ID_DIGITS):
                self._malformed(lineno, line, f"id {rid.decode('utf-8', 'replace')!r} is not tt + digits")
                continue
            n = int(digits)
            last = line[: cut + 1]
            if not add(n):
                dups += 1
                continue
            if keep is not None and not keep(line):
                filtered += 1
                continue
            out.append(f"tt{n:07d}")
        self._lineno = lineno
        self._last = last
        st = self.stats
        st.rows += len(lines) - blanks
        st.duplicates += dups
        st.filtered_out += filtered
        return out

    def _malformed(self, lineno: int, line: bytes, reason: str) -> None:
        self.stats.malformed += 1
        if self.stats.malformed <= self._log_limit:
            text = line.rstrip(b"\r")[:80].decode("utf-8", "replace")
            log.warning("%s line %d: malformed row skipped (%s): %r", self._name, lineno, reason, text)
