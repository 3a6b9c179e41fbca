"""Spectral relevance analysis (SpRAy; Lapuschkin et al. 2019, "Unmasking Clever Hans
predictors and assessing what machines really learn"): cluster a cohort's heat maps to find
the strategies a model uses, one modality at a time.

Each map (already on a common geometry, :mod:`fuselens.explain.cohort_maps`) is scaled to
sum to 1, so a cluster gathers cases whose relevance falls in the same places whatever its
strength. The maps are linked in a symmetric k-nearest-neighbour graph; the number of
clusters is where the normalised graph Laplacian's eigenvalues jump most relative to their
size (the eigengap, :func:`eigengap`), and spectral clustering on that graph (scikit-learn)
assigns the cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import kneighbors_graph

MAX_CLUSTERS = 8
NEIGHBOURS = 10
ZERO = 1e-9  # an eigenvalue below this is 0 (a connected component)


@dataclass
class Clustering:
    """Cluster labels (0..k-1, the largest cluster first), the graph's eigenvalues and a 2-D
    spectral embedding (for a scatter)."""

    labels: np.ndarray  # (N,) int
    k: int
    eigenvalues: np.ndarray  # smallest MAX_CLUSTERS + 1 of the normalised Laplacian
    embedding: np.ndarray  # (N, 2)
    eigengap_k: int = 1  # what the eigengap says (``k`` unless it was asked for)

    def sizes(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.k).tolist()


def relevance_distribution(maps: np.ndarray) -> np.ndarray:
    """(N, ...) non-negative maps -> (N, D) rows summing to 1 (an all-zero map: uniform)."""
    flat = np.clip(np.asarray(maps, dtype=np.float64).reshape(len(maps), -1), 0.0, None)
    sums = flat.sum(axis=1, keepdims=True)
    uniform = np.full_like(flat, 1.0 / flat.shape[1])
    return np.where(sums > 0, flat / np.where(sums > 0, sums, 1.0), uniform)


def hellinger_rows(maps: np.ndarray) -> np.ndarray:
    """The square roots of the relevance distributions: Euclidean distance between them is
    (up to sqrt 2) the Hellinger distance, which weighs a small share of relevance that two
    maps hold in common against their large peaks elsewhere less unevenly than the plain
    distribution does."""
    return np.sqrt(relevance_distribution(maps))


def time_profile_rows(maps: np.ndarray) -> np.ndarray:
    """(N, rows, T) maps -> the distribution of relevance over time alone (rows summed: an
    ECG's leads)."""
    maps = np.clip(np.asarray(maps, dtype=np.float64), 0.0, None)
    return relevance_distribution(maps.reshape(len(maps), -1, maps.shape[-1]).sum(axis=1))


REPRESENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "distribution": relevance_distribution,
    "hellinger": hellinger_rows,
    "time_profile": time_profile_rows,
    "time_profile_hellinger": lambda maps: np.sqrt(time_profile_rows(maps)),
}


def affinity(x: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """A symmetric 0/1 k-nearest-neighbour graph of the rows of ``x`` (dense)."""
    k = max(1, min(neighbours, len(x) - 1))
    graph = kneighbors_graph(x, k, mode="connectivity", include_self=False).toarray()
    return np.maximum(graph, graph.T)


def _spectrum(graph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the graph's normalised Laplacian."""
    return np.linalg.eigh(laplacian(graph, normed=True))


def _gap(values: np.ndarray, max_clusters: int) -> tuple[int, np.ndarray]:
    values = values[: min(max_clusters + 1, len(values))]
    if len(values) < 3:
        return 1, values
    after, before = values[2:], values[1:-1]  # eigenvalues k and k - 1, for k = 2, 3, ...
    jumps = np.where(after > ZERO, (after - before) / np.maximum(after, ZERO), 0.0)
    return int(np.argmax(jumps) + 2), values


def eigengap(graph: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> tuple[int, np.ndarray]:
    """The number of clusters k (2..max_clusters) at which the normalised Laplacian's
    eigenvalues jump most relative to their size, (l_k - l_(k-1)) / l_k, and those
    eigenvalues. k near-disconnected groups have k eigenvalues near 0 and a relative jump
    near 1 after them; the absolute jump l_k - l_(k-1) grows with k in a k-nearest-neighbour
    graph's spectrum and so splits a strategy into its variants."""
    return _gap(_spectrum(graph)[0], max_clusters)


def spray(
    maps: np.ndarray,
    k: int | None = None,
    seed: int = 0,
    neighbours: int = NEIGHBOURS,
    representation: str = "distribution",
) -> Clustering:
    """Cluster ``maps`` (N, ...): ``k`` clusters, or as many as the eigengap says; the
    neighbour graph links rows of ``REPRESENTATIONS[representation]``."""
    n = len(maps)
    if n < 3:
        return Clustering(np.zeros(n, dtype=int), 1, np.zeros(0), np.zeros((n, 2)))
    graph = affinity(REPRESENTATIONS[representation](maps), neighbours)
    spectrum, vectors = _spectrum(graph)
    chosen, values = _gap(spectrum, MAX_CLUSTERS)
    k = int(k or chosen)
    if k <= 1:
        labels = np.zeros(n, dtype=int)
    else:
        labels = SpectralClustering(
            n_clusters=k, affinity="precomputed", random_state=seed, assign_labels="cluster_qr"
        ).fit_predict(graph)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(k)
    embedding = vectors[:, 1:3] if vectors.shape[1] >= 3 else np.zeros((n, 2))
    return Clustering(relabel[labels], k, values, embedding, chosen)
