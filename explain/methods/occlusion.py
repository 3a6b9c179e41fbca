"""Occlusion (captum's ``FeatureAblation``) over the modality's feature grid: any model.

Each feature of the modality's occlusion grid (an ECG lead x 0.2 s window, an echo view x
4-frame group x patch, a CXR patch) is set to the modality's removal value in turn; its
attribution is how much the explained answer's log-odds fall. Needs only ``predict`` (no
gradients), so it explains a model of the base tier too. Elements outside the grid (missing
leads and views) form one extra feature whose value is dropped.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import FeatureAblation

from fuselens.explain.context import CaseContext
from fuselens.explain.methods.base import MapMethod, register, to_heat
from fuselens.explain.modalities import MODALITY

PER_EVAL = 16  # ablated inputs per model call


class OcclusionMethod(MapMethod):
    name = "occlusion"
    label = "Occlusion"

    def attribute(self, ctx: CaseContext, modality: str) -> np.ndarray:
        spec = MODALITY[modality]
        x = ctx.modality_input(modality)
        index = spec.occlusion_grid(ctx.batch, ctx.model)
        index = np.where(index < 0, int(index.max()) + 1, index)
        mask = torch.from_numpy(index[None]).to(x.device)

        def forward(inp: torch.Tensor) -> torch.Tensor:
            return ctx.score(ctx.run_modality(modality, inp))

        with torch.no_grad():
            attr = FeatureAblation(forward).attribute(
                x,
                baselines=spec.removal(x, ctx.model),
                feature_mask=mask,
                perturbations_per_eval=PER_EVAL,
            )
        return to_heat(attr[0].float().cpu().numpy(), spec.valid(ctx.batch))


OCCLUSION = register(OcclusionMethod())
