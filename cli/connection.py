"""Where the gateway is and which key to send: flag > environment > `up`'s credentials > default.

`tonestream up` saves its URL and an admin API key in `<data dir>/credentials.json` (mode 0600)
on first start (cli.credentials), so on the machine that runs it every client command works with
no setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from cli.credentials import credentials_path, load_credentials
from schemas.settings import ENV_PREFIX, Settings

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = f"{ENV_PREFIX}URL"
API_KEY_ENV = f"{ENV_PREFIX}API_KEY"


class Connection(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    api_key: str
    credentials_path: Path  # named in the hint when the gateway refuses a missing key


def resolve(
    settings: Settings,
    url: str | None = None,
    api_key: str | None = None,
    environ: dict[str, str] | None = None,
) -> Connection:
    """The URL and key from the flags, else the environment, else the credentials file.

    The saved key goes only to the saved URL: pointing a command at another gateway never
    sends it the local admin key.
    """
    env = os.environ if environ is None else environ
    url = url or env.get(URL_ENV)
    api_key = api_key or env.get(API_KEY_ENV)
    saved = None if url and api_key else load_credentials(settings.data_path)
    target = (url or (saved.url if saved else "") or DEFAULT_URL).rstrip("/")
    if not api_key and saved is not None and saved.url.rstrip("/") == target:
        api_key = saved.api_key
    return Connection(
        url=target, api_key=api_key or "", credentials_path=credentials_path(settings.data_path)
    )
