"""Learned similarity on a library of generated tracks in distinct styles, through the real
vector index: "more like this" must rank tracks of the same style first.

Each track is rendered (tests.styles: real SoundFont instruments; variants differ in tempo, key,
melody and velocities), heard by the musicnn core, turned into the pipeline's `audio` vector and
upserted into Qdrant (local mode, the embedded default) exactly as the indexing stage does; the
queries are the index's own nearest-neighbour searches, excluding the track itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.embedding.audio import audio_vector
from handlers.understanding.core import listen
from schemas.settings import Settings
from stores.vectors import AUDIO, VectorIndex
from tests.styles import STYLES, render_style

TENANT = "alice"
RATE = 22050
VARIANTS = 3


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[tuple[VectorIndex, dict[str, list[float]]]]:
    index = await VectorIndex.open(Settings(data_dir=str(tmp_path), qdrant_collection="tracks"))
    vectors: dict[str, list[float]] = {}
    try:
        for style in STYLES:
            for seed in range(VARIANTS):
                audio = render_style(style, seed=seed, seconds=8.0, sample_rate=RATE)
                track_id = f"{style.name}:{seed}"
                vectors[track_id] = audio_vector(listen(audio, RATE, max_patches=2))
                await index.upsert(TENANT, track_id, vectors[track_id], None, {})
        yield index, vectors
    finally:
        await index.close()


async def test_a_library_of_styles_ranks_same_style_tracks_first(
    library: tuple[VectorIndex, dict[str, list[float]]],
) -> None:
    index, vectors = library
    assert len(vectors) >= 20
    first_right = top_two_right = 0
    for track_id, vector in vectors.items():
        style = track_id.split(":")[0]
        hits = await index.search(TENANT, AUDIO, vector, 2, exclude_track_id=track_id)
        styles = [hit.track_id.split(":")[0] for hit in hits]
        assert len(styles) == 2
        first_right += styles[0] == style
        top_two_right += sum(found == style for found in styles)
    # chance: 2 of the other 35 tracks share the style (6 %)
    assert first_right / len(vectors) >= 0.9
    assert top_two_right / (2 * len(vectors)) >= 0.8
