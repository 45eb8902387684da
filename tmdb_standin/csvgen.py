"""Generated inputs in the format of the bootcamp's movies.csv and series.csv, of any size.

Pipe-separated, no quoting (titles may begin with '"'), `\\N` for missing, one row per
(title, artist) so an id repeats on consecutive rows. The ids are spread over the IMDb number space,
so every kind of the stand-in catalogue occurs (movies.csv) or TV dominates (series.csv).

Writers stream to disk with flat memory and return counts; `movie_ids` / `series_ids` regenerate
the same id sequence lazily, so a test can compute the expected outcomes without a list in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import titles

MOVIES_HEADER = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|tempoMinutos|genero|notaMedia|numeroVotos|"
    "generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|titulosMaisConhecidos"
)
SERIES_HEADER = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|anoTermino|tempoMinutos|genero|notaMedia|numeroVotos|"
    "generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|titulosMaisConhecidos"
)
IMDB_GENRES = (
    "Action", "Adult", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama",
    "Family", "Fantasy", "Film-Noir", "Game-Show", "History", "Horror", "Music", "Musical", "Mystery",
    "News", "Reality-TV", "Romance", "Sci-Fi", "Short", "Sport", "Talk-Show", "Thriller", "War", "Western",
)  # fmt: skip
# Drama and Comedy dominate IMDb; repeats make them likelier.
_GENRE_DRAW = (*IMDB_GENRES, *("Drama",) * 6, *("Comedy",) * 3, "Romance", "Crime", "Action", "Sci-Fi")
_MISSING = "\\N"
_MAX_ID = 99_999_999
_FLUSH_ROWS = 8_192
_POOL = 4_096  # distinct values of each column group


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    ids: int  # distinct ids, in file order
    rows: int  # data rows (the header not counted)


def movie_ids(n: int, seed: int = 0, start_id: int = 9) -> Iterator[str]:
    """The ids `write_movies_csv(..., n, seed=seed, start_id=start_id)` writes, in order."""
    rng = random.Random(f"movie-ids:{seed}")  # str seeds hash with SHA-512: same sequence everywhere
    number = start_id
    for _ in range(n):
        if number > _MAX_ID:
            raise ValueError(f"{n} ids from {start_id} overflow the 8-digit IMDb id space")
        yield titles.imdb_id_from_number(number)
        number += 1 + int(rng.random() * 40)  # mean gap ~20: spread, and cheap to generate


def series_ids(n: int, seed: int = 0, start_id: int = 20_000, tv_share: float = 0.9) -> Iterator[str]:
    """Ids for `write_series_csv`: about `tv_share` of them are TV to the catalogue, the rest not.

    Only ~3% of all ids are TV, so candidates are scanned and non-TV ones kept with the probability
    that leaves the requested mix (the misses exercise the harvester's "not a series" path).
    """
    if not 0 < tv_share <= 1:
        raise ValueError(f"tv_share must be within (0, 1], not {tv_share}")
    tv_rate = 0.03
    keep_other = tv_rate * (1 / tv_share - 1) / (1 - tv_rate)
    rng = random.Random(f"series-ids:{seed}")
    number, produced = start_id, 0
    while produced < n:
        if number > _MAX_ID:
            raise ValueError(f"{n} series ids from {start_id} overflow the 8-digit IMDb id space")
        candidate = number
        number += 1 + int(rng.random() * 3)
        if titles.kind_of_number(candidate) == "tv" or rng.random() < keep_other:
            produced += 1
            yield titles.imdb_id_from_number(candidate)


# ---------------------------------------------------------------------------------------------
# Row content

_FIRST = (
    "John", "Mary", "Charles", "Blanche", "William", "Rhoda", "Henri", "Christiane", "Georges",
    "Elizabeth", "Antonio", "Jean", "Harry", "Paul", "Émile", "Max", "Lance", "Arthur", "Norman",
    "Giulia", "Takeshi", "Ana", "João", "Ingrid", "Raj", "Seo-yeon", "Kate", "Nicholas", "Lucía",
)  # fmt: skip
_LAST = (
    "Tait", "Bayliss", "Courtenay", "Depew", "Gouget", "Mandelys", "Wague", "Dendron", "Guest", "Duff",
    "Vane", "Servais", "Baur", "Vanel", "Azaïs", "Dearly", "Dullin", "Genevois", "Krauss", "Smith",
    "Silva", "Rossi", "Tanaka", "Müller", "Kapoor", "Kim", "O'Hara", "García", "Novak",
)  # fmt: skip
_WORDS = (
    "Story", "Gang", "Prodigal", "Son", "Robbery", "Arms", "Bohemios", "Miss", "Jerry", "River",
    "Night", "Kingdom", "Letter", "Promise", "Storm", "Garden", "Road", "City", "Island", "Summer",
    "Crimson", "Silent", "Golden", "Lost", "Last", "Wild", "Secret", "Little", "Dark", "Eternal",
)  # fmt: skip
_FOREIGN = ("L'enfant", "Le", "La", "O", "A", "Der", "Die", "Il", "El", "Los")
_CHARACTERS = (
    "Himself", "Herself", "Narrator", "The Doctor", "Inspector of Police", "School Master", "Trooper",
    "Warder", "Curate", "Mrs. {last}", "Mr. {last}", "{first}", "Young {first}", "Captain {last}",
    "{first} {last}",
)  # fmt: skip
_PROFESSIONS = (
    "actor", "actress", "actor,writer", "actor,producer", "actress,soundtrack", "actor,director,writer",
    "actor,cinematographer", "actress,writer", "actor,soundtrack",
)  # fmt: skip


def _title(rng: random.Random) -> str:
    r = rng.random
    words = [_WORDS[int(r() * len(_WORDS))] for _ in range(1 + int(r() * 3))]
    if r() < 0.3:
        words.insert(0, "The")
    title = " ".join(words)
    if r() < 0.01:
        title = f'"{title}"' if r() < 0.5 else f'"{words[-1]}" {title}'  # IMDb has such titles
    return title


def _artist_tail(rng: random.Random) -> str:
    """generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|titulosMaisConhecidos"""
    r = rng.random
    female = r() < 0.4
    first, last = _FIRST[int(r() * len(_FIRST))], _LAST[int(r() * len(_LAST))]
    character = _CHARACTERS[int(r() * len(_CHARACTERS))].format(
        first=_FIRST[int(r() * len(_FIRST))], last=last
    )
    born = 1830 + int(r() * 165)
    died = str(born + 30 + int(r() * 60)) if born < 1950 and r() < 0.8 else _MISSING
    profession = _PROFESSIONS[int(r() * len(_PROFESSIONS))].replace("actress", "actor")
    if female:
        profession = profession.replace("actor", "actress")
    known = ",".join(titles.imdb_id_from_number(1 + int(r() * 9_999_999)) for _ in range(1 + int(r() * 4)))
    cols = (
        "actress" if female else "actor",
        character if r() < 0.7 else _MISSING,
        f"{first} {last}",
        str(born) if r() < 0.7 else _MISSING,
        died,
        profession,
        known,
    )
    return "|".join(cols) + "\n"


def _title_names(rng: random.Random) -> str:
    """tituloPincipal|tituloOriginal"""
    r = rng.random
    title = _title(rng)
    original = title if r() < 0.85 else f"{_FOREIGN[int(r() * len(_FOREIGN))]} {title.strip(chr(34))}"
    return f"{title}|{original}"


def _title_facts(rng: random.Random, series: bool) -> str:
    """anoLancamento[|anoTermino]|tempoMinutos|genero|notaMedia|numeroVotos"""
    r = rng.random
    year = 2023 - min(int(r() * 129), int(r() * 129))  # 1894..2023, mostly recent
    minutes = _MISSING if r() < 0.04 else str((20 if series else 45) + int(r() * (60 if series else 150)))
    if r() < 0.03:
        genres = _MISSING
    else:
        picked = {_GENRE_DRAW[int(r() * len(_GENRE_DRAW))] for _ in range(1 + int(r() * 3))}
        genres = ",".join(sorted(picked))  # IMDb lists a title's genres alphabetically
    cols = [str(year)]
    if series:
        cols.append(_MISSING if r() < 0.3 else str(min(2023, year + int(r() * 15))))
    cols += [minutes, genres, f"{1 + r() * 9:.1f}", str(5 + int(2_000_000 * r() ** 9))]
    return "|".join(cols)


def _write(
    path: str | Path,
    header: str,
    ids: Iterator[str],
    rows_per_title: tuple[int, int],
    seed: int,
    series: bool,
) -> Written:
    lo, hi = rows_per_title
    if not 1 <= lo <= hi:
        raise ValueError(f"rows per title must be 1 <= min <= max, not {rows_per_title}")
    rng = random.Random(f"rows:{seed}:{series}")
    r = rng.random
    # Pools of column groups drawn independently: 4096**3 combinations, a few draws per title.
    names = [_title_names(rng) for _ in range(_POOL)]
    facts = [_title_facts(rng, series) for _ in range(_POOL)]
    tails = [_artist_tail(rng) for _ in range(_POOL)]
    span = hi - lo + 1
    out_path = Path(path)
    n_ids = n_rows = 0
    buffer: list[str] = []
    with out_path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n")
        for imdb_id in ids:
            head = f"{imdb_id}|{names[int(r() * _POOL)]}|{facts[int(r() * _POOL)]}|"
            rows = lo + int(r() * span)
            buffer.extend(head + tails[int(r() * _POOL)] for _ in range(rows))
            n_ids += 1
            n_rows += rows
            if len(buffer) >= _FLUSH_ROWS:
                f.write("".join(buffer))
                buffer.clear()
        f.write("".join(buffer))
    return Written(out_path, n_ids, n_rows)


def write_movies_csv(
    path: str | Path,
    n_movies: int,
    rows_per_movie: tuple[int, int] = (1, 6),
    seed: int = 0,
    start_id: int = 9,
) -> Written:
    """Write a movies.csv of `n_movies` distinct ids (the ids of `movie_ids(n_movies, seed, start_id)`)."""
    return _write(
        path, MOVIES_HEADER, movie_ids(n_movies, seed, start_id), rows_per_movie, seed, series=False
    )


def write_series_csv(
    path: str | Path,
    n_series: int,
    rows_per_series: tuple[int, int] = (1, 6),
    seed: int = 0,
    start_id: int = 20_000,
    tv_share: float = 0.9,
) -> Written:
    """Write a series.csv of `n_series` distinct ids (those of `series_ids(n_series, seed, ...)`)."""
    ids = series_ids(n_series, seed, start_id, tv_share)
    return _write(path, SERIES_HEADER, ids, rows_per_series, seed, series=True)
