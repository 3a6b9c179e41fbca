"""Grad-CAM++ (pytorch-grad-cam's ``GradCAMPlusPlus``) on the model's target layer.

A small ``nn.Module`` takes only the modality's tensor (in the layout the modality gives
Grad-CAM, e.g. echo views stacked in depth) and returns the task's per-answer log-odds with
the other modalities as they are (cached features when the model has them);
``ClassifierOutputTarget(answer)`` picks the explained answer. The model's
``reshape_transform`` regroups activations that are not ``(B, C, *spatial)``. Maps are in
[0, 1] (the library's own min-max), zero on missing leads and views.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from fuselens.explain.context import CaseContext
from fuselens.explain.methods.base import MapMethod, register
from fuselens.explain.modalities import MODALITY
from fuselens.model_zoo.contract import GradientModel


class ModalityForward(nn.Module):
    """One modality's tensor (Grad-CAM layout) -> the task's per-answer log-odds ``(B, A)``."""

    def __init__(self, ctx: CaseContext, modality: str):
        super().__init__()
        self.model = ctx.model  # a submodule, so pytorch-grad-cam finds the model's device
        self.ctx = ctx
        self.modality = modality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = MODALITY[self.modality].from_cam(x, self.ctx.batch)
        return self.ctx.task_log_odds(self.ctx.run_modality(self.modality, x))


class GradCAMPlusPlusMethod(MapMethod):
    name = "gradcam_pp"
    label = "Grad-CAM++"

    def unavailable(self, ctx: CaseContext, modality: str) -> str | None:
        reason = super().unavailable(ctx, modality)
        if reason is None and not (
            isinstance(ctx.model, GradientModel) and ctx.model.target_layer(modality) is not None
        ):
            reason = f"{ctx.model.name} names no target layer for {modality}"
        return reason

    def attribute(self, ctx: CaseContext, modality: str) -> np.ndarray:
        spec = MODALITY[modality]
        layer = ctx.model.target_layer(modality)
        transform = ctx.model.reshape_transform(modality)
        wrapper = ModalityForward(ctx, modality)
        x = spec.to_cam(ctx.modality_input(modality))
        with torch.enable_grad(), GradCAMPlusPlus(wrapper, [layer], transform) as cam:
            maps = cam(x, targets=[ClassifierOutputTarget(ctx.target_index)])
        if isinstance(ctx.model, nn.Module):
            ctx.model.zero_grad(set_to_none=True)
        out = np.clip(maps[0], 0.0, 1.0).astype(np.float32)
        return spec.cam_to_input(out, ctx.batch) * spec.valid(ctx.batch)


GRADCAM_PP = register(GradCAMPlusPlusMethod())
