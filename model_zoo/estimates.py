"""Estimate heads: quantities only a model can give (ejection fraction from the echo,
cardiothoracic ratio from the X-ray).

Each head is a small MLP on a summary of its encoder's last convolutional block (a coarse
grid of the map; for the echo each cell's mean and spread over the frames). It predicts the
quantity on a standard scale (``(value - centre) / spread``) and is trained with a smooth-L1
loss against the cohort's planted measurement on the training cases only, after the rest of
the model is trained and frozen, so an estimate never changes what the diagnosis or its maps
learnt. A head answers only for a case whose modality is present; elsewhere it gives NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fuselens.model_zoo.case import MODALITIES


@dataclass(frozen=True)
class EstimateSpec:
    """One estimated quantity: its modality, display name, unit, standard scale and how
    close an estimate must be to the planted value to count as right."""

    modality: str
    label: str
    unit: str
    centre: float
    spread: float
    digits: int
    tolerance: float

    @property
    def source(self) -> str:
        """How a report or panel names where the number comes from."""
        return f"model estimate ({self.modality} head)"

    def format(self, value: float) -> str:
        """``value`` as a clinician writes it (``"38%"``, ``"0.58"``)."""
        text = f"{value:.{self.digits}f}"
        return f"{text}{self.unit}" if self.unit == "%" else f"{text} {self.unit}".strip()

    def describe(self, value: float) -> dict[str, Any]:
        """One estimate as the ``Estimator`` capability gives it (JSON-ready)."""
        return {
            "value": value,
            "text": self.format(value),
            "label": self.label,
            "modality": self.modality,
            "source": self.source,
        }


ESTIMATES: dict[str, EstimateSpec] = {
    "ef": EstimateSpec("echo", "LV ejection fraction", "%", 50.0, 15.0, 0, 10.0),
    "ctr": EstimateSpec("cxr", "cardiothoracic ratio", "", 0.5, 0.07, 2, 0.05),
}
"""The estimates a model of this architecture learns (keys of ``GroundTruth.measurements``)."""


def default_estimates() -> list[str]:
    return list(ESTIMATES)


def grid_summary(fmap: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C * grid * grid)``: the map averaged on a coarse grid (keeps
    where things are, which a ratio of widths needs)."""
    return F.adaptive_avg_pool2d(fmap, grid).flatten(1)


def clip_summary(fmap: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """``(N, C, F, h, w)`` -> ``(N, 2 * C * grid * grid)``: each coarse cell's mean and
    spread over the frames (how much each part of the heart moves over the cycle)."""
    cells = F.adaptive_avg_pool3d(fmap, (fmap.shape[2], grid, grid))
    return torch.cat([cells.mean(2), cells.std(2, unbiased=False)], 1).flatten(1)


class EstimateHeads(nn.Module):
    """Per estimate, its modality's summary ``(B, D)`` -> ``(B,)`` value (NaN if absent)."""

    def __init__(self, names: list[str], dims: dict[str, int], hidden: int = 64):
        super().__init__()
        unknown = sorted(set(names) - set(ESTIMATES))
        if unknown:
            raise ValueError(f"unknown estimates {unknown}; known: {sorted(ESTIMATES)}")
        self.names = list(names)
        self.heads = nn.ModuleDict(
            {
                n: nn.Sequential(
                    nn.LayerNorm(dims[ESTIMATES[n].modality]),
                    nn.Linear(dims[ESTIMATES[n].modality], hidden),
                    nn.GELU(),
                    nn.Linear(hidden, 1),
                )
                for n in self.names
            }
        )

    @property
    def modalities(self) -> list[str]:
        return sorted({ESTIMATES[n].modality for n in self.names})

    def standard(
        self, summaries: dict[str, torch.Tensor], present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``(B,)`` standardised estimates, NaN where the head's modality is absent."""
        out = {}
        for name in self.names:
            m = ESTIMATES[name].modality
            rows = present[:, MODALITIES.index(m)].bool()
            z = torch.full((present.shape[0],), float("nan"), device=present.device)
            if m in summaries and rows.any():
                z = z.index_put((rows.nonzero()[:, 0],), self.heads[name](summaries[m]).squeeze(-1))
            out[name] = z
        return out

    def forward(
        self, summaries: dict[str, torch.Tensor], present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``(B,)`` estimates in their own units, NaN where the modality is absent;
        ``summaries[m]`` holds only the rows where ``m`` is present."""
        return {
            n: z * ESTIMATES[n].spread + ESTIMATES[n].centre
            for n, z in self.standard(summaries, present).items()
        }


def estimate_loss(standard: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 on the standard scale over rows with both an estimate and a known target;
    ``targets`` is ``(B, n_estimates)`` in units, NaN where unknown."""
    losses = []
    for j, (name, z) in enumerate(standard.items()):
        t = (targets[:, j] - ESTIMATES[name].centre) / ESTIMATES[name].spread
        ok = ~(torch.isnan(z) | torch.isnan(t))
        if ok.any():
            losses.append(F.smooth_l1_loss(z[ok], t[ok].to(z.dtype)))
    return torch.stack(losses).mean() if losses else targets.new_zeros(())
