"""Explanation-quality metrics as plain functions (captum style): arrays or score functions in,
numbers out. An attribution and its mask always have the same shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

ScoreFn = Callable[[np.ndarray], np.ndarray]  # keep masks (K, n) bool -> scores (K,)
ERASER_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)


def _check(attribution: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, m = np.asarray(attribution, dtype=np.float64), np.asarray(mask, dtype=bool)
    if a.shape != m.shape:
        raise ValueError(f"attribution {a.shape} and mask {m.shape} differ in shape")
    if not m.any():
        raise ValueError("the evidence mask is empty")
    return a.ravel(), m.ravel()


def pointing_game(attribution: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the attribution's peak falls inside the evidence mask."""
    a, m = _check(attribution, mask)
    return bool(m[int(np.argmax(a))])


def top_k_hit(attribution: np.ndarray, mask: np.ndarray, k: int | None = None) -> float:
    """Share of the ``k`` highest-attributed cells inside the mask (``k`` = mask size:
    relevance rank accuracy)."""
    a, m = _check(attribution, mask)
    k = int(m.sum()) if k is None else int(k)
    top = np.argpartition(-a, min(k, a.size) - 1)[:k]
    return float(m[top].mean())


def mass_in_mask(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution that lies inside the mask (0 if none is positive)."""
    a, m = _check(attribution, mask)
    pos = np.clip(a, 0.0, None)
    total = float(pos.sum())
    return float(pos[m].sum() / total) if total > 0 else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (0 when either is constant)."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps {x.shape} and {y.shape} differ in shape")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def curve_auc(scores: np.ndarray) -> float:
    """Area under a curve sampled at evenly spaced fractions of [0, 1] (trapezoid rule)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.trapezoid(s, dx=1.0 / (len(s) - 1)))


def step_masks(order: np.ndarray, steps: int, insertion: bool) -> np.ndarray:
    """Keep masks ``(steps + 1, n)``: deletion removes, insertion adds, the features in
    ``order`` a fraction ``i / steps`` at a time."""
    n = len(order)
    counts = np.round(np.linspace(0, n, steps + 1)).astype(int)
    masks = np.ones((steps + 1, n), dtype=bool) if not insertion else np.zeros((steps + 1, n), bool)
    for i, c in enumerate(counts):
        masks[i, order[:c]] = insertion
    return masks


def perturbation_curve(
    score_fn: ScoreFn, order: np.ndarray, steps: int = 10, insertion: bool = False
) -> np.ndarray:
    """The model's score as features are deleted (or inserted) most-important first."""
    return np.asarray(score_fn(step_masks(np.asarray(order), steps, insertion)), dtype=np.float64)


def attribution_order(values: np.ndarray) -> np.ndarray:
    """Feature indices, most positive attribution first (stable for ties)."""
    return np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")


def random_orders(n: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(count)]


def eraser_scores(
    prob_fn: ScoreFn, order: np.ndarray, fractions: Sequence[float] = ERASER_FRACTIONS
) -> dict[str, float]:
    """ERASER comprehensiveness (p(x) - p(x without the rationale)) and sufficiency
    (p(x) - p(rationale alone)), averaged over rationale sizes (top ``fractions``)."""
    n = len(order)
    full = np.ones((1, n), dtype=bool)
    without, alone = [], []
    for f in fractions:
        k = max(1, int(round(f * n)))
        keep = np.ones(n, dtype=bool)
        keep[order[:k]] = False
        without.append(keep)
        alone.append(~keep)
    p = prob_fn(np.concatenate([full, np.stack(without), np.stack(alone)]))
    m = len(fractions)
    return {
        "comprehensiveness": float(np.mean(p[0] - p[1 : 1 + m])),
        "sufficiency": float(np.mean(p[0] - p[1 + m :])),
    }
