"""Finding maps: one non-negative evidence map per planted finding of a modality.

A 1 x 1 convolution and a softplus turn the last conv block's ``C`` channels into ``K`` maps,
one per finding task of the modality; the encoder builds its tokens from these maps only, so
every path from the image or signal to a prediction passes through them. Each map's mean
over the valid cells plus a bias is that finding's logit (class activation mapping, Zhou et
al. 2016), trained against the case's finding labels, so the maps become local detectors of
their findings. The maps are the Grad-CAM++ target layer: their values are never negative (as
Grad-CAM++ assumes of activations) and each answer's map is a weighted sum of finding maps.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fuselens.model_zoo.tasks import TASK_MODALITY


class FindingOutput(NamedTuple):
    """One encoder's findings on the batch rows ``rows``: logits ``(n, K)`` and maps ``(n, K,
    *cells)`` (echo: ``(n, V, K, F, h, w)``)."""

    rows: torch.Tensor
    logits: torch.Tensor
    maps: torch.Tensor


def modality_findings(tasks: list[str], modality: str) -> list[str]:
    """The finding tasks of ``modality``, in task order."""
    return [t for t in tasks if TASK_MODALITY.get(t) == modality]


def masked_mean(
    maps: torch.Tensor, valid: torch.Tensor | None, dims: tuple[int, ...]
) -> torch.Tensor:
    """Mean of ``maps`` over ``dims``, counting only cells where ``valid`` (broadcast) is true."""
    if valid is None:
        return maps.mean(dim=dims)
    w = valid.to(maps.dtype).expand_as(maps)
    return (maps * w).sum(dim=dims) / w.sum(dim=dims).clamp_min(1.0)


class FindingMaps(nn.Module):
    """``(B, C, *cells)`` activations -> ``(B, K, *cells)`` finding maps >= 0 (2-D or 3-D
    cells); :meth:`logits` averages them into ``(..., K)`` finding logits."""

    def __init__(self, channels: int, n_findings: int, n_dims: int, edge_cells: int = 0):
        super().__init__()
        self.edge_cells = edge_cells
        if n_findings < 1:
            raise ValueError("a modality needs at least one finding task for its finding maps")
        conv = nn.Conv2d if n_dims == 2 else nn.Conv3d
        self.conv = conv(channels, n_findings, 1)
        self.logit_bias = nn.Parameter(torch.zeros(n_findings))
        self.n_findings = n_findings

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        maps = F.softplus(self.conv(fmap))
        return maps * self.inner(maps.shape[-1], maps.device).to(maps.dtype)

    def inner(self, length: int, device: torch.device) -> torch.Tensor:
        """``(length,)`` bool over the last axis: False for the ``edge_cells`` cells at each
        end, whose receptive field reaches past the recording (their maps are zero)."""
        keep = torch.ones(length, dtype=torch.bool, device=device)
        if self.edge_cells:
            keep[: self.edge_cells] = False
            keep[-self.edge_cells :] = False
        return keep

    def logits(
        self, maps: torch.Tensor, valid: torch.Tensor | None, dims: tuple[int, ...]
    ) -> torch.Tensor:
        """Each map's :func:`masked_mean` over ``dims`` (cells where ``valid``) plus its bias;
        the finding axis moves last."""
        pooled = masked_mean(maps, valid, dims)
        return pooled.movedim(1, -1) + self.logit_bias
