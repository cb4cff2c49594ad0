"""Features stage: measures a track's analysis audio — tempo, key, loudness, spectral shape,
timbre and chroma — with a pure numpy/scipy core (`core.analyse`) built on one STFT pass.
"""
