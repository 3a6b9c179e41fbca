"""Random erasing: whole deletion-test features are removed, with the deletion test's own
removal values, so training sees exactly what a deletion curve shows the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_model_support import make_case, tiny_config, tiny_explainable

from fuselens.explain.context import CaseContext
from fuselens.explain.perturb import feature_grid, masked_batch
from fuselens.model_zoo.erasing import ECG_WINDOW, PATCH, random_erasing, random_keep, removal_value
from fuselens.model_zoo.inputs import case_to_arrays, collate


def _batch(n: int = 6):
    config = tiny_config()
    return collate([case_to_arrays(make_case(i, i % 2), config) for i in range(n)], config)


def test_keep_masks_remove_whole_features_at_the_drawn_share() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 12, 2500)
    keep = random_keep("ecg", x, torch.tensor([0.0, 0.5, 1.0]), gen)
    assert keep.shape == x.shape
    assert keep[0].all() and not keep[2].any()
    windows = keep[1, 0].reshape(12, -1, ECG_WINDOW).float()
    assert set(windows.mean(-1).unique().tolist()) == {0.0, 1.0}
    assert 0.4 < 1.0 - float(windows.mean()) < 0.6
    image = torch.randn(2, 1, 64, 64)
    patches = random_keep("cxr", image, torch.tensor([0.5, 0.5]), gen)[0, 0].float()
    cells = patches.reshape(64 // PATCH, PATCH, 64 // PATCH, PATCH).mean(dim=(1, 3))
    assert set(cells.unique().tolist()) == {0.0, 1.0}


def test_erasing_uses_each_rows_removal_value_and_leaves_labs_alone() -> None:
    inputs = _batch()
    gen = torch.Generator().manual_seed(1)
    erased = random_erasing(inputs, gen, prob=1.0)
    assert torch.equal(erased.input_ids, inputs.input_ids)
    assert random_erasing(inputs, gen, prob=0.0) is inputs
    for m in ("ecg", "echo", "cxr"):
        x, y = getattr(inputs, m), getattr(erased, m)
        changed = x != y
        assert changed.any(), m
        base = removal_value(m, x)
        torch.testing.assert_close(y[changed], base[changed])
    row_means = inputs.echo.float().mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(removal_value("echo", inputs.echo)[:, 0, 0, 0, 0], row_means)
    assert not removal_value("ecg", inputs.ecg).any()


def test_removal_value_rejects_a_modality_without_one() -> None:
    with pytest.raises(ValueError, match="no removal value"):
        removal_value("labs", torch.zeros(1, 4))


@pytest.mark.parametrize("modality", ["ecg", "echo", "cxr"])
def test_a_fully_erased_input_is_the_deletion_tests_fully_deleted_input(modality) -> None:
    torch.manual_seed(0)
    case = make_case(2, 1)
    ctx = CaseContext.build(tiny_explainable(0), case)
    grid = feature_grid(ctx, modality)
    deleted = masked_batch(ctx, grid, np.zeros((1, grid.n), dtype=bool))
    x = ctx.modality_input(modality)
    erased = torch.where(
        random_keep(modality, x, torch.ones(1), torch.Generator()), x, removal_value(modality, x)
    )
    removable = torch.from_numpy(grid.index >= 0).reshape(x.shape)
    torch.testing.assert_close(erased[removable], deleted[removable])
