"""`just bench --sections loudness`: Tonestream's loudness against FFmpeg's `ebur128` (libebur128's
algorithm in libavfilter) on the same audio.

Two sets: the generated test signals (stereo correlated/decorrelated/anti-phase, mono, 5.1, 44.1 to
96 kHz, gated silence), measured by the meter directly; and real encodes (AAC, ALAC, Opus, Vorbis,
MP3, FLAC) decoded by the decode stage, each compared with the reference run on PyAV's own decode
of the same file. Reported: the largest deviation per measure and a row per case.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.report import markdown_table, verdict
from handlers.decode.core import decode_to_analysis
from handlers.decode.loudness import LoudnessMeter, channel_weights
from tests.encode import encode
from tests.reference_loudness import decode_with_pyav, ebur128, programme, signals

_ENCODES = [
    ("m4a-aac", 44100, 2),
    ("m4a-alac", 96000, 2),
    ("opus", 48000, 2),
    ("opus", 48000, 6),
    ("vorbis", 44100, 2),
    ("mp3", 44100, 2),
    ("flac", 48000, 6),
    ("wav-s24", 96000, 2),
]
_TARGETS = {"integrated": 0.1, "true_peak": 0.2, "range": 0.5}


def _row(name: str, ours: Any, reference: Any, seconds: float) -> dict[str, Any]:
    return {
        "case": name,
        "integrated": [ours.integrated_lufs, round(reference.integrated_lufs, 2)],
        "true_peak": [ours.true_peak_dbtp, round(reference.true_peak_dbtp, 2)],
        "range": [ours.range_lu, round(reference.range_lu, 2)],
        "seconds": round(seconds, 3),
    }


def measure_loudness(work: Path, seed: int) -> dict[str, Any]:
    rows = []
    for name, samples, rate, layout in signals():
        began = time.perf_counter()
        meter = LoudnessMeter(
            rate, channel_weights([c.name for c in av.AudioLayout(layout).channels])
        )
        meter.add(samples.astype(np.float32))
        ours = meter.result()
        rows.append(
            _row(
                f"signal: {name}", ours, ebur128(samples, rate, layout), time.perf_counter() - began
            )
        )
    for kind, rate, channels in _ENCODES:
        src = encode(
            work / f"loud-{kind}-{rate}-{channels}",
            1.6 * programme(rate, 20.0, channels, seed),
            rate,
            kind,
        )
        began = time.perf_counter()
        result = decode_to_analysis(str(src), str(work / "loudness-analysis.flac"))
        spent = time.perf_counter() - began
        samples, decoded_rate, layout = decode_with_pyav(src)
        rows.append(
            _row(
                f"{kind} {rate / 1000:g} kHz {channels} ch",
                result.loudness,
                ebur128(samples, decoded_rate, layout),
                spent,
            )
        )
    worst = {
        measure: round(max(abs(row[measure][0] - row[measure][1]) for row in rows), 3)
        for measure in _TARGETS
    }
    return {"cases": rows, "worst": worst}


def loudness_table(result: dict[str, Any]) -> str:
    rows = [
        (
            row["case"],
            *(f"{row[m][0]:.2f} / {row[m][1]:.2f}" for m in ("integrated", "true_peak", "range")),
        )
        for row in result["cases"]
    ]
    worst = result["worst"]
    rows.append(
        (
            "**largest deviation**",
            *(
                f"{worst[m]:.2f} (±{limit}: {verdict(worst[m] <= limit)})"
                for m, limit in _TARGETS.items()
            ),
        )
    )
    header = ("case", "integrated LUFS, ours / ebur128", "true peak dBTP", "range LU")
    return markdown_table(header, rows)
