"""Pipeline stages: each a thin FastStream consumer over a pure, separately tested core."""
