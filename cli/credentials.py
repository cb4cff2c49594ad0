"""The local admin credentials `tonestream up` creates on first start, for the CLI to use.

Saved as `<data dir>/credentials.json` with mode 0600: the gateway URL, the admin's user name and
password, and an API key — so the CLI on the same machine works with zero configuration.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # the client commands read credentials without loading the database driver
    from stores.accounts import Accounts

FILENAME = "credentials.json"
ADMIN = "admin"


class LocalCredentials(msgspec.Struct, kw_only=True, frozen=True):
    url: str
    username: str
    password: str
    api_key: str


def credentials_path(data_dir: Path) -> Path:
    return data_dir / FILENAME


def load_credentials(data_dir: Path) -> LocalCredentials | None:
    try:
        return msgspec.json.decode(credentials_path(data_dir).read_bytes(), type=LocalCredentials)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def ensure_local_admin(accounts: Accounts, data_dir: Path, url: str) -> LocalCredentials:
    """The saved credentials (URL refreshed), or a new admin user and API key saved 0600."""
    from stores.accounts import UsernameTaken

    saved = load_credentials(data_dir)
    if saved is not None and await accounts.user_for_api_key(saved.api_key) is not None:
        if saved.url != url:
            saved = msgspec.structs.replace(saved, url=url)
            _write_private(credentials_path(data_dir), msgspec.json.encode(saved))
        return saved
    password = secrets.token_urlsafe(18)
    username = ADMIN
    while True:
        try:
            user = await accounts.create_user(username, password, role="admin")
            break
        except UsernameTaken:  # an earlier admin whose saved key is gone: make another
            username = f"{ADMIN}-{secrets.token_hex(3)}"
    key = await accounts.create_api_key(user.user_id, "local CLI (created by tonestream up)")
    created = LocalCredentials(url=url, username=username, password=password, api_key=key.api_key)
    _write_private(credentials_path(data_dir), msgspec.json.encode(created))
    return created
