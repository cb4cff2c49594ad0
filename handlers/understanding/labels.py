"""The models' tag vocabularies and the human-facing groups derived from them.

MSD_musicnn knows 50 Last.fm tags of the Million Song Dataset, MTT_musicnn 50 MagnaTagATune tags;
their lists (order = the models' outputs) are copied from musicnn's `configuration.py`. Several
tags say the same thing in both vocabularies or within one ("female vocalists", "woman",
"female voice"), so a group label's score is the highest probability among its source tags, and
the label is given when that score reaches its group's threshold.

Thresholds: the models' sigmoid outputs are calibrated to tag frequency in their training data,
so a clear genre or mood rarely scores above 0.5, while common acoustic facts (drums, guitar,
"no vocals") often do. Genres and moods count from 0.25, instruments and vocals from 0.3; a
label is also required to be among the strongest of its group (GROUP_LIMIT), so a track is not
called five genres at once.
"""

from __future__ import annotations

MSD_LABELS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)  # fmt: skip
MTT_LABELS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip

Sources = tuple[tuple[str, ...], tuple[str, ...]]  # (MSD tags, MTT tags)

GENRES: dict[str, Sources] = {
    "rock": (("rock", "classic rock", "alternative rock", "indie rock", "hard rock"), ("rock",)),
    "pop": (("pop", "indie pop"), ("pop",)),
    "indie": (("indie", "alternative"), ()),
    "electronic": (("electronic", "electronica", "electro"), ("electronic", "synth")),
    "dance": (("dance", "party"), ("dance",)),
    "house": (("House",), ()),
    "techno": ((), ("techno",)),
    "jazz": (("jazz",), ()),
    "metal": (("metal", "heavy metal"), ("metal",)),
    "punk": (("punk",), ()),
    "progressive rock": (("Progressive rock",), ()),
    "soul": (("soul", "rnb"), ()),
    "funk": (("funk",), ()),
    "blues": (("blues",), ()),
    "folk": (("folk",), ()),
    "country": (("country",), ("country",)),
    "hip hop": (("Hip-Hop",), ()),
    "ambient": (("ambient", "chillout"), ("ambient", "new age")),
    "experimental": (("experimental",), ("weird",)),
    "easy listening": (("easy listening",), ()),
    "classical": ((), ("classical", "classic", "harpsichord")),
    "opera": ((), ("opera",)),
    "indian": ((), ("indian", "sitar")),
}
MOODS: dict[str, Sources] = {
    "happy": (("happy",), ()),
    "sad": (("sad",), ()),
    "mellow": (("Mellow", "easy listening"), ("soft",)),
    "chill": (("chill", "chillout"), ()),
    "beautiful": (("beautiful",), ()),
    "calm": ((), ("quiet", "soft", "slow")),
    "energetic": (("party",), ("loud", "fast")),
    "catchy": (("catchy",), ()),
    "sexy": (("sexy",), ()),
    "strange": (("experimental",), ("weird",)),
}
INSTRUMENTS: dict[str, Sources] = {
    "guitar": (("guitar",), ("guitar",)),
    "acoustic": (("acoustic",), ()),
    "piano": ((), ("piano",)),
    "drums": ((), ("drums", "beat", "beats")),
    "synth": ((), ("synth",)),
    "strings": ((), ("strings", "violin", "cello")),
    "violin": ((), ("violin",)),
    "cello": ((), ("cello",)),
    "harpsichord": ((), ("harpsichord",)),
    "flute": ((), ("flute",)),
    "harp": ((), ("harp",)),
    "sitar": ((), ("sitar",)),
}
VOCALS: dict[str, Sources] = {
    "female vocals": (
        ("female vocalists", "female vocalist"),
        ("female", "woman", "female vocal", "female voice"),
    ),
    "male vocals": (("male vocalists",), ("male", "man", "male vocal", "male voice")),
    "choir": ((), ("choir", "choral")),
    "singing": ((), ("vocal", "vocals", "singing", "voice")),
    "instrumental": (("instrumental",), ("no vocals", "no vocal", "no voice")),
}

GENRE_MIN = 0.25
MOOD_MIN = 0.25
INSTRUMENT_MIN = 0.3
VOCAL_MIN = 0.3
GROUP_LIMIT = 3  # at most this many labels per group, strongest first


def group_scores(
    groups: dict[str, Sources], msd: dict[str, float], mtt: dict[str, float]
) -> dict[str, float]:
    """Each group label's score: the highest probability among its source tags."""
    return {
        label: max(
            [msd.get(tag, 0.0) for tag in msd_tags] + [mtt.get(tag, 0.0) for tag in mtt_tags]
        )
        for label, (msd_tags, mtt_tags) in groups.items()
    }


def strongest(scores: dict[str, float], minimum: float, limit: int = GROUP_LIMIT) -> list[str]:
    """Labels scoring at least `minimum`, strongest first, at most `limit`."""
    ranked = sorted((item for item in scores.items() if item[1] >= minimum), key=lambda i: -i[1])
    return [label for label, _ in ranked[:limit]]
