"""The one distinction every stage makes: a permanent failure is reported, anything else retried."""


class PermanentError(Exception):
    """The input can never succeed (not audio, too long, corrupt); publish `failed`, terminate."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
