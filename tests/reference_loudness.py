"""FFmpeg's `ebur128` filter (libavfilter, inside the `av` wheel) as the reference loudness meter.

Tests compare Tonestream's meter with it on the same samples: the filter graph is fed planar float
frames with the given channel layout, and the final frame's `lavfi.r128.*` metadata is the
programme's integrated loudness, loudness range and true peak.
"""

from __future__ import annotations

import math

import av
import av.filter
import numpy as np
import numpy.typing as npt
from msgspec import Struct

_FRAME = 4096


class Reference(Struct, frozen=True):
    integrated_lufs: float
    range_lu: float
    true_peak_dbtp: float


def ebur128(samples: npt.NDArray[np.floating], sample_rate: int, layout: str) -> Reference:
    """Measure planar `samples` (channels, frames) with FFmpeg's ebur128 filter (peak=true)."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(sample_rate=sample_rate, format="fltp", layout=layout)
    meter = graph.add("ebur128", "peak=true:metadata=1:framelog=quiet")
    sink = graph.add("abuffersink")
    source.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    planar = np.ascontiguousarray(samples, dtype=np.float32)
    last: dict[str, str] = {}

    def drain() -> None:
        nonlocal last
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            if "lavfi.r128.true_peak" in frame.metadata:  # frames after the meter's flush have none
                last = dict(frame.metadata)

    for start in range(0, planar.shape[1], _FRAME):
        chunk = np.ascontiguousarray(planar[:, start : start + _FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    peak = float(last["lavfi.r128.true_peak"])
    return Reference(
        integrated_lufs=float(last["lavfi.r128.I"]),
        range_lu=float(last["lavfi.r128.LRA"]),
        true_peak_dbtp=20 * math.log10(peak) if peak > 0 else -math.inf,
    )
