"""Deletion baselines: what a removed feature becomes in each modality."""

from __future__ import annotations

import numpy as np
import torch
from test_model_support import make_case, tiny_explainable

from fuselens.explain.context import CaseContext
from fuselens.explain.perturb import baseline_input, feature_grid, masked_batch


def test_a_removed_echo_patch_takes_the_loops_mean_not_black() -> None:
    ctx = CaseContext.build(tiny_explainable(0), make_case(3, 1))
    x = ctx.modality_input("echo")
    base = baseline_input(ctx, "echo")
    assert base.shape == x.shape
    torch.testing.assert_close(base, torch.full_like(x, float(x.mean())))
    assert float(base.flatten()[0]) > float(x.min()) + 0.1, "black would be the loop's minimum"
    grid = feature_grid(ctx, "echo")
    keep = np.ones((1, grid.n), dtype=bool)
    keep[0, 0] = False
    out = masked_batch(ctx, grid, keep)[0]
    removed = torch.from_numpy(grid.index == 0).reshape(out.shape)
    assert removed.any()
    torch.testing.assert_close(out[removed], base[0][removed])
    torch.testing.assert_close(out[~removed], x[0][~removed])
