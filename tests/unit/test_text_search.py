"""Music words: how a query splits into terms, what a track's tags score per concept, and the CLI
flags and `show` lines of the labels."""

from __future__ import annotations

import msgspec
import pytest

from cli.commands.common import filter_params
from cli.main import build_parser
from cli.render import top_model_tags
from handlers.tagging.heuristic import heuristic_tags
from handlers.tagging.vocabulary import CONCEPTS, concept_scores
from stores.catalog_queries import keywords, search_fields
from stores.text_search import PHRASES, SYNONYMS, parse
from tests.factories import make_features, make_scores


def _read(text: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(" ".join(term.words), term.concepts) for term in parse(keywords(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calm piano", [("calm", ("calm",)), ("piano", ("piano",))]),
        ("Female Vocal jazz", [("female vocal", ("female vocals",)), ("jazz", ("jazz",))]),
        ("mellow", [("mellow", ("mellow", "soft", "chill"))]),
        ("strings", [("strings", ("strings",))]),  # the group: strings, violin, cello
        ("fiddle", [("fiddle", ("violin",))]),
        (
            "peaceful downtempo",
            [("peaceful", ("calm", "mellow")), ("downtempo", ("chill", "slow"))],
        ),
        ("drum and bass hip hop", [("drum", ("drums",)), ("bass", ()), ("hip hop", ("hip hop",))]),
        ("very fast", [("very fast", ("very fast",))]),  # the longest phrase wins
        ("the music", [("the", ()), ("music", ())]),  # only stop words: they are the query
        ("songs by quill", [("quill", ())]),
    ],
)
def test_queries_split_into_music_phrases_and_words(
    text: str, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert _read(text) == expected


def test_every_synonym_names_known_concepts() -> None:
    for phrase, concepts in SYNONYMS.items():
        assert set(concepts) <= set(CONCEPTS), phrase
    assert all(set(concepts) <= set(CONCEPTS) for concepts in PHRASES.values())


def test_concept_scores_take_the_best_source_tag_and_measured_classes() -> None:
    scores = make_scores(msd={"female vocalist": 0.4}, mtt={"violin": 0.6, "cello": 0.7})
    tags = heuristic_tags(make_features(tempo_bpm=150.0), scores)
    stored = msgspec.to_builtins(tags)

    concepts = concept_scores(stored)
    fields = search_fields({"filename": "Sonata.flac", "tags": stored})

    assert concepts["strings"] == 0.7  # max of strings, violin, cello
    assert concepts["female vocals"] == 0.4
    assert concepts["fast"] == 1.0  # measured: 150 BPM is "very fast", which is fast
    assert concepts["very fast"] == 1.0
    assert concepts["piano"] == 0.01
    tokens = set(fields["keywords"])
    assert {"~strings:0.4", "~female_vocals:0.4", "~fast:0.4", "=sonata"} <= tokens
    assert "~piano:0.1" not in tokens  # below every bucket
    assert "piano" not in fields["concepts"]  # below what is worth storing
    assert fields["concepts"]["female_vocals"] == 0.4


def test_instrument_and_vocal_flags_become_filters() -> None:
    args = build_parser().parse_args(
        ["tracks", "--instruments", "piano", "--vocals", "female vocals", "--mood", "calm"]
    )
    assert filter_params(args) == {
        "mood": "calm",
        "instruments": "piano",
        "vocals": "female vocals",
    }


def test_show_lists_the_strongest_model_tags_once() -> None:
    scores = {"msd": {"rock": 0.5, "Mellow": 0.2}, "mtt": {"rock": 0.7, "piano": 0.6, "x": 0.0}}
    assert top_model_tags(scores, 3) == [("rock", 0.7), ("piano", 0.6), ("mellow", 0.2)]
