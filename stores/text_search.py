"""Offline text search that understands music words: a query becomes terms, each term a score.

Without CLIP, text is matched against two things a track has (stores.catalog writes both):
- its words, in the `keywords` array that a multikey index serves: plain words of the file name,
  its file tags, labels and description, plus `=word` for the words of what a person named it —
  title, artist, album, album artist, the file's genre tag and the file name;
- its tag concepts: `concepts` maps each concept (handlers.tagging.vocabulary: the models' label
  groups, a few single model tags, the measured tempo/energy/brightness classes) to a score from
  0 to 1, and `keywords` carries `~concept:b` for each bucket b in BUCKETS it reaches.

A query is split into terms, longest phrase first: a music phrase ("female vocal", "calm",
"strings", "downtempo") names one or more concepts through SYNONYMS; any other word is a
metadata word. A term's score for a track:
- music phrase: the best of its concepts' scores, or 1.0 when the phrase is in the track's
  metadata (a file tagged genre "Jazz" is jazz, whatever the models heard);
- other word: 1.0 when it is a metadata word (`=word`), 0.5 when it is only in the
  description or labels, else 0.
A track's score is the mean of its terms' scores, so "calm piano" puts a track that is both
above one that is very much only one. Candidates are found through the index and the server
scores, sorts and cuts them: no document is read into Python to rank it.

The search first reads the tracks with a term of at least 0.4: a track whose score reaches
0.4 has such a term. When enough of them score at least 0.4, no unread track can outrank them
and the search stops; otherwise it reads every candidate (any term at least 0.1). A common word
thus reads the tracks strong in it, not every track where the models heard a trace of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.tagging.vocabulary import CONCEPTS

Document = dict[str, Any]

BUCKETS = (0.4, 0.1)  # search rounds, strongest first; below the last, not a candidate
KEEP_MIN = 0.02  # concept scores below this are not stored (they would add ~nothing)
METADATA_WORD = 1.0
OTHER_WORD = 0.5
META_PREFIX = "="
CONCEPT_PREFIX = "~"
MAX_PHRASE_WORDS = 3

# query phrase → the concepts it means (besides every concept's own name, which means itself)
SYNONYMS: dict[str, tuple[str, ...]] = {
    # moods
    "mellow": ("mellow", "soft", "chill"),
    "peaceful": ("calm", "mellow"),
    "relaxing": ("calm", "chill", "mellow"),
    "relaxed": ("calm", "chill", "mellow"),
    "tranquil": ("calm",),
    "serene": ("calm",),
    "gentle": ("calm", "soft"),
    "chilled": ("chill",),
    "chillout": ("chill",),
    "downtempo": ("chill", "slow"),
    "lounge": ("chill", "easy listening"),
    "melancholic": ("sad",),
    "melancholy": ("sad",),
    "gloomy": ("sad",),
    "joyful": ("happy",),
    "cheerful": ("happy",),
    "upbeat": ("happy", "energetic"),
    "energy": ("energetic", "high energy"),
    "intense": ("energetic", "high energy"),
    "powerful": ("energetic", "high energy"),
    "romantic": ("sexy", "beautiful"),
    "sensual": ("sexy",),
    "weird": ("strange",),
    "ethereal": ("ambient", "beautiful"),
    "atmospheric": ("ambient",),
    # tempo
    "uptempo": ("fast",),
    "up tempo": ("fast",),
    "quick": ("fast",),
    "down tempo": ("chill", "slow"),
    "moderate": ("moderate tempo",),
    "mid tempo": ("moderate tempo",),
    "midtempo": ("moderate tempo",),
    # instruments
    "string": ("strings",),
    "orchestral": ("strings", "classical"),
    "orchestra": ("strings", "classical"),
    "fiddle": ("violin",),
    "keys": ("piano",),
    "keyboard": ("piano",),
    "drum": ("drums",),
    "percussion": ("drums",),
    "beat": ("drums",),
    "beats": ("drums",),
    "guitars": ("guitar",),
    "synths": ("synth",),
    "synthesizer": ("synth",),
    # voice
    "female": ("female vocals",),
    "female vocal": ("female vocals",),
    "female voice": ("female vocals",),
    "female singer": ("female vocals",),
    "woman": ("female vocals",),
    "male": ("male vocals",),
    "male vocal": ("male vocals",),
    "male voice": ("male vocals",),
    "male singer": ("male vocals",),
    "vocal": ("singing", "female vocals", "male vocals", "choir"),
    "vocals": ("singing", "female vocals", "male vocals", "choir"),
    "voice": ("singing", "female vocals", "male vocals", "choir"),
    "singer": ("singing", "female vocals", "male vocals"),
    "sung": ("singing", "female vocals", "male vocals", "choir"),
    "choral": ("choir",),
    "no vocals": ("instrumental",),
    "without vocals": ("instrumental",),
    # genres
    "hiphop": ("hip hop",),
    "rap": ("hip hop",),
    "rnb": ("soul",),
    "jazzy": ("jazz",),
    "electronica": ("electronic",),
    "edm": ("electronic", "dance"),
    "heavy": ("metal",),
    "orchestrated": ("classical", "strings"),
    "sixties": ("60s",),
    "seventies": ("70s",),
    "eighties": ("80s",),
    "nineties": ("90s",),
    "2000s": ("00s",),
}


def _split(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[^\W_]+", text.lower()))


def _phrases() -> dict[tuple[str, ...], tuple[str, ...]]:
    table: dict[tuple[str, ...], tuple[str, ...]] = {_split(c): (c,) for c in CONCEPTS}
    table.update({_split(phrase): concepts for phrase, concepts in SYNONYMS.items()})
    return table


PHRASES = _phrases()


def slug(concept: str) -> str:
    """The concept's field name under `concepts` (no spaces or dots in a stored key)."""
    return concept.replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Term:
    """One part of a query: a music phrase (its concepts) or a plain word (no concepts)."""

    words: tuple[str, ...]
    concepts: tuple[str, ...] = ()

    def describe(self) -> str:
        phrase = " ".join(self.words)
        if not self.concepts:
            return f"{phrase} → file name and tags"
        return f"{phrase} → {'/'.join(self.concepts)}"


# words that say nothing about which track is meant ("calm piano music" = "calm piano")
STOPWORDS = frozenset(
    {"a", "an", "and", "by", "for", "in", "of", "or", "some", "the", "to", "with"}
    | {"music", "song", "songs", "track", "tracks", "tune", "tunes"}
)


def parse(words: Sequence[str]) -> list[Term]:
    """Terms of a query's words (lower case, in order), longest known phrase first; stop words
    are dropped unless the query has nothing else."""
    words = [word for word in words if word not in STOPWORDS] or list(words)
    terms: list[Term] = []
    at = 0
    while at < len(words):
        for size in range(min(MAX_PHRASE_WORDS, len(words) - at), 0, -1):
            phrase = tuple(words[at : at + size])
            if phrase in PHRASES:
                terms.append(Term(phrase, PHRASES[phrase]))
                at += size
                break
        else:
            terms.append(Term((words[at],)))
            at += 1
    return list(dict.fromkeys(terms))


def _bucket_token(concept: str, bucket: float) -> str:
    return f"{CONCEPT_PREFIX}{slug(concept)}:{bucket:g}"


def candidate_tokens(terms: Sequence[Term], bucket: float) -> list[str]:
    """The `keywords` tokens of tracks with a term scoring at least `bucket` (a BUCKETS value)."""
    tokens: list[str] = []
    for term in terms:
        tokens += [META_PREFIX + word for word in term.words]  # METADATA_WORD: always enough
        if term.concepts:
            tokens += [_bucket_token(concept, bucket) for concept in term.concepts]
        elif bucket <= OTHER_WORD:
            tokens.append(term.words[0])
    return list(dict.fromkeys(tokens))


def _has(token: str) -> Document:
    return {"$in": [token, {"$ifNull": ["$keywords", []]}]}


def _all_meta(words: tuple[str, ...]) -> Document:
    return {"$and": [_has(META_PREFIX + word) for word in words]}


def term_score(term: Term) -> Document:
    """The server-side expression of one term's score (see the module docstring)."""
    if not term.concepts:
        word = term.words[0]
        return {
            "$cond": [
                _has(META_PREFIX + word),
                METADATA_WORD,
                {"$cond": [_has(word), OTHER_WORD, 0.0]},
            ]
        }
    scores: list[Any] = [
        {"$ifNull": [f"$concepts.{slug(concept)}", 0.0]} for concept in term.concepts
    ]
    scores.append({"$cond": [_all_meta(term.words), METADATA_WORD, 0.0]})
    return {"$max": scores}


def score_expression(terms: Sequence[Term]) -> Document:
    """The mean of the terms' scores."""
    return {"$divide": [{"$add": [term_score(term) for term in terms]}, float(len(terms))]}


def stored_concepts(scores: dict[str, float]) -> dict[str, float]:
    """The `concepts` field: slugged, rounded, without the negligible ones."""
    return {slug(c): round(s, 4) for c, s in scores.items() if s >= KEEP_MIN}


def concept_tokens(scores: dict[str, float]) -> list[str]:
    """`~concept:b` for every bucket b each concept's score reaches."""
    return [_bucket_token(c, b) for c, s in scores.items() for b in BUCKETS if s >= b]
