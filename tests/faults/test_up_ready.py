"""`tonestream up` answers on its port only once the system can serve: the admin credentials a
client reads exist before the first /health or /ready answer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cli.credentials import credentials_path
from streams.server import free_port


def _answers(url: str, timeout_s: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_credentials_exist_before_the_gateway_answers(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, "TONESTREAM_CLIP_ENABLED": "false", "TONESTREAM_WORKERS": "1"}
    with (tmp_path / "up.log").open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--data", str(data), "--port", str(port)],
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"http://127.0.0.1:{port}/health"):
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "up did not answer in 90 s"
            time.sleep(0.005)
        assert credentials_path(data).exists()  # at the first answer, not later
        # ready at once, however slowly a busy machine answers its first checks
        assert _answers(f"http://127.0.0.1:{port}/ready", timeout_s=15)
    finally:
        up.send_signal(signal.SIGTERM)  # `up` alone: it stops its children in order
        code = up.wait(timeout=90)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)  # anything left of the group
    assert code == 0, (tmp_path / "up.log").read_text()
