"""Fingerprints: landmark hashes of a recording (`core.fingerprint`) and the time-consistent
vote that names the track a clip comes from (`core.rank`); the index is `stores.fingerprints`.
"""
