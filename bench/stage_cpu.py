"""The decode and features pool jobs timed by CPU time, run inside a pool worker.

A module of its own so that the worker importing it loads only what those two stages' jobs load
(the benchmark's own modules pull in the whole system), and its peak RSS is theirs alone.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from handlers.decode.core import decode_to_analysis
from handlers.jobs import analyse_file


def peak_rss_mb() -> float:
    """This process's peak RSS since it was exec'd (VmHWM; ru_maxrss would include the parent's
    RSS at fork time)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stage_cpu(path: str) -> tuple[float, float, float]:
    """CPU seconds of the decode job and of the features job on `path` (what the two stages run
    in a worker), and the worker's peak RSS so far in MB."""
    with tempfile.TemporaryDirectory(prefix="tonestream-stage-cpu-") as tmp:
        analysis = str(Path(tmp) / "analysis.flac")
        began = time.process_time()
        decoded = decode_to_analysis(path, analysis)
        decoded_at = time.process_time()
        analyse_file(analysis, decoded.loudness)
        finished = time.process_time()
    return decoded_at - began, finished - decoded_at, peak_rss_mb()
