"""Decode stage: uploaded bytes → mono analysis audio at one rate, or a readable refusal.

`core` holds the pure decode function the handler runs in its worker pool; `ffmpeg` is its
sandboxed fallback decoder; content sniffing is shared with the gateway in `stores.sniff`.
"""
