"""Decode stage: uploaded bytes → mono analysis audio at one rate, or a readable refusal.

`core` holds the pure decode function the handler runs in its worker pool (FFmpeg's libraries
through PyAV), `loudness` the BS.1770-4 meter it feeds with the source channels, `metadata` the
tag and cover reader; sniffing and container opening are shared with the gateway in `stores`.
"""
