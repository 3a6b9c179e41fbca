"""Feature grids on the model's inputs, for occlusion, deletion/insertion curves and ERASER.

A grid (:meth:`fuselens.explain.modalities.Modality.grid`) assigns every element of a
modality's input tensor to a feature (or -1: never removed); a removed feature takes the
modality's removal value. Scores come from the shared path (with cached features, only that
modality is re-encoded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fuselens.explain.context import CaseContext
from fuselens.explain.metrics import ScoreFn
from fuselens.explain.modalities import MODALITY


@dataclass
class FeatureGrid:
    modality: str
    index: np.ndarray  # feature id of every input element (no batch axis), -1: not a feature
    n: int

    def pool(self, attribution: np.ndarray) -> np.ndarray:
        """Mean attribution of each feature; ``attribution`` shaped like the input (or, for
        labs, one value per feature already)."""
        a = np.asarray(attribution, dtype=np.float64)
        if a.size == self.n and a.shape != self.index.shape:
            return a.reshape(-1)
        a = a.reshape(self.index.shape)
        valid = self.index >= 0
        sums = np.bincount(self.index[valid], weights=a[valid], minlength=self.n)
        counts = np.bincount(self.index[valid], minlength=self.n)
        return sums / np.maximum(counts, 1)


def feature_grid(ctx: CaseContext, modality: str) -> FeatureGrid:
    """The feature grid of one present modality."""
    index = MODALITY[modality].grid(ctx.batch, ctx.model)
    return FeatureGrid(modality, index, int(index.max()) + 1)


def baseline_input(ctx: CaseContext, modality: str) -> torch.Tensor:
    """What a removed feature becomes (shaped like the modality's input)."""
    return MODALITY[modality].removal(ctx.modality_input(modality), ctx.model)


def masked_batch(ctx: CaseContext, grid: FeatureGrid, keep: np.ndarray) -> torch.Tensor:
    """``(K, ...)`` inputs keeping the features ``keep[k]`` and removing the others."""
    x = ctx.modality_input(grid.modality)
    base = baseline_input(ctx, grid.modality)
    padded = np.concatenate([np.asarray(keep, dtype=bool), np.ones((len(keep), 1), bool)], 1)
    elem = torch.from_numpy(padded[:, grid.index]).to(x.device)  # index -1 -> always kept
    return torch.where(elem, x, base)


def score_fn(ctx: CaseContext, grid: FeatureGrid, batch_size: int = 16) -> ScoreFn:
    """Keep masks ``(K, n)`` -> target log-odds ``(K,)`` with only this modality altered."""

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
