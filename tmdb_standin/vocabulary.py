"""Words and reference data the catalogue draws from: names, title words, plot pieces, studios.

Repeated entries are likelier to be drawn.
"""

from __future__ import annotations

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret",
    "Paul", "Sandra", "Steven", "Ashley", "Andrew", "Emily", "Kenneth", "Donna", "Joshua", "Michelle",
    "José", "María", "Luis", "Ana", "João", "Beatriz", "François", "Amélie", "Hiroshi", "Yuki",
    "Giulia", "Marco", "Sven", "Ingrid", "Raj", "Priya", "Min-jun", "Seo-yeon", "Zoë", "Björn",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Silva", "Santos", "Oliveira", "Dubois", "Lefèvre", "Tanaka", "Suzuki", "Rossi", "Bianchi",
    "Johansson", "Müller", "Schneider", "Kapoor", "Sharma", "Kim", "Park", "O'Brien", "Novak",
)  # fmt: skip
ADJECTIVES = (
    "Silent", "Last", "Broken", "Golden", "Hidden", "Crimson", "Lost", "Dark", "Eternal", "Wild",
    "Burning", "Frozen", "Secret", "Little", "Final", "Distant", "Savage", "Midnight", "Electric",
    "Forgotten", "Hollow", "Restless", "Iron", "Velvet", "Paper", "Northern", "Endless", "Quiet",
)  # fmt: skip
NOUNS = (
    "River", "Kingdom", "Promise", "Shadow", "Garden", "Horizon", "Empire", "Witness", "Harbor",
    "Journey", "Storm", "Mirror", "Frontier", "Dream", "Machine", "Heart", "Road", "City", "Island",
    "Summer", "Winter", "Orchard", "Lighthouse", "Circus", "Station", "Letter", "Crown", "Tide",
)  # fmt: skip
ROLES = (
    "detective", "schoolteacher", "young widow", "retired boxer", "smuggler", "nurse", "journalist",
    "farmer", "runaway teenager", "disgraced surgeon", "pilot", "con artist", "priest", "musician",
)  # fmt: skip
PLACES = (
    "a small harbor town", "the outskirts of Lisbon", "a mining village", "1970s Tokyo",
    "the Nevada desert", "a crumbling estate", "Rio de Janeiro", "the Scottish Highlands",
    "a Paris suburb", "a remote island",
)  # fmt: skip
OBJECTS = ("letter", "photograph", "map", "diary", "tape recording", "key", "painting", "ledger")
GOALS = (
    "uncover the truth about a decades-old disappearance",
    "protect the only family they have left",
    "pull off one last job before leaving town for good",
    "win back the trust of a community that has turned against them",
    "cross a continent at war to deliver a message",
    "survive a winter that nobody expected to end",
    "prove the innocence of a stranger condemned to hang",
    "keep a failing travelling theatre alive",
)  # fmt: skip
TWISTS = (
    "But every answer leads to a harder question.",
    "What begins as a favour soon becomes an obsession.",
    "Old loyalties are tested as the past refuses to stay buried.",
    "Time is running out, and not everyone wants them to succeed.",
    "An unlikely friendship may be the only way through.",
    "Nothing in the small town is quite what it seems.",
)  # fmt: skip
TAGLINES = (
    "Some promises are meant to be broken.", "The truth has a price.", "No one walks away.",
    "Every legend has a beginning.", "Hope is a dangerous thing.", "", "", "The end is only the start.",
    "Love knows no borders.", "Fear the silence.",
)  # fmt: skip
CHARACTERS = (
    "Detective {last}", "Dr. {last}", "{first}", "Young {first}", "Mrs. {last}", "Captain {last}",
    "Himself", "Narrator", "{first} {last}", "Officer {last}", "Sister {first}", "Bartender",
    "Reporter", "Uncle {first}", "The Stranger", "{first} (voice)",
)  # fmt: skip
CREW_JOBS = (
    ("Directing", "Director"), ("Writing", "Screenplay"), ("Writing", "Novel"), ("Writing", "Writer"),
    ("Production", "Producer"), ("Production", "Executive Producer"), ("Production", "Casting"),
    ("Sound", "Original Music Composer"), ("Sound", "Sound Designer"), ("Sound", "Boom Operator"),
    ("Camera", "Director of Photography"), ("Camera", "Camera Operator"), ("Editing", "Editor"),
    ("Art", "Production Design"), ("Art", "Art Direction"), ("Art", "Set Decoration"),
    ("Costume & Make-Up", "Costume Design"), ("Costume & Make-Up", "Makeup Artist"),
    ("Crew", "Stunt Coordinator"), ("Crew", "Stunts"), ("Visual Effects", "Visual Effects Supervisor"),
    ("Lighting", "Gaffer"), ("Lighting", "Electrician"),
)  # fmt: skip
COMPANIES = (
    (174, "Warner Bros. Pictures", "US"), (33, "Universal Pictures", "US"), (4, "Paramount Pictures", "US"),
    (5, "Columbia Pictures", "US"), (25, "20th Century Fox", "US"), (21, "Metro-Goldwyn-Mayer", "US"),
    (2, "Walt Disney Pictures", "US"), (41077, "A24", "US"), (9, "Gaumont", "FR"), (694, "StudioCanal", "FR"),
    (882, "Toho", "JP"), (7981, "Pathé", "FR"), (2597, "Globo Filmes", "BR"), (12, "New Line Cinema", "US"),
    (1632, "Lionsgate", "US"), (10163, "Working Title Films", "GB"), (1115, "Rai Cinema", "IT"),
    (4171, "Warner Bros. Television", "US"), (11073, "Sony Pictures Television Studios", "US"),
)  # fmt: skip
NETWORKS = (
    (49, "HBO", "US"), (213, "Netflix", "US"), (6, "NBC", "US"), (16, "CBS", "US"), (4, "BBC One", "GB"),
    (2, "ABC", "US"), (88, "FX", "US"), (1024, "Prime Video", "US"), (318, "TV Globo", "BR"),
)  # fmt: skip
# (country, country name, language, language's English name, its own name); repeated = likelier
ORIGINS = (
    *[("US", "United States of America", "en", "English", "English")] * 11,
    *[("GB", "United Kingdom", "en", "English", "English")] * 2,
    ("FR", "France", "fr", "French", "Français"),
    ("BR", "Brazil", "pt", "Portuguese", "Português"),
    ("JP", "Japan", "ja", "Japanese", "日本語"),
    ("IT", "Italy", "it", "Italian", "Italiano"),
    ("DE", "Germany", "de", "German", "Deutsch"),
    ("ES", "Spain", "es", "Spanish", "Español"),
    ("IN", "India", "hi", "Hindi", "हिन्दी"),
    ("KR", "South Korea", "ko", "Korean", "한국어/조선말"),
    ("MX", "Mexico", "es", "Spanish", "Español"),
    ("CA", "Canada", "en", "English", "English"),
)
ORIGIN_US, ORIGIN_BR = ORIGINS[0], ("BR", "Brazil", "pt", "Portuguese", "Português")
CERTIFICATIONS = ("G", "PG", "PG-13", "R", "R", "PG-13", "NC-17", "")
TV_RATINGS = ("TV-Y", "TV-G", "TV-PG", "TV-14", "TV-14", "TV-MA")
VIDEO_KINDS = ("Trailer", "Teaser", "Clip", "Featurette", "Behind the Scenes")
KEYWORDS = (
    (818, "based on novel or book"), (9672, "based on true story"), (10683, "coming of age"),
    (4565, "dystopia"), (6149, "police"), (1701, "hero"), (9748, "revenge"), (13088, "summer"),
    (10183, "independent film"), (5565, "biography"), (9951, "alien"), (12377, "zombie"),
    (155477, "neo-noir"), (3799, "ranch"), (1721, "fight"), (14544, "small town"), (10084, "rescue"),
)  # fmt: skip
