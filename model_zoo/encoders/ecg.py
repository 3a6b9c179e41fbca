"""Lead-aware ECG encoder: (1, k) Conv2d over time on ``(B, 1, 12, 2500)``.

The last conv block keeps lead x time resolution ``(B, C, 12, L')``; its finding maps
``(B, K, 12, L')`` (:mod:`fuselens.model_zoo.encoders.finding_maps`, the Grad-CAM++ target) give
each
(lead, time) cell a token with a lead embedding, and missing leads are masked.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fuselens.model_zoo.case import STANDARD_LEADS
from fuselens.model_zoo.encoders.finding_maps import FindingMaps
from fuselens.model_zoo.layers import MaskedAttentionPool, conv_block

# (kernel, stride) along time for each conv block.
_TIME_KERNELS: tuple[tuple[int, int], ...] = ((15, 4), (9, 2), (9, 2), (9, 1))


class ECGEncoder(nn.Module):
    """``(B, 1, 12, 2500)`` mV + ``(B, 12)`` lead mask -> ``(B, T, d)`` tokens."""

    def __init__(
        self, channels: list[int], d_model: int, n_tokens: int, n_heads: int, n_findings: int
    ):
        super().__init__()
        if len(channels) != len(_TIME_KERNELS):
            raise ValueError(
                f"ecg_channels needs {len(_TIME_KERNELS)} entries, got {len(channels)}"
            )
        blocks, c_in = [], 1
        for c, (k, s) in zip(channels, _TIME_KERNELS, strict=True):
            blocks.append(conv_block(c_in, c, (1, k), (1, s)))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        stride = math.prod(s for _, s in _TIME_KERNELS)
        field = 1 + sum(
            (k - 1) * math.prod(s for _, s in _TIME_KERNELS[:i])
            for i, (k, _) in enumerate(_TIME_KERNELS)
        )
        self.findings = FindingMaps(c_in, n_findings, 2, edge_cells=math.ceil(field / 2 / stride))
        self.lead_embed = nn.Parameter(torch.randn(len(STANDARD_LEADS), d_model) * 0.02)
        self.proj = nn.Linear(n_findings, d_model)
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)

    @property
    def cam_layer(self) -> nn.Module:
        """The finding maps: activations ``(B, K, 12, L')``."""
        return self.findings

    def encode(
        self, ecg: torch.Tensor, leads: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens ``(B, T, d)``, finding logits ``(B, K)`` (maps pooled over present leads) and
        finding maps ``(B, K, 12, L')``."""
        maps = self.findings(self.blocks(ecg))  # (B, K, 12, L')
        b, _, n_leads, length = maps.shape
        mask = leads[:, :, None] & self.findings.inner(length, maps.device)[None, None]
        logits = self.findings.logits(maps, mask[:, None], (2, 3))
        tokens = self.proj(maps.permute(0, 2, 3, 1)) + self.lead_embed[None, :, None]
        pooled = self.pool(tokens.reshape(b, n_leads * length, -1), mask.reshape(b, -1))
        return pooled, logits, maps

    def forward(self, ecg: torch.Tensor, leads: torch.Tensor) -> torch.Tensor:
        return self.encode(ecg, leads)[0]
