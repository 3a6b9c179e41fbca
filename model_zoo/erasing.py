"""Feature erasing on the ECG, echo and CXR inputs: the feature grid and removal values the
deletion test uses (``explain.perturb``), and random erasing of it as a training augmentation.

A feature is an ECG lead x 0.2 s window, an echo view x frame x 8 x 8 patch or a CXR 8 x 8
patch. A removed feature takes 0 mV (ECG) or the mean of the case's loop or image (echo, CXR).
A model that never saw such inputs reads them as evidence of their own: a loop whose patches
are a static grey has walls that do not move, which is what a reduced ejection fraction looks
like, so deleting the most attributed patches first raised P(heart failure) again after a few
steps (a checkpoint trained without erasing: deletion below the random order in 10 of 25
held-out echo evidence cases). Training with random erasing (Zhong et al., AAAI 2020) of the
same features with the same values makes a removed feature uninformative, so a deletion curve
measures the evidence taken away rather than the model's response to an unfamiliar input (the
concern of ROAR, Hooker et al., NeurIPS 2019).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from fuselens.model_zoo.inputs import ModelInputs
from fuselens.model_zoo.model import CAM_ENCODERS

ECG_WINDOW = 50  # samples at 250 Hz: 0.2 s
PATCH = 8


def removal_value(modality: str, x: torch.Tensor) -> torch.Tensor:
    """What a removed feature of ``x`` ``(B, ...)`` becomes, shaped like ``x``: 0 mV for the
    ECG, each row's mean for the echo loop and the CXR."""
    if modality == "ecg":
        return torch.zeros_like(x)
    if modality not in ("echo", "cxr"):
        raise ValueError(f"no removal value for {modality!r}; choose ecg, echo or cxr")
    dims = tuple(range(1, x.ndim))
    return x.float().mean(dim=dims, keepdim=True).to(x.dtype).expand_as(x)


def cell_size(modality: str) -> tuple[int, int]:
    """A feature's extent along the input's last two axes."""
    return (1, ECG_WINDOW) if modality == "ecg" else (PATCH, PATCH)


def _expand(cells: torch.Tensor, size: tuple[int, int], shape: torch.Size) -> torch.Tensor:
    """Coarse ``(B, ..., h, w)`` cells -> element mask cropped to ``shape``."""
    out = cells.repeat_interleave(size[0], dim=-2).repeat_interleave(size[1], dim=-1)
    return out[..., : shape[-2], : shape[-1]]


def random_keep(
    modality: str, x: torch.Tensor, fraction: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Bool mask shaped like ``x``: each feature of row ``i`` removed with probability
    ``fraction[i]`` (a whole feature at a time)."""
    h, w = cell_size(modality)
    coarse = (*x.shape[:-2], -(-x.shape[-2] // h), -(-x.shape[-1] // w))
    draw = torch.rand(coarse, generator=gen)
    gone = draw < fraction.reshape(-1, *([1] * (len(coarse) - 1)))
    return _expand(~gone, (h, w), x.shape).to(x.device)


def random_erasing(
    inputs: ModelInputs, gen: torch.Generator, prob: float, max_fraction: float = 1.0
) -> ModelInputs:
    """The batch with, per row and modality, probability ``prob`` of erasing a uniformly
    drawn share (up to ``max_fraction``) of its features."""
    if prob <= 0:
        return inputs
    changed = {}
    for m in CAM_ENCODERS:
        x = getattr(inputs, m)
        b = x.shape[0]
        chosen = torch.rand(b, generator=gen) < prob
        if not chosen.any():
            continue
        fraction = torch.rand(b, generator=gen) * max_fraction * chosen
        keep = random_keep(m, x, fraction, gen)
        changed[m] = torch.where(keep, x, removal_value(m, x))
    return replace(inputs, **changed)
