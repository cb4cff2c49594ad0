"""The one exception type a command raises to stop with a readable line (and exit code 1).

`main` prints it as `tonestream: <message>`; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations


class CliError(Exception):
    """A failure explained in one line."""
