"""CLIP (open-clip) text and image embeddings: the shared space for semantic search.

A track's tag caption (see `audio.semantic_text`), a user's text query and a query image are
all embedded by the same model, so they can be compared by cosine. Weights come from the model
hub (only when downloads are allowed) or a local checkpoint. Without them `try_load_clip` logs
one warning and returns None, and search falls back to keywords — it never crashes and never
waits on network retries. torch and open_clip are imported on first load, not at import time,
and each pool worker loads its own model once.
"""

# ruff: noqa: PLC0415  (torch, open_clip and PIL are imported lazily, on first use, on purpose)

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

NO_WEIGHTS = "none"  # `pretrained` value for randomly initialised weights (shape/plumbing tests)


@functools.cache
def _declare_missing_torchvision_ops() -> Any:
    """Let torchvision import when its compiled ops cannot load (CPU-only torch, CUDA-built ops).

    torchvision registers fake kernels for `nms`/`qnms` at import even without its `_C` library,
    which fails unless the op schemas exist. CLIP never calls them, so declaring the schemas is
    enough. Returns the library handle (cached, so the declarations stay alive) or None when the
    real ops load.
    """
    import importlib.util

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return None
    for compiled in Path(spec.origin).parent.glob("_C.*"):
        try:
            torch.ops.load_library(str(compiled))  # type: ignore[no-untyped-call]
        except OSError:
            continue
        return None
    library = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
    for op in ("nms", "qnms"):
        schema = f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        library.define(schema)  # type: ignore[no-untyped-call]
    return library


@functools.cache
def open_clip_module() -> ModuleType:
    """Import open_clip (and torchvision under it) once per process."""
    _declare_missing_torchvision_ops()
    import open_clip

    module: ModuleType = open_clip
    return module


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """Drop open_clip's own root-logger lines while loading: the outcome is logged once, by us."""
    root = logging.getLogger()

    def keep(record: logging.LogRecord) -> bool:
        return f"{os.sep}open_clip{os.sep}" not in record.pathname

    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _go_offline() -> None:
    """Make the model hub fail fast on a missing model instead of retrying the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # already imported: it read the environment at import time
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


class ClipEmbedder:
    """One loaded CLIP model; embeddings are L2-normalised lists of floats."""

    def __init__(self, name: str, model: Any, tokenizer: Any, preprocess: Any) -> None:
        self.name = name
        self._model = model
        self._tokenizer = tokenizer
        self._preprocess = preprocess

    @classmethod
    def load(cls, model_name: str, pretrained: str) -> ClipEmbedder:
        """`pretrained`: a hub tag, a local checkpoint path, or "none" (random weights)."""
        open_clip = open_clip_module()
        import torch

        torch.set_num_threads(1)  # one model per pool process; the pool provides the parallelism
        with _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=None if pretrained == NO_WEIGHTS else pretrained
            )
        model.eval()
        tokenizer = open_clip.get_tokenizer(model_name)
        return cls(f"{model_name}/{pretrained}", model, tokenizer, preprocess)

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        """One batch; texts longer than the model's context (77 tokens) are truncated."""
        if not texts:
            return []
        import torch

        with torch.inference_mode():
            embedded = self._model.encode_text(self._tokenizer(texts), normalize=True)
        vectors: list[list[float]] = embedded.tolist()
        return vectors

    def embed_image(self, data: bytes) -> list[float]:
        """Embed an encoded image (PNG, JPEG, …); ValueError if it cannot be decoded."""
        import torch
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                pixels = self._preprocess(image).unsqueeze(0)
        except (OSError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is OSError
            raise ValueError(f"not a decodable image: {exc}") from exc
        with torch.inference_mode():
            embedded = self._model.encode_image(pixels, normalize=True)
        vector: list[float] = embedded[0].tolist()
        return vector


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:400] if lines else 'no detail'}"


def try_load_clip(
    model_name: str, pretrained: str, *, allow_download: bool = False
) -> ClipEmbedder | None:
    """The embedder, or None (with one warning) when its weights cannot be had; never hangs."""
    if not allow_download:
        _go_offline()
    started = time.perf_counter()
    try:
        embedder = ClipEmbedder.load(model_name, pretrained)
    except Exception as exc:  # noqa: BLE001 - any failure to get weights degrades to keywords
        log.warning(
            f"semantic search unavailable: CLIP weights for {model_name}/{pretrained} could not "
            f"be loaded ({_reason(exc)}); text search falls back to keywords",
            model=model_name,
            pretrained=pretrained,
            allow_download=allow_download,
        )
        return None
    log.info(
        "clip model loaded", model=embedder.name, load_s=round(time.perf_counter() - started, 2)
    )
    return embedder
