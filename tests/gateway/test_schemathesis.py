"""Schemathesis over the gateway's own OpenAPI document: no request, however odd, gets a 5xx,
and what the gateway answers is what the document says it answers.

The fuzzer is schemathesis' command line run as a child process against the session's live
gateway (its whole plan: examples, coverage, fuzzing and stateful sequences that feed ids from
one response into the next request). A child process, not the pytest plugin, because the gateway
is served on this test's event loop: a synchronous client in the test would stall the server it
calls. Fixed seed, bounded examples per operation, one worker: the same run every time.

Authenticated as a fresh user who owns one indexed track (so downloads, similar tracks and event
streams meet real data), and separately as an admin for the admin routes, on a private system
because replays are real.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import msgspec
import pytest

from schemas.api import UploadAccepted
from tests.gateway.conftest import Gateway, Headers, gateway_settings, running
from tests.integration.kit import wait_until
from tests.synth import write_track

SEED = 20_261_121
MAX_EXAMPLES = 20  # per operation and phase: the whole module takes about 2 min on 2 cores
RUN_TIMEOUT_S = 240.0
# Never a 5xx; and what the gateway answers with a documented status holds: its body schema and
# headers, invalid input refused, unsupported methods refused, deleted resources gone, created
# ones there.
NO_SERVER_ERRORS = (
    "not_a_server_error",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
)
# The document itself: every status and content type the gateway answers is declared, and so is
# which operations need credentials. (`positive_data_acceptance` is left out on purpose: some
# rules cannot be said in the schema at all — an opaque cursor, "at least one search input" —
# so schema-valid requests the gateway rightly refuses would always fail it.)
DOCUMENTED = (
    "status_code_conformance",
    "content_type_conformance",
    "missing_required_header",
    "ignored_auth",
)
# `GET /v1/events` is the per-user SSE stream: it stays open by design and sends a keep-alive
# every second, so no request timeout ends it and it would hold the single fuzzing worker
# forever. It takes no parameters or body to fuzz; it is checked by hand below instead.
ENDLESS = ("--exclude-operation-id", "userEvents")
ADMIN_ONLY = ("--include-tag", "admin")
# The coverage phase is where requests without the Authorization header are tried; stateful
# sequences reach the real track's data (its download and event stream); random fuzzing on top
# would only repeat the same undeclared answers.
DOCUMENT_PHASES = ("--phases", "coverage,stateful")


async def run_schemathesis(
    gateway: Gateway,
    workdir: Path,
    headers: Headers,
    checks: tuple[str, ...],
    *selection: str,
    max_examples: int = MAX_EXAMPLES,
) -> tuple[int, str]:
    """Run `schemathesis run` against the gateway; (exit code, its report)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{gateway.url}/schema/openapi.json",
        "--header",
        f"Authorization: {headers['Authorization']}",
        "--checks",
        ",".join(checks),
        "--seed",
        str(SEED),
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--continue-on-failure",  # report every distinct failure, not only the first one
        "--no-color",
        *selection,
    ]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=workdir,  # no schemathesis.toml of the project's is picked up; reports stay here
        env=os.environ | {"NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        pytest.fail(f"schemathesis ran past {RUN_TIMEOUT_S:.0f} s:\n{output.decode()[-20_000:]}")
    assert process.returncode is not None
    return process.returncode, output.decode()


def _verdict(code: int, report: str) -> str:
    """The report's failures and summary (the part a person needs), for the assertion message."""
    start = report.find("FAILURES")
    return f"schemathesis exited {code}:\n{report[start if start >= 0 else 0 :][-20_000:]}"


async def add_indexed_track(gateway: Gateway, headers: Headers, folder: Path) -> None:
    """Upload a short generated track for the caller and wait until it is indexed."""
    song = write_track(folder / "fuzz.wav", bpm=120, key="C", mode="major", seconds=8)
    response = await gateway.client.post(
        "/v1/tracks",
        content=await asyncio.to_thread(song.read_bytes),
        headers=headers | {"X-Filename": song.name, "Content-Type": "audio/wav"},
    )
    assert response.status_code == 202, response.text
    track_id = msgspec.json.decode(response.content, type=UploadAccepted).track_id

    async def indexed() -> bool:
        answer = await gateway.client.get(f"/v1/tracks/{track_id}", headers=headers)
        return answer.json()["status"] in ("indexed", "failed")

    await wait_until(indexed, timeout_s=120, what=f"track {track_id} to be indexed")


@pytest.fixture
async def fuzz_user(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Headers:
    """A fresh user with one indexed track (per test: a run may well delete it)."""
    _, headers = await gateway.new_user("fuzz")
    await add_indexed_track(gateway, headers, tmp_path_factory.mktemp("fuzz"))
    return headers


async def test_no_request_gets_a_server_error(
    gateway: Gateway, fuzz_user: Headers, tmp_path: Path
) -> None:
    """Every operation as a user (the admin routes answer 403 here, which is fuzzed too)."""
    code, report = await run_schemathesis(gateway, tmp_path, fuzz_user, NO_SERVER_ERRORS, *ENDLESS)
    assert code == 0, _verdict(code, report)


async def test_no_admin_request_gets_a_server_error(tmp_path: Path) -> None:
    """The admin routes past their guard, on a system of their own: the stateful phase takes
    real stage names from `systemStatus` into `replayStage` and really rewinds the consumers,
    which on the shared gateway would push every earlier test's tracks through the pipeline
    again. The private system has one indexed track, so a replay has work to do."""
    async with running(gateway_settings(tmp_path / "system")) as private:
        admin = await private.new_admin()
        await add_indexed_track(private, admin, tmp_path)
        code, report = await run_schemathesis(
            private, tmp_path / "run", admin, NO_SERVER_ERRORS, *ADMIN_ONLY
        )
    assert code == 0, _verdict(code, report)


async def test_the_endless_user_event_stream_opens_and_keeps_alive(gateway: Gateway) -> None:
    """The one operation the fuzzer leaves out, bounded by hand: it answers 200 with an event
    stream and a keep-alive, and 401 without credentials."""
    _, headers = await gateway.new_user("fuzz")
    kept_alive = False
    async with (
        asyncio.timeout(10),
        gateway.client.stream("GET", "/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                kept_alive = True
                break
    assert kept_alive, "the stream ended without a keep-alive"
    anonymous = await gateway.client.get("/v1/events")
    assert anonymous.status_code == 401, anonymous.text


async def test_the_document_declares_every_answer_and_who_must_authenticate(
    gateway: Gateway, fuzz_user: Headers, tmp_path: Path
) -> None:
    code, report = await run_schemathesis(
        gateway, tmp_path, fuzz_user, DOCUMENTED, *ENDLESS, *DOCUMENT_PHASES, max_examples=5
    )
    assert code == 0, _verdict(code, report)
