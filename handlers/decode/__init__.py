"""Decode stage: uploaded bytes → mono analysis audio at one rate, or a readable refusal.

`core` holds the pure decode function the handler runs in its worker pool; `sniff` and `ffmpeg`
are its content sniffing and its sandboxed fallback decoder.
"""
