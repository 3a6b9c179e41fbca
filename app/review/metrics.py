"""Cohort-level numbers of a review run: confusion matrix, calibration curve, Brier score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from fuselens.app.storage.models import OUTCOMES


def confusion_counts(outcomes: pd.Series) -> np.ndarray:
    """2 x 2 counts from the outcome column: rows truth (no, yes), columns prediction (no, yes)."""
    unknown = set(outcomes) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; expected {', '.join(OUTCOMES)}")
    n = outcomes.value_counts()
    return np.array([[n.get("TN", 0), n.get("FP", 0)], [n.get("FN", 0), n.get("TP", 0)]], dtype=int)


def answer_confusion(
    truth: pd.Series, prediction: pd.Series, answers: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``n x n`` counts over the answers (rows truth, columns prediction) and those answers
    (``answers``, else every answer seen, sorted)."""
    labels = list(answers) if answers else sorted(set(truth) | set(prediction))
    index = {a: i for i, a in enumerate(labels)}
    unknown = (set(truth) | set(prediction)) - set(index)
    if unknown:
        raise ValueError(f"answers {sorted(unknown)} are not among {labels}")
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, prediction, strict=True):
        counts[index[t], index[p]] += 1
    return counts, labels


@dataclass(frozen=True)
class Calibration:
    """Reliability diagram points (non-empty bins only) and the Brier score."""

    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    counts: np.ndarray
    brier: float
    n_bins: int


def calibration(truth: pd.Series, probability: pd.Series, n_bins: int = 10) -> Calibration:
    """Uniform-bin calibration curve (sklearn's) with the count of cases in each shown bin."""
    y = np.asarray(truth, dtype=int)
    p = np.asarray(probability, dtype=float)
    if len(y) == 0:
        raise ValueError("no cases to calibrate")
    if not np.isin(y, (0, 1)).all() or not ((p >= 0) & (p <= 1)).all():
        raise ValueError("truth must be 0/1 and probabilities in [0, 1]")
    frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)  # as sklearn bins
    return Calibration(mean, frac, counts[counts > 0], float(brier_score_loss(y, p)), n_bins)
