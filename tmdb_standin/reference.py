"""TMDB's reference lists: countries, languages and content certifications, as fixed bodies.

    GET /3/configuration/countries    a JSON array: {"iso_3166_1", "english_name", "native_name"}
    GET /3/configuration/languages    a JSON array: {"iso_639_1", "english_name", "name"} ("" when TMDB
                                      has no native name: Afar, Abkhazian)
    GET /3/certification/movie/list   {"certifications": {"US": [{"certification", "meaning",
    GET /3/certification/tv/list       "order"}, ...], ...}}, countries as keys

Real codes and names, a few dozen of each (TMDB's own lists are longer: about 250 countries and 190
languages), fixed whatever the day or seed: TMDB changes them perhaps once a year. The `language`
parameter is taken and ignored (the names stay English, the native names native). The genre lists
(/3/genre/{movie,tv}/list) are bodies.genre_list_body. Every request takes the credential and counts
against the rate limit, as every /3/ request does (server.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

ROUTES: Final = ("configuration", "certification")  # the first part of the paths served here

# (iso_3166_1, english_name, native_name), in TMDB's order (by code).
COUNTRIES: Final[tuple[tuple[str, str, str], ...]] = (
    ("AD", "Andorra", "Andorra"),
    ("AR", "Argentina", "Argentina"),
    ("AT", "Austria", "Österreich"),
    ("AU", "Australia", "Australia"),
    ("BE", "Belgium", "België"),
    ("BR", "Brazil", "Brasil"),
    ("CA", "Canada", "Canada"),
    ("CH", "Switzerland", "Schweiz"),
    ("CN", "China", "中国"),
    ("CZ", "Czech Republic", "Česko"),
    ("DE", "Germany", "Deutschland"),
    ("DK", "Denmark", "Danmark"),
    ("EG", "Egypt", "مصر"),
    ("ES", "Spain", "España"),
    ("FI", "Finland", "Suomi"),
    ("FR", "France", "France"),
    ("GB", "United Kingdom", "United Kingdom"),
    ("GR", "Greece", "Ελλάδα"),
    ("HK", "Hong Kong", "香港"),
    ("HU", "Hungary", "Magyarország"),
    ("IE", "Ireland", "Éire"),
    ("IL", "Israel", "ישראל"),
    ("IN", "India", "भारत"),
    ("IS", "Iceland", "Ísland"),
    ("IT", "Italy", "Italia"),
    ("JP", "Japan", "日本"),
    ("KR", "South Korea", "대한민국"),
    ("MX", "Mexico", "México"),
    ("NL", "Netherlands", "Nederland"),
    ("NO", "Norway", "Norge"),
    ("NZ", "New Zealand", "New Zealand"),
    ("PL", "Poland", "Polska"),
    ("PT", "Portugal", "Portugal"),
    ("RU", "Russia", "Россия"),
    ("SE", "Sweden", "Sverige"),
    ("TH", "Thailand", "ประเทศไทย"),
    ("TR", "Turkey", "Türkiye"),
    ("TW", "Taiwan", "臺灣"),
    ("UA", "Ukraine", "Україна"),
    ("US", "United States of America", "United States"),
    ("XC", "Czechoslovakia", "Czechoslovakia"),  # TMDB keeps countries that are gone, for old titles
    ("ZA", "South Africa", "South Africa"),
)

# (iso_639_1, english_name, name), in TMDB's order (none: it lists them unsorted; fixed here).
LANGUAGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("xx", "No Language", "No Language"),
    ("aa", "Afar", ""),
    ("ab", "Abkhazian", ""),
    ("ar", "Arabic", "العربية"),
    ("cn", "Cantonese", "广州话 / 廣州話"),  # TMDB's own code: not ISO 639-1
    ("cs", "Czech", "Český"),
    ("da", "Danish", "Dansk"),
    ("de", "German", "Deutsch"),
    ("el", "Greek", "ελληνικά"),
    ("en", "English", "English"),
    ("es", "Spanish", "Español"),
    ("fa", "Persian", "فارسی"),
    ("fi", "Finnish", "suomi"),
    ("fr", "French", "Français"),
    ("he", "Hebrew", "עִבְרִית"),
    ("hi", "Hindi", "हिन्दी"),
    ("hu", "Hungarian", "Magyar"),
    ("is", "Icelandic", "Íslenska"),
    ("it", "Italian", "Italiano"),
    ("ja", "Japanese", "日本語"),
    ("ko", "Korean", "한국어/조선말"),
    ("nl", "Dutch", "Nederlands"),
    ("no", "Norwegian", "Norsk"),
    ("pl", "Polish", "Polski"),
    ("pt", "Portuguese", "Português"),
    ("ru", "Russian", "P\u0443\u0441\u0441\u043a\u0438\u0439"),  # sic: a Latin P, as TMDB has it
    ("sv", "Swedish", "svenska"),
    ("th", "Thai", "ภาษาไทย"),
    ("tr", "Turkish", "Türkçe"),
    ("uk", "Ukrainian", "Український"),
    ("zh", "Mandarin", "普通话"),
    ("zu", "Zulu", "isiZulu"),
)

Rating = tuple[str, str, int]  # (certification, meaning, order)

MOVIE_CERTIFICATIONS: Final[dict[str, tuple[Rating, ...]]] = {
    "AU": (
        ("E", "Exempt from classification.", 0),
        ("G", "General. Suitable for everyone.", 1),
        ("PG", "Parental guidance recommended for viewers under 15.", 2),
        ("M", "Recommended for mature audiences, 15 and over.", 3),
        ("MA 15+", "Not suitable for people under 15 without a parent or adult guardian.", 4),
        ("R 18+", "Restricted to 18 and over.", 5),
        ("X 18+", "Restricted to 18 and over; sexually explicit material.", 6),
    ),
    "DE": (
        ("0", "No age restriction.", 1),
        ("6", "No children younger than 6 years admitted.", 2),
        ("12", "Children 12 or older admitted, children between 6 and 11 only with a parent.", 3),
        ("16", "Children 16 or older admitted, nobody under this age admitted.", 4),
        ("18", "No youth admitted, only adults.", 5),
    ),
    "FR": (
        ("U", "Tous publics: valid for all audiences.", 1),
        ("12", "Prohibited for children under 12 years.", 2),
        ("16", "Prohibited for children under 16 years.", 3),
        ("18", "Prohibited for children under 18 years.", 4),
    ),
    "GB": (
        ("U", "All ages admitted, there is nothing unsuitable for children.", 1),
        ("PG", "All ages admitted, but certain scenes may be unsuitable for young children.", 2),
        ("12A", "Films under this category are considered to be unsuitable for very young people.", 3),
        ("12", "Home media only: not suitable for children under 12.", 4),
        ("15", "Only those over 15 years are admitted.", 5),
        ("18", "Only adults are admitted.", 6),
        ("R18", "Adult works for licensed premises only.", 7),
    ),
    "JP": (
        ("G", "General, suitable for all ages.", 1),
        ("PG12", "Parental guidance requested for young people under 12 years.", 2),
        ("R15+", "No one under 15 admitted.", 3),
        ("R18+", "No one under 18 admitted.", 4),
    ),
    "US": (
        ("NR", "No rating information.", 0),
        ("G", "All ages admitted. There is no content that would be objectionable to most parents.", 1),
        ("PG", "Some material may not be suitable for children under 10.", 2),
        ("PG-13", "Some material may be inappropriate for children under 13.", 3),
        ("R", "Under 17 requires accompanying parent or adult guardian 21 or older.", 4),
        ("NC-17", "These films contain excessive graphic violence, intense or explicit sex.", 5),
    ),
}

TV_CERTIFICATIONS: Final[dict[str, tuple[Rating, ...]]] = {
    "BR": (
        ("L", "Programming suitable for all ages.", 1),
        ("10", "Not recommended for children under 10.", 2),
        ("12", "Not recommended for children under 12.", 3),
        ("14", "Not recommended for minors under 14.", 4),
        ("16", "Not recommended for minors under 16.", 5),
        ("18", "Not recommended for minors under 18.", 6),
    ),
    "DE": (
        ("0", "Can be aired at any time.", 1),
        ("6", "Can be aired at any time.", 2),
        ("12", "The broadcaster must take the decision about the air time with care for children.", 3),
        ("16", "Can be aired only from 10pm until 6am.", 4),
        ("18", "Can be aired only from 11pm until 6am.", 5),
    ),
    "FR": (
        ("NR", "No rating information.", 0),
        ("10", "Not recommended for children under 10.", 1),
        ("12", "Not recommended for children under 12.", 2),
        ("16", "Not recommended for children under 16.", 3),
        ("18", "Not recommended for persons under 18.", 4),
    ),
    "GB": (
        ("U", "Suitable for all.", 1),
        ("PG", "Parental guidance.", 2),
        ("12", "Not suitable for children under 12.", 3),
        ("15", "Only those over 15 years are admitted.", 4),
        ("18", "Only adults.", 5),
    ),
    "KR": (
        ("ALL", "Appropriate for all ages.", 1),
        ("7", "May contain material inappropriate for children younger than 7.", 2),
        ("12", "May be inappropriate for children younger than 12.", 3),
        ("15", "May be inappropriate for children younger than 15.", 4),
        ("19", "Restricted to adults 19 and over.", 5),
    ),
    "US": (
        ("NR", "No rating information.", 0),
        ("TV-Y", "This program is designed to be appropriate for all children.", 1),
        ("TV-Y7", "This program is designed for children age 7 and above.", 2),
        ("TV-G", "Most parents would find this program suitable for all ages.", 3),
        ("TV-PG", "This program contains material that parents may find unsuitable for younger children.", 4),
        ("TV-14", "Many parents would find this program unsuitable for children under 14.", 5),
        ("TV-MA", "This program is specifically designed to be viewed by adults.", 6),
    ),
}


def _certifications(table: dict[str, tuple[Rating, ...]]) -> bytes:
    return orjson.dumps(
        {
            "certifications": {
                country: [{"certification": c, "meaning": m, "order": o} for c, m, o in ratings]
                for country, ratings in table.items()
            }
        }
    )


_BODIES: Final[dict[tuple[str, ...], bytes]] = {
    ("configuration", "countries"): orjson.dumps(
        [{"iso_3166_1": c, "english_name": e, "native_name": n} for c, e, n in COUNTRIES]
    ),
    ("configuration", "languages"): orjson.dumps(
        [{"iso_639_1": c, "english_name": e, "name": n} for c, e, n in LANGUAGES]
    ),
    ("certification", "movie", "list"): _certifications(MOVIE_CERTIFICATIONS),
    ("certification", "tv", "list"): _certifications(TV_CERTIFICATIONS),
}


def body(parts: Sequence[str]) -> bytes | None:
    """The body of /3/<parts...>, or None for a path TMDB does not have (a 404, status_code 34)."""
    return _BODIES.get(tuple(parts))
