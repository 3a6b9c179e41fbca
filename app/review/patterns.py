"""The cohort's explanation patterns: what the Error review tab and ``fuselens review
--summary`` show across the stored bundles of a run.

Per spatial modality (ECG, echo, CXR), on the common geometry of
:mod:`fuselens.explain.cohort_maps`: the mean heat map of each outcome (TP / FP / TN / FN,
or correct / wrong) and a spectral relevance analysis (:mod:`fuselens.explain.spray`) of
all the run's maps, each cluster with its size, outcome mix, mean map and the cases nearest
its mean. Per modality, the distribution of modality Shapley values by outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fuselens.app.review import store
from fuselens.explain.bundle_store import BundleStore
from fuselens.explain.cohort_maps import SHAPES
from fuselens.explain.spray import Clustering, relevance_distribution, spray

SPATIAL = ("ecg", "echo", "cxr")
EXAMPLES = 5


@dataclass
class Cluster:
    """One strategy SpRAy found in one modality's maps."""

    index: int
    cases: list[str]
    outcomes: dict[str, int]
    mean_map: np.ndarray  # relevance distribution (sums to 1) on the common geometry
    examples: list[str]  # the cases nearest the cluster's mean map


@dataclass
class ModalityPatterns:
    """One modality's maps across the run."""

    modality: str
    cases: list[str]
    outcome_means: dict[str, np.ndarray]  # outcome -> mean relevance distribution
    outcome_counts: dict[str, int]
    clustering: Clustering
    clusters: list[Cluster]

    def cluster_of(self, case_id: str) -> int:
        return int(self.clustering.labels[self.cases.index(case_id)])


@dataclass
class CohortPatterns:
    """Everything the cohort view shows for one run."""

    run_id: int
    n_cases: int
    outcomes: dict[str, str]  # case -> outcome
    modalities: dict[str, ModalityPatterns] = field(default_factory=dict)
    shapley: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # mod -> outcome
    missing: list[str] = field(default_factory=list)  # stored results without a bundle

    def to_json(self) -> dict[str, Any]:
        """JSON-ready digest (no maps): clusters, outcome counts, Shapley medians."""
        mods = {}
        for m, p in self.modalities.items():
            mods[m] = {
                "cases": len(p.cases),
                "clusters_k": p.clustering.k,
                "eigenvalues": [round(float(v), 4) for v in p.clustering.eigenvalues],
                "outcome_counts": p.outcome_counts,
                "clusters": [
                    {
                        "cluster": c.index,
                        "size": len(c.cases),
                        "outcomes": c.outcomes,
                        "examples": c.examples,
                    }  # fmt: skip
                    for c in p.clusters
                ],
            }
        shap = {m: {o: _quartiles(v) for o, v in by.items()} for m, by in self.shapley.items()}
        return {
            "run_id": self.run_id,
            "cases": self.n_cases,
            "without_bundle": len(self.missing),
            "maps": mods,
            "shapley": shap,
        }

    def text(self) -> str:
        """The summary as ``fuselens review --summary`` prints it."""
        lines = [f"review run {self.run_id}: {self.n_cases} explained cases"]
        if self.missing:
            lines.append(f"  {len(self.missing)} results have no stored explanation")
        for m, by in self.shapley.items():
            parts = [f"{o} median {np.median(v):+.3f} (n {len(v)})" for o, v in by.items() if v]
            lines.append(f"  Shapley {m}: " + "; ".join(parts))
        for m, p in self.modalities.items():
            lines.append(f"  {m} maps: {p.clustering.k} strategies (SpRAy, eigengap)")
            for c in p.clusters:
                mix = ", ".join(f"{o} {n}" for o, n in c.outcomes.items() if n)
                lines.append(
                    f"    cluster {c.index}: {len(c.cases)} cases ({mix}); "
                    f"e.g. {', '.join(c.examples[:3])}"
                )
        return "\n".join(lines)


def _quartiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.percentile(values, [25, 50, 75])
    return {"n": len(values), "q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}


def _outcome_names(outcomes: dict[str, str]) -> list[str]:
    order = ("TP", "FP", "TN", "FN", "correct", "wrong")
    seen = set(outcomes.values())
    return [o for o in order if o in seen]


def modality_patterns(
    modality: str,
    cases: list[str],
    maps: np.ndarray,
    outcomes: dict[str, str],
    seed: int = 0,
    k: int | None = None,
) -> ModalityPatterns:
    """Outcome means and SpRAy clusters (``k``, or as many as the eigengap says) of one
    modality's maps ``(N, *SHAPES[modality])``."""
    dist = relevance_distribution(maps)
    names = _outcome_names({c: outcomes[c] for c in cases})
    labels = np.array([outcomes[c] for c in cases])
    shape = SHAPES[modality]
    means = {o: dist[labels == o].mean(axis=0).reshape(shape) for o in names}
    counts = {o: int((labels == o).sum()) for o in names}
    clustering = spray(maps, k=k, seed=seed)
    clusters = []
    for k in range(clustering.k):
        members = np.flatnonzero(clustering.labels == k)
        mean = dist[members].mean(axis=0)
        nearest = members[np.argsort(((dist[members] - mean) ** 2).sum(axis=1))[:EXAMPLES]]
        clusters.append(
            Cluster(
                k,
                [cases[i] for i in members],
                {o: int((labels[members] == o).sum()) for o in names},
                mean.reshape(shape),
                [cases[i] for i in nearest],
            )
        )
    return ModalityPatterns(modality, cases, means, counts, clustering, clusters)


def run_features(
    sessions: store.Sessions, run_id: int
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, np.ndarray]]]:
    """Run ``run_id``'s outcomes (case -> outcome), its explained cases' bundle keys and the
    stored features of those the bundle store holds (case -> name -> array)."""
    run = store.get_run(sessions, run_id)
    rows = store.run_rows(sessions, run_id)
    outcomes = {r["case_id"]: r["outcome"] for r in rows}
    keys = {r["case_id"]: r["bundle_key"] for r in rows if r.get("bundle_key")}
    if not keys or run.bundle_store is None:
        return outcomes, keys, {}
    bundles = BundleStore(run.bundle_store)
    features = {c: bundles.features(k) for c, k in sorted(keys.items()) if bundles.has(k)}
    return outcomes, keys, features


def modality_maps(
    features: dict[str, dict[str, np.ndarray]], modality: str
) -> tuple[list[str], np.ndarray | None]:
    """The cases with a ``modality`` map and their maps ``(N, *SHAPES[modality])``."""
    cases = [c for c, f in features.items() if f"map_{modality}" in f]
    if not cases:
        return [], None
    return cases, np.stack([features[c][f"map_{modality}"] for c in cases])


def cohort_patterns(
    sessions: store.Sessions,
    run_id: int,
    seed: int = 0,
    strategies: Mapping[str, int] | None = None,
) -> CohortPatterns:
    """The patterns of run ``run_id`` from its stored bundles' features; ``strategies``
    fixes the number of SpRAy clusters of a modality (else the eigengap's)."""
    outcomes, keys, features = run_features(sessions, run_id)
    out = CohortPatterns(run_id, len(keys), outcomes)
    out.missing = sorted(set(outcomes) - set(keys)) + sorted(set(keys) - set(features))
    names = _outcome_names(outcomes)
    for case_id, feats in features.items():
        for name, value in feats.items():
            if name.startswith("shapley_"):
                by = out.shapley.setdefault(name[len("shapley_") :], {o: [] for o in names})
                by[outcomes[case_id]].append(float(value))
    for m in SPATIAL:
        cases, maps = modality_maps(features, m)
        if cases:
            k = (strategies or {}).get(m)
            out.modalities[m] = modality_patterns(m, cases, maps, outcomes, seed, k)
    return out
