"""Integrated Gradients (captum's ``IntegratedGradients``) from the modality's removal value.

The path runs from the removal value (0 mV, the loop's or the image's mean) to the input;
the forward is the explained answer's log-odds with only this modality altered. The map is
the positive part of the attribution (evidence for the answer) over its maximum.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients

from fuselens.explain.context import CaseContext
from fuselens.explain.methods.base import MapMethod, register, to_heat
from fuselens.explain.modalities import MODALITY
from fuselens.model_zoo.contract import GradientModel

STEPS = 16  # Riemann steps of the path integral (captum's default is 50; see bench-xai)


class IntegratedGradientsMethod(MapMethod):
    name = "integrated_gradients"
    label = "Integrated Gradients"

    def unavailable(self, ctx: CaseContext, modality: str) -> str | None:
        reason = super().unavailable(ctx, modality)
        if reason is None and not isinstance(ctx.model, GradientModel):
            reason = f"{ctx.model.name} is not a differentiable (PyTorch) model"
        return reason

    def attribute(self, ctx: CaseContext, modality: str) -> np.ndarray:
        spec = MODALITY[modality]
        x = ctx.modality_input(modality).float()
        baseline = spec.removal(x, ctx.model)

        def forward(inp: torch.Tensor) -> torch.Tensor:
            return ctx.score(ctx.run_modality(modality, inp))

        with torch.enable_grad():
            ig = IntegratedGradients(forward)
            attr = ig.attribute(x, baselines=baseline, n_steps=STEPS, internal_batch_size=STEPS)
        return to_heat(attr[0].detach().cpu().numpy(), spec.valid(ctx.batch))


INTEGRATED_GRADIENTS = register(IntegratedGradientsMethod())
