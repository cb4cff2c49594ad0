"""Browser tests drive the system's Chromium (Debian's `chromium` package) through Playwright.

Playwright's own browser downloads are never used: the launch points at the installed binary. On
a machine without it the tests are skipped, and the skip reason is the command that installs it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

INSTALL = "apt-get update && apt-get install -y chromium"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    configured = os.environ.get("TONESTREAM_TEST_CHROMIUM")
    if configured:
        return configured
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(f"no Chromium on this machine; install it with `{INSTALL}` (as root)")
    return browser_type_launch_args | {
        "executable_path": path,
        "args": [
            "--autoplay-policy=no-user-gesture-required",  # a test plays audio without a click
            "--use-fake-device-for-media-stream",  # a synthetic microphone (a beep)
            "--use-fake-ui-for-media-stream",  # and no permission prompt for it
            "--no-sandbox",  # containers (and root) have no sandbox support
        ],
    }


@pytest.fixture(scope="session")
def base_url() -> None:
    """Replaces pytest-base-url's fixture, whose definition pytest 9 warns about (-W error);
    every test here builds its URLs from the port of the `up` it started."""
