"""Tagging stage: turns measured features into mood, genre, energy and a one-line description.

The offline heuristic tagger (`heuristic`) is the default and the fallback; the LLM chain (`llm`)
asks OpenAI-compatible endpoints in order and validates their JSON against the same vocabulary.
"""
