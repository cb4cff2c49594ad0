"""One module per group of `tonestream` commands.

Each module's `register(commands)` adds its sub-commands to the parser and sets `run`, a
function of the parsed arguments and the settings that returns the exit code.
"""
