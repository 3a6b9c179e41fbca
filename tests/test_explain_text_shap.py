"""Text SHAP: the partition groups each lab line, masking keeps specials, values add up."""

from __future__ import annotations

import numpy as np
import pytest
from shap.utils import make_masks
from test_model_support import make_case, tiny_explainable

from fuselens.explain.context import CaseContext
from fuselens.explain.pipeline import lab_items, text_attribution
from fuselens.explain.text_shap import (
    LabLineMasker,
    item_values,
    lab_tokens,
    line_partition,
    line_result,
    text_shap,
    text_shap_lines,
)
from fuselens.model_zoo.case import LabItem, Labs


def node_leaf_sets(linkage: np.ndarray) -> list[frozenset[int]]:
    masks = make_masks(linkage).toarray()
    return [frozenset(np.nonzero(row)[0].tolist()) for row in masks]


def test_partition_groups_each_line_before_joining_lines() -> None:
    lines = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3])
    z = line_partition(lines)
    assert z.shape == (len(lines) - 1, 4)
    assert np.all(np.diff(z[:, 2]) >= 0), "heights must not decrease (scipy linkage order)"
    sets = node_leaf_sets(z)
    lines_sets = {frozenset(np.nonzero(lines == k)[0].tolist()) for k in range(4)}
    assert lines_sets <= set(sets), "every line is one node of the tree"
    for s in sets:  # no node mixes part of a line with another line
        touched = {int(lines[i]) for i in s}
        if len(touched) > 1:
            assert all(frozenset(np.nonzero(lines == k)[0].tolist()) <= s for k in touched)
    assert sets[-1] == frozenset(range(len(lines)))


@pytest.fixture(scope="module")
def ctx() -> CaseContext:
    model = tiny_explainable(0)
    case = make_case(5, 1)
    case.labs = Labs(
        items=[
            LabItem("NT-proBNP", 4200, "pg/mL", None, 125),
            LabItem("Sodium", 131, "mmol/L", 135, 145),
            LabItem("Creatinine", 1.9, "mg/dL", 0.6, 1.2),
        ],
        history="hypertension",
        medications="furosemide 40 mg daily",
    )
    return CaseContext.build(model, case)


def test_tokens_follow_the_model_input_and_know_their_line(ctx) -> None:
    tokens = lab_tokens(ctx)
    lines = tokens.text.split("\n")
    assert len(lines) == 5 and len(lab_items(ctx.case)) == 5
    assert tokens.ids[0] == ctx.model.tokenizer.cls_token_id
    assert len(tokens.feature_pos) == len(tokens.ids) - 2
    starts = np.cumsum([0] + [len(x) + 1 for x in lines])
    for (a, b), line, piece in zip(tokens.spans, tokens.lines, tokens.tokens, strict=True):
        assert starts[line] <= a < b <= starts[line] + len(lines[line])
        assert piece.lstrip("#") in tokens.text[a:b].lower()
    assert set(tokens.lines.tolist()) == set(range(5))


def test_masker_replaces_only_masked_pieces_with_mask_token(ctx) -> None:
    tokens = lab_tokens(ctx)
    mask_id = ctx.model.tokenizer.mask_token_id
    masker = LabLineMasker(tokens, mask_id)
    x = tokens.ids[tokens.feature_pos]
    keep = np.zeros(len(x), dtype=bool)
    keep[tokens.lines == 1] = True
    out = masker(keep, x)[0]
    assert out[0] == tokens.ids[0] and out[-1] == tokens.ids[-1]
    np.testing.assert_array_equal(out[tokens.feature_pos][keep], x[keep])
    assert np.all(out[tokens.feature_pos][~keep] == mask_id)


def test_text_shap_values_add_up_and_items_sum_their_pieces(ctx) -> None:
    ta = text_attribution(text_shap(ctx, 40), ctx.case)
    assert ta.token_values.shape == (len(ta.tokens),) == (len(lab_tokens(ctx).feature_pos),)
    assert ta.evals == text_shap(ctx, max_evals=40).evals
    assert ta.base_value + ta.token_values.sum() == pytest.approx(ta.full_value, abs=1e-4)
    assert ta.items == ["NT-proBNP", "Sodium", "Creatinine", "History", "Medications"]
    np.testing.assert_allclose(
        ta.item_values,
        [ta.token_values[ta.token_items == k].sum() for k in range(5)],
        rtol=1e-5,
        atol=1e-6,
    )


def test_line_values_are_budget_independent_once_lines_are_reached(ctx) -> None:
    """With lines as groups, the line (Owen) values are settled after the tree above the
    lines is expanded; more budget only splits them among pieces."""
    small = text_shap(ctx, max_evals=40)
    large = text_shap(ctx, max_evals=120)
    assert large.evals > small.evals
    np.testing.assert_allclose(
        item_values(small.tokens.lines, small.values, 5),
        item_values(large.tokens.lines, large.values, 5),
        atol=1e-5,
    )
    assert not np.allclose(small.values, large.values)


def test_the_budget_is_spent_below_the_exact_line_level(ctx) -> None:
    """The line-level run costs what a binary tree over five lines costs; ``max_evals``
    more texts split lines into pieces, and the memo scores no text twice."""
    r = text_shap(ctx, max_evals=40)
    assert 0 < r.line_evals <= 4 * 5 + 4
    assert r.line_evals < r.evals <= r.line_evals + 40


def test_line_pass_is_exact_first_and_the_refinement_reuses_it(ctx) -> None:
    lines = text_shap_lines(ctx)
    quick = line_result(ctx, lines)
    n_lines = len(lines.line_values)
    assert quick.level == "line" and quick.evals == lines.evals <= 4 * n_lines * n_lines + 16
    for k in range(n_lines):  # one value per line, spread evenly over its pieces
        assert np.ptp(quick.values[quick.tokens.lines == k]) == pytest.approx(0.0, abs=1e-12)
    refined = text_shap(ctx, lines=lines)
    fresh = text_shap(ctx)
    assert refined.level == "word" and refined.evals == fresh.evals
    np.testing.assert_allclose(refined.values, fresh.values, atol=1e-9)
    np.testing.assert_allclose(
        item_values(refined.tokens.lines, refined.values, n_lines), lines.line_values, atol=1e-6
    )
    assert quick.values.sum() + quick.base_value == pytest.approx(quick.full_value, abs=1e-4)
