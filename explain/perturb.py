"""Feature grids on the model's inputs, for deletion/insertion curves and ERASER.

A grid assigns every element of a modality's input tensor to a feature (or -1: never
removed): ECG lead x 0.2 s window, echo view x frame x 8x8 patch, CXR 8x8 patch (the grid and
removal values of ``model_zoo.erasing``, which the demo model is trained with), labs word
piece. A removed feature takes a baseline value: 0 mV (ECG), the loop's mean (echo), the image
mean (CXR), ``[MASK]`` (labs). Black is no neutral value for an echo: it is what blood in a
cavity looks like, so blacking out the walls makes a ventricle look dilated and raises P(heart
failure) — on an earlier demo checkpoint, Grad-CAM++'s deletion curve fell below random in 0
of 19 echo evidence cases with a black baseline, in 19 of 19 with the loop's mean. Scores come
from the shared path (only that modality re-encoded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.context import CaseContext
from explain.metrics import ScoreFn
from model_zoo.erasing import ECG_WINDOW, PATCH, removal_value


@dataclass
class FeatureGrid:
    modality: str
    index: np.ndarray  # feature id of every input element (no batch axis), -1: not a feature
    n: int

    def pool(self, attribution: np.ndarray) -> np.ndarray:
        """Mean attribution of each feature; ``attribution`` shaped like the input (or, for
        labs, one value per feature already)."""
        a = np.asarray(attribution, dtype=np.float64)
        if self.modality == "labs":
            return a
        a = a.reshape(self.index.shape)
        valid = self.index >= 0
        sums = np.bincount(self.index[valid], weights=a[valid], minlength=self.n)
        counts = np.bincount(self.index[valid], minlength=self.n)
        return sums / np.maximum(counts, 1)


def _patch_ids(size: int, patch: int) -> np.ndarray:
    cells = np.arange(size) // patch
    per_row = -(-size // patch)
    return cells[:, None] * per_row + cells[None, :]


def feature_grid(ctx: CaseContext, modality: str) -> FeatureGrid:
    """The feature grid of one present modality."""
    x = ctx.modality_input(modality)[0]
    if modality == "labs":
        ids = x.cpu().numpy()
        special = np.isin(ids, ctx.model.tokenizer.all_special_ids)
        index = np.full(ids.shape, -1, dtype=np.int64)
        index[~special] = np.arange(int((~special).sum()))
        return FeatureGrid(modality, index, int((~special).sum()))
    if modality == "ecg":
        n_leads, length = x.shape[1:]
        n_win = -(-length // ECG_WINDOW)
        index = np.arange(n_leads)[:, None] * n_win + (np.arange(length) // ECG_WINDOW)[None]
        index[~ctx.inputs.ecg_leads[0].cpu().numpy()] = -1
        return FeatureGrid(modality, index[None], n_leads * n_win)
    if modality == "echo":
        v, f, s, _ = x.shape
        per_frame = _patch_ids(s, PATCH)
        n_patch = int(per_frame.max()) + 1
        index = (np.arange(v * f)[:, None, None] * n_patch + per_frame[None]).reshape(v, f, s, s)
        index[~ctx.inputs.echo_views[0].cpu().numpy()] = -1
        return FeatureGrid(modality, index, v * f * n_patch)
    s = x.shape[-1]
    per = _patch_ids(s, PATCH)
    return FeatureGrid(modality, per[None], int(per.max()) + 1)


def baseline_input(ctx: CaseContext, modality: str) -> torch.Tensor:
    """What a removed feature becomes (shaped like the modality's input)."""
    x = ctx.modality_input(modality)
    if modality == "labs":
        return torch.full_like(x, ctx.model.tokenizer.mask_token_id)
    return removal_value(modality, x)


def masked_batch(ctx: CaseContext, grid: FeatureGrid, keep: np.ndarray) -> torch.Tensor:
    """``(K, ...)`` inputs keeping the features ``keep[k]`` and removing the others."""
    x = ctx.modality_input(grid.modality)
    base = baseline_input(ctx, grid.modality)
    padded = np.concatenate([np.asarray(keep, dtype=bool), np.ones((len(keep), 1), bool)], 1)
    elem = torch.from_numpy(padded[:, grid.index]).to(x.device)  # index -1 -> always kept
    return torch.where(elem, x, base)


def score_fn(ctx: CaseContext, grid: FeatureGrid, batch_size: int = 16) -> ScoreFn:
    """Keep masks ``(K, n)`` -> target log-odds ``(K,)`` with only this modality re-encoded."""

    def scores(keep: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(keep), batch_size):
            batch = masked_batch(ctx, grid, keep[i : i + batch_size])
            out.append(ctx.scores(grid.modality, batch, batch_size).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    return scores


def prob_fn(ctx: CaseContext, grid: FeatureGrid) -> ScoreFn:
    """Like :func:`score_fn`, as the probability of the explained answer."""
    logits = score_fn(ctx, grid)
    return lambda keep: 1.0 / (1.0 + np.exp(-logits(keep)))
