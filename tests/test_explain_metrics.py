"""The explanation-quality metrics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from fuselens.explain.metrics import (
    attribution_order,
    curve_auc,
    eraser_scores,
    mass_in_mask,
    perturbation_curve,
    pointing_game,
    spearman,
    step_masks,
    top_k_hit,
)


def test_localisation_metrics() -> None:
    a = np.array([[0.1, 0.9, 0.0], [0.3, -1.0, 0.2]])
    m = np.array([[False, True, False], [True, False, False]])
    assert pointing_game(a, m)
    assert not pointing_game(a, ~m)
    assert top_k_hit(a, m) == 1.0  # k = 2: the top two, 0.9 and 0.3, are both inside
    assert top_k_hit(a, m, k=3) == pytest.approx(2 / 3)  # 0.2 is outside
    assert top_k_hit(a, ~m) == 0.5  # k = 4: 0.2 and 0.1 inside, 0.9 and 0.3 not
    assert mass_in_mask(a, m) == pytest.approx(1.2 / 1.5)
    with pytest.raises(ValueError):
        pointing_game(a, np.zeros_like(m))
    with pytest.raises(ValueError):
        mass_in_mask(a, m[:, :2])


def test_spearman_and_auc() -> None:
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.ones(10)) == 0.0
    assert curve_auc(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert curve_auc(np.array([1.0, 0.0])) == pytest.approx(0.5)


def test_deletion_of_the_true_features_first_drops_the_score_fastest() -> None:
    weights = np.array([5.0, 0.0, 3.0, 0.0, 1.0, 0.0])

    def score(keep: np.ndarray) -> np.ndarray:
        return keep.astype(float) @ weights

    good = perturbation_curve(score, attribution_order(weights), steps=6)
    bad = perturbation_curve(score, attribution_order(-weights), steps=6)
    assert good[0] == bad[0] == 9.0 and good[-1] == bad[-1] == 0.0
    assert curve_auc(good) < curve_auc(bad)
    ins = perturbation_curve(score, attribution_order(weights), steps=6, insertion=True)
    assert ins[0] == 0.0 and ins[1] == 5.0 and ins[-1] == 9.0
    masks = step_masks(np.arange(4), 2, insertion=False)
    np.testing.assert_array_equal(masks.sum(1), [4, 2, 0])


def test_eraser_comprehensiveness_and_sufficiency() -> None:
    weights = np.zeros(100)
    weights[:5] = 0.18  # five tokens carry the whole prediction

    def prob(keep: np.ndarray) -> np.ndarray:
        return 0.05 + keep.astype(float) @ weights

    right = eraser_scores(prob, np.arange(100))
    wrong = eraser_scores(prob, np.arange(100)[::-1])
    assert right["comprehensiveness"] > wrong["comprehensiveness"]
    assert right["sufficiency"] < wrong["sufficiency"]
    # 1% rationale = 1 token: removing it costs 0.18; with 5%+ all 0.9 is gone
    assert right["comprehensiveness"] == pytest.approx((0.18 + 0.9 * 4) / 5)
