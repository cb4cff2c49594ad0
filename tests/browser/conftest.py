"""Browser tests drive the system's Chromium (Debian's `chromium` package) through Playwright.

Playwright's own browser downloads are never used: the launch points at the installed binary. On
a machine without it the tests are skipped, and the skip reason is the command that installs it.

The fixtures are our own rather than pytest-playwright's session-wide ones: Playwright's sync
API marks an event loop as running in the main thread for as long as it is started, and the
suite's asyncio tests (one session loop) cannot run while it is. So Playwright lives for one
module at a time and is stopped before any other test runs. pytest-playwright still provides
`--output` and the `output_path` folder for the screenshots.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

INSTALL = "apt-get update && apt-get install -y chromium"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
ARGS = [
    "--autoplay-policy=no-user-gesture-required",  # a test plays audio without a click
    "--use-fake-device-for-media-stream",  # a synthetic microphone (a beep)
    "--use-fake-ui-for-media-stream",  # and no permission prompt for it
    "--no-sandbox",  # containers (and root) have no sandbox support
]


def chromium_path() -> str | None:
    configured = os.environ.get("TONESTREAM_TEST_CHROMIUM")
    if configured:
        return configured
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip(f"no Chromium on this machine; install it with `{INSTALL}` (as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()
