"""The web app end to end in Chromium against a real `tonestream up` (child process, temp data
dir, free port): sign in with the admin password `up` saved, upload three generated tracks and a
broken file, watch the rows reach indexed / failed, filter the library, open a track, play it and
seek on the waveform, open a similar track, search by text and by an audio file, delete.

One of the tracks has a hostile file name; it must show as text on every page and never become
markup. A screenshot of each page is saved in the test's output folder (`--output`).

Also: every page at 360 px without horizontal scrolling and with every control named, sorting
from the keyboard; a long tagged upload whose row shows the stages' percentages and whose track
page shows its cover, loudness figures and the models' tag probabilities; and a library that
asks the server for one page at a time.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Dialog, Locator, Page, Request, expect

from cli.credentials import LocalCredentials, credentials_path
from streams.server import free_port
from tests.encode import encode
from tests.integration.test_cli import Up
from tests.synth import render_track, write_track

SECONDS = 8.0
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">.wav'
# (file name, bpm, key, mode, format, seed)
TRACKS = [
    ("night-drive.flac", 96.0, "A", "minor", "FLAC", 1),
    ("warehouse.wav", 128.0, "F", "minor", "WAV", 2),
    (HOSTILE, 124.0, "E", "major", "WAV", 3),
]
BROKEN = "truncated.flac"  # passes the upload's checks, fails in the decode stage
LONG_SECONDS = 60.0  # long enough for the features stage to report a percentage before it ends
TIMEOUT_MS = 15_000  # for the page to react
PIPELINE_TIMEOUT_MS = 120_000  # for tracks to go through the pipeline on a busy machine


@pytest.fixture(autouse=True)
def _patience() -> Iterator[None]:
    expect.set_options(timeout=TIMEOUT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default


@pytest.fixture
def music(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "music"
    folder.mkdir()
    paths = []
    for name, bpm, key, mode, fmt, seed in TRACKS:
        path = folder / name
        write_track(path, bpm=bpm, key=key, mode=mode, seconds=SECONDS, format=fmt, seed=seed)
        paths.append(path)
    broken = folder / BROKEN
    whole = paths[0].read_bytes()
    broken.write_bytes(whole[: len(whole) // 2])
    return [*paths, broken]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp_path = tmp_path_factory.mktemp("up")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONESTREAM_")}
    env |= {
        "TONESTREAM_DATA_DIR": str(tmp_path / "data"),
        "TONESTREAM_CLIP_ENABLED": "false",
        "TONESTREAM_LOG_FORMAT": "json",
    }
    started = Up(tmp_path / "data", free_port(), env)
    try:
        yield started
        started.stop()  # Ctrl-C: a clean exit, no process left behind
    finally:
        started.kill()


def _track_lists(page: Page) -> list[dict[str, list[str]]]:
    """The query of every GET /v1/tracks (a library page) the page sends from now on."""
    sent: list[dict[str, list[str]]] = []

    def record(request: Request) -> None:
        url = urlsplit(request.url)
        if request.method == "GET" and url.path == "/v1/tracks":
            sent.append(parse_qs(url.query))

    page.on("request", record)
    return sent


def _until(element: Locator, predicate: str, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    """Poll `predicate` on an element (page.wait_for_function evaluates strings, which the
    page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout_s
    while not element.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        time.sleep(0.1)


def _shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _no_markup_from_data(page: Page) -> None:
    """The hostile name is text: no <img src=x> element exists and its handler never ran."""
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


def _sign_in(page: Page, url: str, credentials: LocalCredentials) -> None:
    page.goto(url)
    page.get_by_label("User name").fill(credentials.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.get_by_label("Password").fill(credentials.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Library")).to_be_visible()


def _upload(page: Page, music: list[Path], shots: Path) -> None:
    """Three tracks and a broken file, each with a live row, then the same bytes again."""
    page.get_by_role("link", name="Upload").first.click()
    page.get_by_label("choose audio files").set_input_files([str(path) for path in music])
    rows = page.locator(".upload-row")
    expect(rows).to_have_count(4)
    expect(rows.locator("a.row-name")).to_have_count(4)  # all four sent: each links its track

    # uploads carry on while browsing; the library's rows follow the pipeline live
    page.get_by_role("link", name="Library").click()
    expect(page.locator("table.tracks tbody tr")).to_have_count(4)
    badges = page.locator("table.tracks .badge")
    expect(badges.filter(has_text="indexed")).to_have_count(3, timeout=PIPELINE_TIMEOUT_MS)
    expect(badges.filter(has_text="failed")).to_have_count(1, timeout=PIPELINE_TIMEOUT_MS)

    page.get_by_role("link", name="Upload").first.click()
    indexed = page.locator(".upload-row[data-state='indexed']")
    expect(indexed).to_have_count(3, timeout=PIPELINE_TIMEOUT_MS)
    failed = page.locator(".upload-row[data-state='failed']")
    expect(failed).to_have_count(1, timeout=PIPELINE_TIMEOUT_MS)
    expect(failed).to_contain_text(BROKEN)
    expect(failed.locator(".row-reason")).to_contain_text(re.compile("truncated or corrupt FLAC"))
    expect(failed.locator(".stage-failed")).to_have_text("decode")
    expect(indexed.locator(".stage-finished")).to_have_count(15)
    _no_markup_from_data(page)
    _shot(page, shots, "2-upload")

    page.get_by_label("choose audio files").set_input_files(str(music[0]))
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("Duplicate")  # not a second track


def _library(page: Page, shots: Path) -> None:
    """All four tracks, keys also in Camelot notation; then filtered by tempo and sorted."""
    page.get_by_role("link", name="Library").click()
    table = page.locator("table.tracks tbody tr")
    expect(table).to_have_count(4)
    expect(page.locator("table.tracks")).to_contain_text(HOSTILE)
    expect(page.get_by_role("row", name=re.compile("night-drive"))).to_contain_text("8A")
    page.get_by_text("More filters").click()
    page.get_by_label("BPM from").fill("120")
    page.get_by_role("button", name="Apply").click()
    expect(table).to_have_count(2)
    expect(page.locator("table.tracks")).not_to_contain_text("night-drive")
    sent = _track_lists(page)
    page.get_by_role("button", name="sort by BPM").click()
    expect(table.first).to_contain_text("124")
    bpm = page.get_by_role("columnheader", name="sort by BPM")
    expect(bpm).to_have_attribute("aria-sort", "ascending")
    page.get_by_role("button", name="sort by BPM").click()
    expect(bpm).to_have_attribute("aria-sort", "descending")
    expect(table.first).to_contain_text("128")
    assert [query.get("sort") for query in sent] == [["bpm"], ["-bpm"]]  # the server sorts
    assert all(query["tempo_min"] == ["120"] for query in sent)  # with the same filters
    _no_markup_from_data(page)
    _shot(page, shots, "3-library")
    page.get_by_role("link", name="Reset").click()


def _track(page: Page, shots: Path) -> None:
    """Waveform, player, features, timeline; it plays, and a click on the waveform seeks."""
    page.get_by_role("link", name="warehouse.wav").click()
    expect(page.get_by_role("heading", name="warehouse.wav")).to_be_visible()
    expect(page.locator(".headline")).to_contain_text("F minor")
    expect(page.locator(".timeline .stage-finished")).to_have_count(6)
    audio = page.locator("audio")
    _until(audio, "element => element.readyState >= 1")
    audio.evaluate("element => element.play()")
    _until(audio, "element => element.currentTime > 0.5")
    box = page.get_by_role("slider", name=re.compile("waveform")).bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    position = audio.evaluate("element => element.currentTime / element.duration")
    assert 0.7 <= position <= 0.85, position
    _shot(page, shots, "4-track")

    similar = page.locator(".similar-open").first
    name = similar.text_content()
    assert name
    similar.click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    _no_markup_from_data(page)
    _shot(page, shots, "5-similar")


def _search(page: Page, music: list[Path], shots: Path) -> None:
    """By text (keywords: no CLIP here, and the page says so), an audio file, the microphone."""
    page.get_by_role("link", name="Search").click()
    search = page.get_by_role("button", name="Search", exact=True)
    page.get_by_label("Describe the music").fill("night")
    search.click()
    results = page.locator(".search-results")
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(results).to_contain_text("night-drive.flac")
    expect(results.locator(".notice-info")).to_contain_text("semantic search unavailable")

    page.get_by_label("Describe the music").fill("")
    page.get_by_label("Audio file").set_input_files(str(music[1]))
    search.click()
    expect(results.locator("tbody tr").first).to_contain_text("warehouse.wav")
    expect(results.locator("tbody tr").first.locator(".matched-audio")).to_be_visible()
    expect(results).to_contain_text(HOSTILE)
    _no_markup_from_data(page)
    _shot(page, shots, "6-search")

    page.get_by_label("Audio file").set_input_files([])
    page.get_by_role("button", name="Record from microphone").click()  # Chromium's fake one
    expect(page.get_by_text("Recording…")).to_be_visible()
    time.sleep(2.5)
    page.get_by_role("button", name="Stop recording").click()
    expect(page.get_by_text(re.compile(r"Recorded \d+ KB"))).to_be_visible()
    search.click()
    expect(results.locator("tbody tr .matched-audio").first).to_be_visible()


def _operations(page: Page, username: str, shots: Path) -> None:
    """The pipeline's backlog (admin), and a new API key shown once."""
    page.get_by_role("link", name="Pipeline").click()
    expect(page.get_by_role("row", name=re.compile("decode"))).to_be_visible()
    _shot(page, shots, "7-pipeline")
    page.get_by_role("link", name=username).click()
    page.get_by_label("New key name").fill("browser test")
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_label("the new API key")).to_have_value(re.compile("^tsk_"))
    _shot(page, shots, "8-account")


def _delete(page: Page) -> None:
    page.get_by_role("link", name="Library").click()
    page.get_by_role("link", name="night-drive.flac").click()

    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Library")).to_be_visible()
    expect(page.locator("table.tracks tbody tr")).to_have_count(3)
    expect(page.locator("table.tracks")).not_to_contain_text("night-drive")


def _checks(requested: list[str]) -> int:
    """How many of these requests asked the gateway to restore a session."""
    return sum(url.endswith("/v1/auth/session/refresh") for url in requested)


def test_the_web_app_end_to_end(page: Page, up: Up, music: list[Path], output_path: str) -> None:
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{up.port}"
    credentials = msgspec.json.decode(credentials_path(up.data).read_bytes(), type=LocalCredentials)
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    refreshes: list[str] = []  # the session checks the page made
    page.on("request", lambda request: refreshes.append(request.url))

    page.goto(url)
    _shot(page, shots, "1-sign-in")
    assert _checks(refreshes) == 0  # a browser that never signed in shows the form at once
    _sign_in(page, url, credentials)
    # a reload keeps the session: the HttpOnly cookie buys a new in-memory access token
    page.reload()
    expect(page.get_by_role("heading", name="Library")).to_be_visible()
    assert _checks(refreshes) == 1
    assert page.evaluate("document.cookie") == ""  # nothing readable by scripts
    assert page.evaluate("Object.values(localStorage)") == ["1"]  # a flag, never a token

    _upload(page, music, shots)
    _library(page, shots)
    _track(page, shots)
    _search(page, music, shots)
    _operations(page, credentials.username, shots)
    _delete(page)

    # signing out ends the session: a reload shows the sign-in form again, without asking
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    asked = _checks(refreshes)
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert _checks(refreshes) == asked
    assert problems == []


UNNAMED = """[...document.querySelectorAll(
        'a[href], input, select, button, textarea, audio, meter, [role=slider], [tabindex]')]
    .filter(e => e.type !== 'file' || e.offsetParent !== null)
    .filter(e => !(e.labels?.length || e.getAttribute('aria-label')
                   || e.getAttribute('aria-labelledby') || e.title || e.textContent.trim()))
    .map(e => e.outerHTML)"""


def _fits_and_is_named(page: Page, shots: Path, name: str) -> None:
    """At the page's width nothing scrolls sideways, and every control has a name."""
    viewport = page.viewport_size
    assert viewport is not None
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], (name, width)
    assert page.evaluate(UNNAMED) == [], name
    _shot(page, shots, name)


def _sign_in_by_keyboard(page: Page, url: str, credentials: LocalCredentials) -> None:
    page.goto(url)
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(credentials.username)
    page.keyboard.press("Tab")
    page.keyboard.type(credentials.password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Library")).to_be_visible()


def test_narrow_screen_and_keyboard(page: Page, up: Up, output_path: str) -> None:
    """At 360 px nothing overflows the page and every control is named; sign-in and sorting
    work from the keyboard alone."""
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    credentials = msgspec.json.decode(credentials_path(up.data).read_bytes(), type=LocalCredentials)
    page.set_viewport_size({"width": 360, "height": 740})
    url = f"http://127.0.0.1:{up.port}"
    _sign_in_by_keyboard(page, url, credentials)
    for route in ("#/library", "#/upload", "#/search", "#/admin", "#/account"):
        page.goto(f"{url}/{route}")
        page.wait_for_selector("main h1")
        if route == "#/library":  # its rows, not just the empty table
            expect(page.get_by_text(re.compile(r"shown|No tracks match"))).to_be_visible()
        _fits_and_is_named(page, shots, route.strip("#/"))
    page.goto(f"{url}/#/library")
    sort = page.get_by_role("button", name="sort by Length")
    sort.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("columnheader", name="sort by Length")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(sort).to_be_focused()  # the focus stays where the person was


def _card(page: Page, heading: str) -> Locator:
    return page.locator(".card").filter(has=page.get_by_role("heading", name=heading, exact=True))


def _cover() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _long_upload(page: Page, folder: Path, shots: Path) -> Locator:
    """A 60-s tagged FLAC with cover art and a short WAV; the long one's row hears percentages."""
    audio = render_track(bpm=110.0, key="D", mode="minor", seconds=LONG_SECONDS, seed=4)
    tags = {"title": "Long Haul", "artist": "Percent Ensemble"}
    long = encode(folder / "long-haul.flac", np.vstack([audio, audio]), 44100, "flac",
                  tags=tags, cover=_cover())  # fmt: skip
    short = write_track(folder / "short.wav", bpm=140.0, key="G", mode="major", seconds=4.0)
    page.get_by_role("link", name="Upload").first.click()
    page.get_by_label("choose audio files").set_input_files([str(long), str(short)])
    row = page.locator(".upload-row", has_text="long-haul.flac")
    expect(row).to_have_attribute("data-state", "indexed", timeout=PIPELINE_TIMEOUT_MS)
    heard = (row.get_attribute("data-percents") or "").split()
    assert heard, "no percent event reached the row"
    assert all(re.fullmatch(r"(decode|features|tagging|embedding|indexing):\d+", h) for h in heard)
    short_row = page.locator(".upload-row", has_text="short.wav")
    expect(short_row).to_have_attribute("data-state", "indexed", timeout=PIPELINE_TIMEOUT_MS)
    _shot(page, shots, "upload-percent")
    return row


def _track_details(page: Page, row: Locator, url: str, shots: Path) -> None:
    """Cover art, peaks and ReplayGain, the models' tags, at 360 px; no cover: no image."""
    page.set_viewport_size({"width": 360, "height": 740})
    row.get_by_role("link", name="long-haul.flac").click()
    expect(page.get_by_role("heading", name="long-haul.flac")).to_be_visible()
    cover = page.get_by_role("img", name="cover art")
    expect(cover).to_be_visible()
    _until(cover, "image => image.complete && image.naturalWidth === 32")
    facts = _card(page, "Features")
    for label in ("ReplayGain", "Sample peak", "True peak"):
        expect(facts).to_contain_text(label)
    expect(page.locator(".scores li")).to_have_count(12)  # the strongest model tags, with meters
    expect(page.locator(".scores meter").first).to_have_attribute("aria-label", re.compile(" %"))
    expect(_card(page, "File")).to_contain_text("Percent Ensemble")
    _fits_and_is_named(page, shots, "track-360")

    page.goto(f"{url}/#/library")
    page.get_by_role("link", name="short.wav").click()
    expect(page.get_by_role("heading", name="short.wav")).to_be_visible()
    expect(_card(page, "Features")).to_contain_text("ReplayGain")
    expect(page.locator("img.cover")).to_have_count(0)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_long_upload_track_details_and_paging(
    page: Page, up: Up, tmp_path: Path, output_path: str
) -> None:
    """A long tagged upload: its row hears the stages' percentages; its page shows the cover, the
    loudness figures and the models' tag probabilities. Then the library one track per page."""
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    credentials = msgspec.json.decode(credentials_path(up.data).read_bytes(), type=LocalCredentials)
    url = f"http://127.0.0.1:{up.port}"
    _sign_in_by_keyboard(page, url, credentials)
    row = _long_upload(page, tmp_path, shots)
    _track_details(page, row, url, shots)

    sent = _track_lists(page)
    page.goto(f"{url}/#/library?limit=1")
    rows = page.locator("table.tracks tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(2)
    expect(page.locator("table.tracks")).to_have_attribute("data-requests", "2")
    assert [query["limit"] for query in sent] == [["1"], ["1"]]  # never more than a page
    assert "cursor" not in sent[0]
    assert sent[1]["cursor"]
    _shot(page, shots, "library-paged")
