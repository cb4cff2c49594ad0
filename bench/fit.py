"""`python -m bench.fit`: refit the few fitted constants of tempo and key on the TUNING split.

The tempo level model (tempo._LEVEL_WEIGHTS) and the key corrections (key._MINOR_BIAS,
key._OPENING_BASS_WEIGHT) are fitted here, on the TUNING split of the independent corpus only
(bench/corpus.py), and printed for pasting into those modules; the VALIDATION split that the
accuracy bench reports is never read. The level model is a conditional logit over each piece's
candidate levels (the one within 4 % of the label is the answer), with a small L2 penalty; the
key corrections are a grid search of the MIREX score.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.optimize

from bench import corpus
from bench.accuracy import TEMPO_TOLERANCE, key_score
from handlers.decode.core import decode_to_analysis, read_analysis
from handlers.features import key, tempo
from handlers.features.core import ACTIVE_FLOOR_DB, _chroma, _opening_bass, tempo_inputs
from handlers.features.dsp import analyse_spectra, power_to_db

F64 = npt.NDArray[np.float64]
_L2 = 0.03


def _piece_inputs(path: Path, scratch: str) -> tuple[F64, list[float], F64, F64]:
    """Level features and candidate BPMs, mean chroma and opening bass of one file."""
    decode_to_analysis(str(path), scratch, target_rate=22050)
    samples, rate = read_analysis(scratch)
    spectra = analyse_spectra(samples, rate)
    mel_db = power_to_db(spectra.mel_power)
    active = spectra.rms > np.float32(10.0 ** (ACTIVE_FLOOR_DB / 20.0))
    comb = tempo._Comb(tempo.onset_envelope(mel_db), spectra.frame_rate)
    grid = tempo._geometric_grid(tempo._SEARCH_MIN_BPM, tempo._SEARCH_MAX_BPM, tempo._GRID_STEP)
    levels = tempo.candidate_levels(grid, comb.salience_many(grid))
    features = tempo.level_features(tempo.level_combs(comb, *tempo_inputs(spectra, mel_db)), levels)
    chroma = _chroma(spectra, active).mean(axis=0, dtype=np.float64)
    return features, levels, chroma, _opening_bass(spectra, active).astype(np.float64)


def _fit_levels(rows: list[tuple[F64, npt.NDArray[np.bool_]]]) -> F64:
    """The weights of the raw features: fitted on features in units of their spread (so the
    penalty weighs them alike), then divided by it (the logit ignores constant shifts)."""
    spread = np.concatenate([f for f, _ in rows]).std(axis=0) + 1e-9
    usable = [(f / spread, c) for f, c in rows if c.any()]  # no right candidate: nothing to learn

    def loss(weights: F64) -> float:
        total = 0.0
        for features, correct in usable:
            scores = features @ weights
            top = scores.max()
            total -= float(np.log(np.exp(scores[correct] - top).sum() / np.exp(scores - top).sum()))
        return total + _L2 * float(weights @ weights)

    start = np.zeros(rows[0][0].shape[1])
    return np.asarray(scipy.optimize.minimize(loss, start, method="L-BFGS-B").x) / spread


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.fit", description=__doc__)
    parser.add_argument("--pieces", type=int, default=288, help="TUNING pieces to render/use")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    folder, pieces = corpus.build(corpus.TUNING, args.pieces, args.seconds)
    level_rows, key_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for piece in pieces:
            features, levels, chroma, bass = _piece_inputs(folder / piece.path, f"{tmp}/a.flac")
            correct = np.abs(np.asarray(levels) / piece.bpm - 1) <= TEMPO_TOLERANCE
            level_rows.append((features, correct))
            key_rows.append((chroma, bass, piece.key, piece.mode))
    weights = _fit_levels(level_rows)
    chosen = [c[int(np.argmax(f @ weights))] for f, c in level_rows]
    print(f"tempo._LEVEL_WEIGHTS = {tuple(float(f'{w:.4g}') for w in weights)}")
    print(f"  tuning Acc1 {np.mean(chosen):.3f}; a correct candidate exists for "
          f"{np.mean([c.any() for _, c in level_rows]):.3f}")  # fmt: skip

    def mirex(bias: float, weight: float) -> float:
        scores = []
        for chroma, bass, true_key, true_mode in key_rows:
            key._MINOR_BIAS, key._OPENING_BASS_WEIGHT = bias, weight
            name, mode, _ = key.estimate_key(chroma, bass)
            scores.append(key_score(name, mode, true_key, true_mode))
        return float(np.mean(scores))

    grid = itertools.product((0.0, 0.05, 0.1, 0.15), (0.0, 0.1, 0.25, 0.4, 0.6))
    best = max(grid, key=lambda pair: mirex(*pair))
    print(f"key._MINOR_BIAS, key._OPENING_BASS_WEIGHT = {best}; tuning MIREX {mirex(*best):.3f}")


if __name__ == "__main__":
    main()
