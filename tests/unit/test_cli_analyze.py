"""`tonestream analyze` on generated files of known tempo, key and mode, run as the CLI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tests.synth import write_track

SECONDS = 15.0
# (file name, bpm, key, mode, format): sharps and naturals, both modes, WAV and FLAC
TRACKS = [
    ("groove.wav", 124.0, "A", "minor", "WAV"),
    ("ballad.flac", 84.0, "D#", "major", "FLAC"),
    ("drive.wav", 150.0, "F#", "minor", "WAV"),
]
ROOT = Path(__file__).resolve().parents[2]


def _tonestream(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    for index, (name, bpm, key, mode, fmt) in enumerate(TRACKS):
        write_track(
            folder / name, format=fmt, bpm=bpm, key=key, mode=mode, seconds=SECONDS, seed=index
        )
    return folder


def test_json_reports_tempo_key_and_mode_and_an_error_for_a_corrupt_file(
    library: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\xff" * 200)
    files = [library / name for name, *_ in TRACKS]

    done = _tonestream("analyze", "--json", *files, corrupt)

    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(TRACKS) + 1, done.stdout
    objects = [msgspec.json.decode(line) for line in lines]
    for result, (name, bpm, key, mode, _) in zip(objects, TRACKS, strict=False):
        assert result["file"] == str(library / name)
        assert result["duration_s"] == pytest.approx(SECONDS, abs=0.05)
        assert result["tempo_bpm"] == pytest.approx(bpm, rel=0.04)
        assert (result["key"], result["mode"]) == (key, mode)
        assert -30.0 < result["loudness_lufs"] < 0.0
    failure = objects[-1]
    assert failure["file"] == str(corrupt)
    assert failure["error"]
    assert "tempo_bpm" not in failure
    assert "Traceback" not in done.stderr


def test_readable_output_for_a_folder(library: Path) -> None:
    (library / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not audio")  # skipped in folders

    done = _tonestream("analyze", library)

    assert done.returncode == 0, done.stderr
    for name, bpm, key, mode, _ in TRACKS:
        row = next(line for line in done.stdout.splitlines() if name in line).split()
        assert f"{key} {mode}" in " ".join(row)
        assert any(_near(cell, bpm) for cell in row), row
    assert "cover.jpg" not in done.stdout


def _near(cell: str, bpm: float) -> bool:
    try:
        return abs(float(cell) - bpm) <= 0.04 * bpm
    except ValueError:
        return False


def test_a_missing_file_is_one_error_line(tmp_path: Path) -> None:
    done = _tonestream("analyze", tmp_path / "nowhere.wav")

    assert done.returncode == 1
    assert "nowhere.wav" in done.stdout
    assert "No such file" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
