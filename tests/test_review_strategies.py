"""The cohort view's number of strategies: the eigengap's by default, or the reviewer's."""

from __future__ import annotations

import numpy as np
import pytest

from fuselens.app.review import views
from fuselens.app.review.patterns import CohortPatterns, modality_patterns


def _patterns(k: int | None) -> CohortPatterns:
    """ECG maps of three strategies: relevance early, late, or early and on lead V1 too."""
    rng = np.random.default_rng(0)
    maps = rng.uniform(0, 0.05, size=(60, 12, 250))
    maps[:20, :, 20:40] += 1.0
    maps[20:40, :, 200:220] += 1.0
    maps[40:, :, 20:40] += 1.0
    maps[40:, 6, 100:140] += 3.0
    cases = [f"P{i:05d}" for i in range(60)]
    outcomes = {c: ("TP" if i % 2 else "TN") for i, c in enumerate(cases)}
    out = CohortPatterns(1, 60, outcomes)
    out.modalities["ecg"] = modality_patterns("ecg", cases, maps, outcomes, k=k)
    return out


def test_a_reviewer_can_ask_for_more_strategies_than_the_eigengap_says():
    auto, four = _patterns(None).modalities["ecg"], _patterns(4).modalities["ecg"]
    groups = [set(f"P{i:05d}" for i in range(a, a + 20)) for a in (0, 20, 40)]
    assert auto.clustering.k == auto.clustering.eigengap_k == 3
    assert sorted(map(set, (c.cases for c in auto.clusters)), key=min) == groups
    assert four.clustering.k == 4 and four.clustering.eigengap_k == 3
    for cluster in four.clusters:  # a finer split of the same strategies
        assert any(set(cluster.cases) <= g for g in groups)
    table = views.clusters_markdown(_patterns(4), "ecg")
    assert "says **3** strategies; shown: 4, as asked" in table
    assert "as asked" not in views.clusters_markdown(_patterns(None), "ecg")


def test_a_cluster_picked_among_k_filters_by_that_clustering():
    patterns = _patterns(3)
    choices = views.cluster_choices(patterns, {"ecg": 3})
    values = [v for _, v in choices[1:]]
    assert values == ["ecg:0:3", "ecg:1:3", "ecg:2:3"]
    assert views.cluster_strategies("ecg:2:3") == {"ecg": 3}
    assert views.cluster_strategies("ecg:1") == {} and views.cluster_strategies("") == {}
    chosen = views.cluster_cases(patterns, "ecg:2:3")
    assert chosen == frozenset(patterns.modalities["ecg"].clusters[2].cases)
    assert [v for _, v in views.cluster_choices(patterns)[1:]][0] == "ecg:0"
    for bad in ("ecg:x", "ecg:1:x", "ecg:9:3", "ecg:1:3:4"):
        with pytest.raises(ValueError, match="no cluster"):
            views.cluster_cases(patterns, bad)
