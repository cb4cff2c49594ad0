"""The musicnn core: the checkpoint reader, the pinned weights, the front end and the models on
generated audio (real instruments from a SoundFont), with real assertions about what they hear."""

from __future__ import annotations

import itertools
import shutil
import struct
from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt
import pytest

from handlers.understanding.bundle import DATA_SHARD, TABLE_MAGIC, BundleError, read_bundle
from handlers.understanding.core import listen
from handlers.understanding.melspec import (
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    log_mel_patches,
    mel_filterbank,
    patch_starts,
)
from handlers.understanding.weights import (
    MODELS,
    WeightsUnavailableError,
    load_weights,
    package_dir,
)
from schemas.payloads import TagScores
from tests.styles import STYLES, render_style

RATE = 22050

# -- a tiny tensor bundle, written here byte by byte (no TensorFlow) ----------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def _entry(dtype: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    return (
        _field(1, 0, dtype)
        + _field(2, 2, dims)
        + (_field(4, 0, offset) if offset else b"")
        + _field(5, 0, size)
        + b"\x35\x00\x00\x00\x00"  # crc32c (fixed32, not checked by the reader)
    )


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block with prefix-compressed keys and one restart point."""
    out = bytearray()
    previous = b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        out += key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1)


def write_bundle(directory: Path, tensors: dict[str, npt.NDArray[np.generic]]) -> None:
    dtypes = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3}
    data = bytearray()
    entries = [(b"", _field(1, 0, 1))]  # BundleHeaderProto: num_shards = 1
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).tobytes()
        entries.append(
            (
                name.encode(),
                _entry(dtypes[tensors[name].dtype], tensors[name].shape, len(data), len(raw)),
            )
        )
        data += raw
    table = bytearray()

    def append_block(block: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(block))
        table.extend(block + b"\x00" + b"\x00" * 4)  # no compression, crc not checked
        return handle

    data_handle = append_block(_block(entries))
    meta_handle = append_block(_block([]))
    index_handle = append_block(_block([(entries[-1][0], data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".index").write_bytes(bytes(table) + footer)
    (directory / DATA_SHARD).write_bytes(bytes(data))


def test_reader_returns_the_tensors_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors: dict[str, npt.NDArray[np.generic]] = {
        "conv2d/kernel": rng.standard_normal((7, 3, 1, 4)).astype("<f4"),
        "conv2d/bias": rng.standard_normal(4).astype("<f4"),
        "conv2d_1/kernel": rng.standard_normal((2, 2)).astype("<f8"),
        "global_step": np.array(300_000, dtype="<i4"),
    }
    write_bundle(tmp_path / "ckpt", tensors)
    read = read_bundle(tmp_path / "ckpt")
    assert sorted(read) == sorted(tensors)
    for name, value in tensors.items():
        assert read[name].dtype == value.dtype
        assert np.array_equal(read[name], value)


def test_reader_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    write_bundle(tmp_path / "ckpt", {"x": np.zeros(3, dtype="<f4")})
    index = tmp_path / "ckpt" / ".index"
    index.write_bytes(index.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(BundleError, match="magic"):
        read_bundle(tmp_path / "ckpt")


# -- the real weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_wheel_weights_pass_their_sha256_and_have_the_musicnn_shapes(model: str) -> None:
    weights = load_weights(model)
    assert weights["conv2d/kernel"].shape == (7, 38, 1, 204)  # timbral 7 x int(0.4 * 96)
    assert weights["conv2d_1/kernel"].shape == (7, 67, 1, 204)  # timbral 7 x int(0.7 * 96)
    assert weights["conv2d_2/kernel"].shape == (128, 1, 1, 51)  # temporal, 128 frames
    assert weights["conv2d_5/kernel"].shape == (7, 561, 1, 64)  # mid end over the front end
    assert weights["batch_normalization_9/gamma"].shape == (1506,)  # max + mean of 753
    assert weights["dense/kernel"].shape == (1506, 200)
    assert weights["dense_1/kernel"].shape == (200, 50)
    assert 780_000 < sum(w.size for w in weights.values()) < 800_000
    assert all(np.all(np.isfinite(w)) for w in weights.values())


def test_altered_or_missing_weights_are_refused_clearly(tmp_path: Path) -> None:
    root = tmp_path / "musicnn"
    shutil.copytree(package_dir() / "MSD_musicnn", root / "MSD_musicnn")
    data = root / "MSD_musicnn" / DATA_SHARD
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        load_weights("MSD_musicnn", root)
    data.unlink()
    with pytest.raises(WeightsUnavailableError, match="missing"):
        load_weights("MSD_musicnn", root)


# -- the front end ------------------------------------------------------------------------------


def test_mel_filterbank_matches_librosa_slaney() -> None:
    expected = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    assert np.allclose(mel_filterbank(), expected, rtol=1e-4, atol=1e-7)


def test_a_tone_lights_its_mel_band_and_silence_is_zero() -> None:
    seconds = np.arange(SAMPLE_RATE * 4) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * seconds)).astype(np.float32)
    patches = log_mel_patches(tone, max_patches=1)
    assert patches.shape == (1, PATCH_FRAMES, N_MELS)
    bin_1k = round(1000.0 * N_FFT / SAMPLE_RATE)
    assert np.all(patches[0].argmax(axis=1) == mel_filterbank()[:, bin_1k].argmax())
    assert patches[0].max() > 3.0  # log10(10000 · power + 1) of a loud tone
    silence = log_mel_patches(np.zeros(SAMPLE_RATE * 4, dtype=np.float32), max_patches=2)
    assert silence.shape[0] == 1
    assert np.all(silence == 0.0)


def test_patches_are_evenly_spaced_and_short_audio_is_repeated() -> None:
    minute = np.zeros(SAMPLE_RATE * 60, dtype=np.float32)
    starts = patch_starts(minute.size, 4)
    assert len(starts) == 4
    assert starts[0] == 0
    assert len({b - a for a, b in itertools.pairwise(starts)}) <= 2  # hop rounding
    short = np.ones(SAMPLE_RATE, dtype=np.float32)  # 1 s
    assert log_mel_patches(short, max_patches=4).shape == (1, PATCH_FRAMES, N_MELS)
    # 57.03 s (a trimmed MP3 re-encode): the last start once rounded up past the end
    odd = np.zeros(912_516 - N_FFT, dtype=np.float32)
    assert log_mel_patches(odd, max_patches=4).shape == (4, PATCH_FRAMES, N_MELS)


# -- the models on generated audio ----------------------------------------------------------------


def _style(name: str) -> int:
    return next(i for i, style in enumerate(STYLES) if style.name == name)


@pytest.fixture(scope="module")
def piano_and_drums() -> tuple[TagScores, TagScores]:
    piano = render_style(STYLES[_style("solo piano")], seed=0, seconds=15.0, sample_rate=RATE)
    drums = render_style(STYLES[_style("drum loop")], seed=0, seconds=15.0, sample_rate=RATE)
    return listen(piano, RATE, max_patches=4), listen(drums, RATE, max_patches=4)


def _top(scores: TagScores, n: int) -> list[str]:
    ranked = sorted([*scores.msd.items(), *scores.mtt.items()], key=lambda item: -item[1])
    return [tag for tag, _ in ranked[:n]]


def test_solo_piano_and_a_drum_loop_get_clearly_different_top_tags(
    piano_and_drums: tuple[TagScores, TagScores],
) -> None:
    piano, drums = piano_and_drums
    assert _top(piano, 1) == ["piano"]
    assert {"drums", "beat", "beats", "techno", "electronic"} & set(_top(drums, 3))
    assert piano.mtt["piano"] > 0.5 > drums.mtt["piano"] + 0.3
    beat = max(drums.mtt["drums"], drums.mtt["beat"])
    assert beat > 0.25
    assert beat > 3 * max(piano.mtt["drums"], piano.mtt["beat"])
    assert len(piano.embedding) == len(drums.embedding) == 400
    assert piano.patches == drums.patches == 4
