"""The one exception that means "this upload can never be decoded".

The decode handler turns it into an `audio.failed` event carrying `reason` and terminates the
message; every other exception is treated as transient and retried. It lives in its own module so
that the decode modules can all raise it without importing each other.
"""

from __future__ import annotations


class DecodeError(Exception):
    """A permanent decode failure; `reason` is short and readable by the person who uploaded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
