"""The decode and features pool jobs timed by CPU time, in a process of their own.

`python -m bench.stage_cpu FILE…` runs the two jobs on each file, one after another, the way a
pool worker runs them (single-threaded numerics), and prints their CPU seconds and the process's
peak RSS as JSON. A process of its own, because a pool worker spawned by the benchmark would
re-import the benchmark's main module (torch and every section) and its peak RSS would not be
the jobs'; this one imports only what the worker needs for these two jobs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would count the parent's RSS at fork time)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    for name in _SINGLE_THREAD_ENV:  # as handlers.pool sets for its workers
        os.environ.setdefault(name, "1")
    # imported after the environment is set, as in a pool worker
    from handlers.decode.core import decode_to_analysis  # noqa: PLC0415
    from handlers.jobs import analyse_file  # noqa: PLC0415

    runs = []
    with tempfile.TemporaryDirectory(prefix="tonestream-stage-cpu-") as tmp:
        analysis = str(Path(tmp) / "analysis.flac")
        for path in sys.argv[1:]:
            began = time.process_time()
            decoded = decode_to_analysis(path, analysis)
            decoded_at = time.process_time()
            analyse_file(analysis, decoded.loudness)
            runs.append((decoded_at - began, time.process_time() - decoded_at, peak_rss_mb()))
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
