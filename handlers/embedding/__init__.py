"""Embedding stage: turns a tagged track into vectors — a weight-free acoustic vector for "more
like this" (`audio`) and a CLIP embedding of its tags and description (`clip`) so that text and
image queries land in the same space.
"""
