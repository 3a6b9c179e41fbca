"""Spectral relevance analysis on maps whose strategies are known."""

from __future__ import annotations

import numpy as np

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
