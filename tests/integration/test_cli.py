"""The `tonestream` command end to end: `up` as a child process on a temp data dir and a free
port, the client commands against it with no configuration but the data dir (they find the URL
and API key `up` saved), a restart that keeps everything, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psutil
import pytest

from streams.server import free_port
from tests.synth import write_track

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 12.0
# (file name, bpm, key, mode, format)
TRACKS = [
    ("sunrise-anthem.wav", 128.0, "C", "major", "WAV"),
    ("night-drive.flac", 96.0, "A", "minor", "FLAC"),
    ("slow-waltz.wav", 84.0, "F#", "minor", "WAV"),
]
CORRUPT = "broken.wav"
COPY = "copy-of-sunrise.wav"  # the same bytes as TRACKS[0] under another name
START_TIMEOUT_S = 120.0


class Up:
    """`tonestream up` in a child process; `stop()` sends SIGINT as Ctrl-C would."""

    def __init__(self, data: Path, port: int, env: dict[str, str]) -> None:
        self.data, self.port, self.env = data, port, env
        self.log = data.parent / f"up-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up", "--data", str(data), "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the test's own Ctrl-C does not reach it
            )
        self._wait_ready()
        self.children = psutil.Process(self.process.pid).children(recursive=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"tonestream up exited with {self.process.returncode}:\n{self.output}")
            if (self.data / "credentials.json").exists() and self._healthy():
                return
            time.sleep(0.25)
        pytest.fail(f"tonestream up did not start in {START_TIMEOUT_S:.0f} s:\n{self.output}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).is_success
        except httpx.HTTPError:
            return False

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=60) == 0, self.output
        _, alive = psutil.wait_procs(self.children, timeout=10)
        assert not alive, f"left running: {[child.cmdline() for child in alive]}"

    def kill(self) -> None:
        """Clean-up after a failed test: the whole session, whatever state it is in."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for child in self.children:
            if child.is_running():
                child.kill()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    (folder / "more").mkdir(parents=True)
    for index, (name, bpm, key, mode, fmt) in enumerate(TRACKS):
        where = folder / "more" if index == 2 else folder  # folders are walked recursively
        write_track(where / name, format=fmt, bpm=bpm, key=key, mode=mode, seconds=SECONDS)
    first = (folder / TRACKS[0][0]).read_bytes()
    (folder / COPY).write_bytes(first)
    (folder / CORRUPT).write_bytes(first[:2000])  # a WAV header promising far more than follows
    return folder


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TONESTREAM_")}
    return clean | {
        "TONESTREAM_DATA_DIR": str(tmp_path / "data"),
        "TONESTREAM_CLIP_ENABLED": "false",
        "TONESTREAM_LOG_FORMAT": "json",
    }


@pytest.fixture
def running(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Up]]:
    """Started `up`s (a test appends to it); any still running at the end are killed."""
    ups: list[Up] = []
    yield ups
    for up in ups:
        up.kill()


def _tonestream(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in output.splitlines()]


def _statuses(env: dict[str, str]) -> dict[str, str]:
    listed = _tonestream(env, "tracks", "--json")
    assert listed.returncode == 0, listed.stderr
    return {track["track_id"]: track["status"] for track in _json_lines(listed.stdout)}


def test_ingest_search_restart(
    tmp_path: Path, library: Path, env: dict[str, str], running: list[Up]
) -> None:
    port = free_port()
    data = Path(env["TONESTREAM_DATA_DIR"])
    running.append(Up(data, port, env))

    ingest = _tonestream(env, "ingest", "--wait", "--json", library)

    assert ingest.returncode == 1, ingest.stderr  # the corrupt file failed
    results = {Path(r["path"]).name: r for r in _json_lines(ingest.stdout)}
    assert set(results) == {name for name, *_ in TRACKS} | {CORRUPT, COPY}
    assert results[CORRUPT]["status"] == "failed"
    assert results[CORRUPT]["reason"]
    ids = {name: results[name]["track_id"] for name, *_ in TRACKS}
    for name, *_ in TRACKS:
        assert results[name]["status"] == "indexed", results[name]
        assert results[name]["reason"] is None
    same_bytes = [results[COPY], results[TRACKS[0][0]]]  # uploaded once, reported for both
    assert {(r["track_id"], r["status"]) for r in same_bytes} == {(ids[TRACKS[0][0]], "indexed")}
    assert sorted(r["duplicate"] for r in same_bytes) == [False, True]

    assert _statuses(env) == dict.fromkeys(ids.values(), "indexed")

    shown = _tonestream(env, "show", ids["night-drive.flac"], "--json")
    features = msgspec.json.decode(shown.stdout)["features"]
    assert features["tempo_bpm"] == pytest.approx(96.0, rel=0.04)
    assert (features["key"], features["mode"]) == ("A", "minor")

    similar = _tonestream(env, "similar", ids["sunrise-anthem.wav"], "--k", "5", "--json")
    assert similar.returncode == 0, similar.stderr
    neighbours = {hit["track_id"] for hit in msgspec.json.decode(similar.stdout)["results"]}
    assert neighbours == {ids["night-drive.flac"], ids["slow-waltz.wav"]}

    found = _tonestream(env, "search", "sunrise", "--json")
    assert found.returncode == 0, found.stderr
    answer = msgspec.json.decode(found.stdout)
    assert answer["text_mode"] == "keyword"  # no CLIP weights here
    assert answer["results"][0]["track_id"] == ids["sunrise-anthem.wav"]

    by_tempo = _tonestream(env, "tracks", "--sort=-bpm", "--limit", "0", "--json")
    fastest_first = ["sunrise-anthem.wav", "night-drive.flac", "slow-waltz.wav"]
    assert [track["track_id"] for track in _json_lines(by_tempo.stdout)] == [
        ids[name] for name in fastest_first
    ]

    table = _tonestream(env, "tracks", "--key", "F#")  # what a person sees
    assert "slow-waltz.wav" in table.stdout
    assert "sunrise-anthem.wav" not in table.stdout

    running[0].stop()
    down = _tonestream(env, "tracks")
    assert down.returncode == 1
    assert down.stderr.strip() == (
        f"tonestream: cannot reach the gateway at http://127.0.0.1:{port}"
        " — is `tonestream up` running?"
    )

    running.append(Up(data, port, env))
    assert _statuses(env) == dict.fromkeys(ids.values(), "indexed")
    again = _tonestream(env, "ingest", "--wait", "--json", library / "sunrise-anthem.wav")
    assert again.returncode == 0, again.stderr
    [result] = _json_lines(again.stdout)
    assert result["duplicate"] is True
    assert (result["track_id"], result["status"]) == (ids["sunrise-anthem.wav"], "indexed")

    assert _tonestream(env, "delete", ids["sunrise-anthem.wav"]).returncode == 0
    gone = _tonestream(env, "show", ids["sunrise-anthem.wav"])
    assert (gone.returncode, gone.stderr.strip()) == (
        1,
        f"tonestream: no track {ids['sunrise-anthem.wav']}",
    )
    running[1].stop()
