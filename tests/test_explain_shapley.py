"""Exact modality Shapley values and interaction indices: known games, efficiency on the model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_model_support import TINY_PREVALENCE, make_case, tiny_explainable

from fuselens.explain.baseline import PREVALENCE_DESCRIPTION, UNIFORM_DESCRIPTION, empty_value
from fuselens.explain.context import CaseContext
from fuselens.explain.shapley import (
    all_coalitions,
    coalition_key,
    interaction_indices,
    modality_shapley,
    shapley_values,
)
from fuselens.model_zoo.case import MODALITIES, PatientCase
from fuselens.model_zoo.fusion_explainable import FusionExplainable

PLAYERS = ["labs", "ecg", "echo", "cxr"]


def test_additive_game_gives_each_player_its_weight() -> None:
    w = {"labs": 1.5, "ecg": -0.5, "echo": 2.0, "cxr": 0.25}
    phi = shapley_values(PLAYERS, lambda s: 3.0 + sum(w[p] for p in s))
    assert phi == pytest.approx(w)
    assert np.allclose(interaction_indices(PLAYERS, lambda s: sum(w[p] for p in s)), 0)


def test_pure_pair_synergy_is_split_and_shows_as_interaction() -> None:
    def f(s):  # 1 only when labs and echo are both present
        return float({"labs", "echo"} <= s)

    phi = shapley_values(PLAYERS, f)
    assert phi == pytest.approx({"labs": 0.5, "ecg": 0.0, "echo": 0.5, "cxr": 0.0})
    inter = interaction_indices(PLAYERS, f)
    assert inter[0, 2] == pytest.approx(1.0) and inter[2, 0] == pytest.approx(1.0)
    assert np.count_nonzero(np.round(inter, 12)) == 2


def test_redundant_pair_has_negative_interaction() -> None:
    def f(s):  # either of ecg or cxr alone is enough
        return float(bool({"ecg", "cxr"} & s))

    inter = interaction_indices(PLAYERS, f)
    assert inter[1, 3] == pytest.approx(-1.0)


def test_coalitions_and_keys() -> None:
    subsets = all_coalitions(PLAYERS)
    assert len(subsets) == 16 and subsets[0] == frozenset()
    assert coalition_key(frozenset({"cxr", "labs"}), MODALITIES) == "labs+cxr"
    assert coalition_key(frozenset({"cxr", "labs"}), ("cxr", "ecg", "labs")) == "cxr+labs"
    assert coalition_key(frozenset(), MODALITIES) == ""


def _log_odds(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.fixture(scope="module")
def model() -> FusionExplainable:
    return tiny_explainable(0)


def test_the_model_cannot_run_with_no_modality(model) -> None:
    ctx = CaseContext.build(model, make_case(1, 1))
    with pytest.raises(ValueError):
        ctx.predict_subsets(torch.zeros(1, len(MODALITIES), dtype=torch.bool))
    with pytest.raises(ValueError, match="none of the modalities"):
        CaseContext.build(model, PatientCase(case_id="empty"))


@pytest.mark.parametrize("mods", [MODALITIES, ("labs", "echo", "cxr"), ("ecg", "cxr")])
def test_efficiency_on_the_model(model, mods) -> None:
    ctx = CaseContext.build(model, make_case(2, 1, mods))
    r = modality_shapley(ctx)
    assert r.players == list(mods)
    assert len(r.coalitions) == 2 ** len(mods)
    assert abs(sum(r.values.values()) - (r.full_value - r.base_value)) < 1e-5
    assert r.efficiency_error < 1e-5
    full = float(ctx.score(ctx.logits)[0])
    assert r.full_value == pytest.approx(full, abs=1e-5) and full == ctx.full_score()
    assert ctx.target == "yes"
    prev = TINY_PREVALENCE["heart_failure"]["yes"]  # the model's stated answer prevalence
    assert r.base_value == pytest.approx(_log_odds(prev))
    assert r.coalitions[frozenset()] == r.base_value and r.baseline == PREVALENCE_DESCRIPTION
    assert r.interactions.shape == (len(mods), len(mods))
    np.testing.assert_allclose(r.interactions, r.interactions.T)


def test_single_modality_subsets_match_a_fresh_model_run(model) -> None:
    case = make_case(3, 0)
    ctx = CaseContext.build(model, case)
    r = modality_shapley(ctx)
    only_ecg = ctx.batch.with_present(torch.tensor([[False, True, False, False]]))
    with torch.no_grad():
        direct = ctx.score(model.predict(only_ecg))
    assert r.coalitions[frozenset({"ecg"})] == pytest.approx(float(direct[0]), abs=1e-5)
    assert r.coalitions[frozenset({"ecg"})] != pytest.approx(r.full_value, abs=1e-6)


def test_empty_value_is_the_prevalence_log_odds(model) -> None:
    p = TINY_PREVALENCE["heart_failure"]["yes"]
    value, how = empty_value(model, "heart_failure", "no")
    assert value == pytest.approx(math.log((1 - p) / p)) and how == PREVALENCE_DESCRIPTION
    assert empty_value(model, "heart_failure", "yes")[0] == pytest.approx(_log_odds(p))
    # a task the model states no prevalence for, and a model stating none: uniform prior
    assert empty_value(model, "lbbb", "yes") == (0.0, UNIFORM_DESCRIPTION)
    bare = tiny_explainable(0, prevalence=False)
    assert empty_value(bare, "heart_failure", "yes") == (0.0, UNIFORM_DESCRIPTION)
    three = SimpleNamespace(tasks={"rhythm": ["sinus", "af", "flutter"]})
    value, how = empty_value(three, "rhythm", "af")
    assert value == pytest.approx(_log_odds(1 / 3)) and how == UNIFORM_DESCRIPTION


def test_a_model_without_prevalence_gets_the_uniform_baseline() -> None:
    ctx = CaseContext.build(tiny_explainable(0, prevalence=False), make_case(2, 1))
    r = modality_shapley(ctx)
    assert r.base_value == 0.0 and r.baseline == UNIFORM_DESCRIPTION
    assert r.efficiency_error < 1e-5
    assert sum(r.values.values()) == pytest.approx(r.full_value, abs=1e-5)
