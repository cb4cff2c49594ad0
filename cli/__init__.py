"""The `tonestream` command."""
