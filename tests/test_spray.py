"""Spectral relevance analysis on maps whose strategies are known."""

from __future__ import annotations

import numpy as np
import pytest

from fuselens.explain.spray import affinity, eigengap, relevance_distribution, spray


def _maps(n_corner: int, n_centre: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = rng.uniform(0, 0.2, size=(n_corner + n_centre, 16, 16))
    maps[:n_corner, :4, :4] += 1.0  # a corner tag
    maps[n_corner:, 6:10, 6:10] += 1.0  # the heart
    truth = np.array([1] * n_corner + [0] * n_centre)
    return maps, truth


def test_relevance_rows_sum_to_one_and_a_blank_map_is_uniform():
    maps = np.zeros((2, 3, 3))
    maps[0, 0, 0] = 5.0
    dist = relevance_distribution(maps)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    np.testing.assert_allclose(dist[1], 1 / 9)


def test_two_strategies_are_found_and_separated():
    maps, truth = _maps(30, 50)
    clusters = spray(maps)
    assert clusters.k == 2
    assert clusters.sizes() == [50, 30]  # largest first
    corner = clusters.labels[truth == 1]
    assert len(set(corner)) == 1 and set(corner).isdisjoint(clusters.labels[truth == 0])
    assert clusters.embedding.shape == (80, 2)


def test_strength_does_not_split_a_strategy():
    maps, truth = _maps(20, 20, seed=1)
    maps[::2] *= 10.0  # same places, ten times the relevance
    clusters = spray(maps)
    assert clusters.k == 2
    for t in (0, 1):
        assert len(set(clusters.labels[truth == t])) == 1


def test_eigengap_counts_disconnected_groups():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    x = np.concatenate([c + rng.normal(size=(15, 2)) for c in centres])
    k, values = eigengap(affinity(x, 5))
    assert k == 3
    assert np.all(values[:3] < 1e-8)


def test_variants_of_a_strategy_stay_one_strategy():
    """Cases all looking at the heart, each a little elsewhere along one row, and some also
    at a corner tag: two strategies (tag or not), not the row's stretches. The absolute
    eigengap of this spectrum says 7; the relative one says 2."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:16, 0:16]
    maps = rng.uniform(0, 0.05, size=(160, 16, 16))
    tag = np.arange(160) < 60
    maps[tag, :2, :2] += 1.0
    for i, centre in enumerate(rng.uniform(3, 12, 160)):
        maps[i] += np.exp(-((rows - 8) ** 2 + (cols - centre) ** 2) / 4.0)
    clusters = spray(maps)
    assert clusters.k == 2
    assert len(set(clusters.labels[tag])) == 1
    assert set(clusters.labels[tag]).isdisjoint(clusters.labels[~tag])
    gaps = np.diff(clusters.eigenvalues)
    assert int(np.argmax(gaps[1:])) + 2 == 7


def test_the_other_inputs_keep_their_defining_properties():
    """Hellinger rows are unit vectors whose distance is the Hellinger distance; the time
    profile sums an ECG's leads before it becomes a distribution."""
    from fuselens.explain.spray import REPRESENTATIONS

    rng = np.random.default_rng(3)
    maps = rng.uniform(0, 1, size=(4, 12, 50))
    h = REPRESENTATIONS["hellinger"](maps)
    np.testing.assert_allclose((h**2).sum(axis=1), 1.0)
    p, q = relevance_distribution(maps[:2])
    hellinger = np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum())
    assert np.linalg.norm(h[0] - h[1]) / np.sqrt(2) == pytest.approx(hellinger)
    profile = REPRESENTATIONS["time_profile"](maps)
    assert profile.shape == (4, 50)
    np.testing.assert_allclose(profile[0], maps[0].sum(axis=0) / maps[0].sum())
    moved = maps.copy()
    moved[:, [0, 5]] = moved[:, [5, 0]]  # the same moments in other leads
    np.testing.assert_allclose(REPRESENTATIONS["time_profile"](moved), profile)
    assert not np.allclose(relevance_distribution(moved), relevance_distribution(maps))
