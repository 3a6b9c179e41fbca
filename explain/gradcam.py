"""Grad-CAM++ (pytorch-grad-cam's ``GradCAMPlusPlus``) on the ECG, every echo view and the CXR.

A small ``nn.Module`` per modality takes only that modality's tensor and runs it through its
encoder plus fusion and heads with the other modalities' cached features, returning the
task's per-answer log-odds; ``ClassifierOutputTarget(answer)`` picks the explained answer.
Inputs are adapted, not the library: the ECG is already ``(B, 1, 12, L)`` (1-D as 2-D), and
the echo's ``(B*V, C, F, h, w)`` activations are regrouped by a ``reshape_transform`` into
``(B, C, V*F, h, w)`` with the input viewed as ``(B, 1, V*F, S, S)``, so one Grad-CAM++ weight
per channel covers every view and frame and the views share one scale.

Maps come back on the model's grid: ECG ``(12, 2500)``, echo ``(V, F, S, S)``, CXR ``(S, S)``,
each in [0, 1], with missing leads and views zero.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from explain.context import CaseContext
from model_zoo.model import CAM_ENCODERS as CAM_MODALITIES


class ModalityForward(nn.Module):
    """One modality's tensor -> the task's per-answer log-odds ``(B, A)`` (others cached)."""

    def __init__(self, ctx: CaseContext, modality: str):
        super().__init__()
        self.model = ctx.model
        self.ctx = ctx
        self.modality = modality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality == "echo":
            v = self.ctx.inputs.echo.shape[1]
            b, _, vf, s, _ = x.shape
            x = x.reshape(b, v, vf // v, s, s)
        return self.ctx.task_log_odds(self.ctx.run_modality(self.modality, x))


def echo_views_to_depth(n_views: int):
    """``reshape_transform`` for echo activations: ``(B*V, C, F, h, w) -> (B, C, V*F, h, w)``."""

    def transform(t: torch.Tensor) -> torch.Tensor:
        bv, c, f, h, w = t.shape
        return (
            t.reshape(bv // n_views, n_views, c, f, h, w)
            .permute(0, 2, 1, 3, 4, 5)
            .reshape(bv // n_views, c, n_views * f, h, w)
        )

    return transform


def cam_input(ctx: CaseContext, modality: str) -> torch.Tensor:
    """The modality's tensor in the layout Grad-CAM++ is given (echo views stacked in depth)."""
    x = ctx.modality_input(modality)
    if modality == "echo":
        b, v, f, s, _ = x.shape
        return x.reshape(b, 1, v * f, s, s)
    return x


def gradcam_plusplus(ctx: CaseContext, modality: str) -> np.ndarray:
    """Grad-CAM++ of the explained answer on one modality, on the model's input grid."""
    if modality not in CAM_MODALITIES:
        raise ValueError(f"Grad-CAM++ needs a convolutional modality ({CAM_MODALITIES})")
    if modality not in ctx.modalities:
        raise ValueError(f"{modality} is not present in case {ctx.case.case_id}")
    n_views = ctx.inputs.echo.shape[1]
    transform = echo_views_to_depth(n_views) if modality == "echo" else None
    wrapper = ModalityForward(ctx, modality)
    layer = ctx.model.cam_target_layer(modality)
    with torch.enable_grad(), GradCAMPlusPlus(wrapper, [layer], reshape_transform=transform) as cam:
        maps = cam(cam_input(ctx, modality), targets=[ClassifierOutputTarget(ctx.target_index)])
    ctx.model.zero_grad(set_to_none=True)
    out = np.clip(maps[0], 0.0, 1.0).astype(np.float32)
    if modality == "ecg":
        out *= ctx.inputs.ecg_leads[0].cpu().numpy()[:, None]
    elif modality == "echo":
        out = out.reshape(n_views, -1, *out.shape[1:])
        out *= ctx.inputs.echo_views[0].cpu().numpy()[:, None, None, None]
    return out
