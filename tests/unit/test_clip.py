"""CLIP plumbing with random weights (no weights can be downloaded here) and the fast fallback."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import structlog
from PIL import Image

from handlers.embedding.audio import semantic_text
from handlers.embedding.clip import NO_WEIGHTS, ClipEmbedder, open_clip_module, try_load_clip
from schemas.payloads import SEMANTIC_VECTOR_DIM, Features, Tags

MODEL = "ViT-B-32"


@pytest.fixture(scope="module")
def embedder() -> ClipEmbedder:
    return ClipEmbedder.load(MODEL, NO_WEIGHTS)


@pytest.fixture
def offline_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """try_load_clip switches the process to offline mode; undo that after the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def png(width: int, height: int) -> bytes:
    image = Image.new("RGBA", (width, height), (200, 30, 30, 255))
    image.paste((20, 40, 220, 128), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, handlers.embedding.clip; sys.exit('torch' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_texts_embed_to_unit_vectors(embedder: ClipEmbedder) -> None:
    vectors = embedder.embed_texts(
        ["calm ambient piano", "aggressive metal drums", "calm ambient piano"]
    )
    assert [len(v) for v in vectors] == [SEMANTIC_VECTOR_DIM] * 3
    assert all(math.isclose(norm(v), 1.0, rel_tol=1e-5) for v in vectors)
    assert vectors[0] != vectors[1]
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-6)
    assert embedder.embed_texts([]) == []
    assert embedder.name == "ViT-B-32/none"


def test_image_embeds_to_a_unit_vector(embedder: ClipEmbedder) -> None:
    vector = embedder.embed_image(png(64, 40))
    assert len(vector) == SEMANTIC_VECTOR_DIM
    assert math.isclose(norm(vector), 1.0, rel_tol=1e-5)


def test_undecodable_image_is_a_value_error(embedder: ClipEmbedder) -> None:
    with pytest.raises(ValueError, match="not a decodable image"):
        embedder.embed_image(b"this is not an image")


@pytest.mark.parametrize(
    "long_description",
    [
        "Lush, slow-building post-rock: shimmering guitars (delay-soaked), " * 20,
        "Anachronistic polyrhythmic ethnomusicological juxtapositions " * 20,
        "Remix 2024 at 128.5 BPM, catalogue no. 12345678901234567890; " * 20,
    ],
)
def test_semantic_text_fits_the_clip_context(long_description: str) -> None:
    tokenizer = open_clip_module().get_tokenizer(MODEL)
    tags = Tags(
        mood=["melancholic", "dreamy", "uplifting"],
        genre=["post-rock", "ambient", "shoegaze"],
        energy="medium",
        brightness="balanced",
        tempo_class="moderate",
        description=long_description,
    )
    features = Features(
        **{name: 0.0 for name in Features.__struct_fields__ if name not in {"key", "mode"}}
        | {"mfcc_mean": [], "mfcc_std": [], "chroma_mean": [], "chroma_std": []},
        key="C#",
        mode="minor",
    )
    tokens = tokenizer([semantic_text(tags, features)])[0]
    assert int((tokens != 0).sum()) < 77  # below the context length: nothing was cut off


@pytest.mark.usefixtures("offline_restored")
def test_unavailable_hub_weights_give_none_quickly() -> None:
    started = time.perf_counter()
    with structlog.testing.capture_logs() as logs:
        assert try_load_clip(MODEL, "laion2b_s34b_b79k") is None
    assert time.perf_counter() - started < 20
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert logs[0]["event"].startswith(
        "semantic search unavailable: CLIP weights for ViT-B-32/laion2b_s34b_b79k"
    )
    assert logs[0]["event"].endswith("text search falls back to keywords")


@pytest.mark.usefixtures("offline_restored")
def test_missing_local_checkpoint_gives_none(tmp_path: Path) -> None:
    assert try_load_clip(MODEL, str(tmp_path / "missing.safetensors")) is None
