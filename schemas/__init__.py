"""msgspec Structs shared by every part of Tonestream: events, payloads, settings."""
