"""Lead-aware ECG encoder: (1, k) Conv2d over time on ``(B, 1, 12, 2500)``.

The last conv block keeps lead x time resolution ``(B, C, 12, L')`` (the Grad-CAM++ target);
each (lead, time) cell becomes a token with a lead embedding, and missing leads are masked.
"""

from __future__ import annotations

import torch
from torch import nn

from model_zoo.case import STANDARD_LEADS
from model_zoo.layers import MaskedAttentionPool, conv_block

# (kernel, stride) along time for each conv block.
_TIME_KERNELS: tuple[tuple[int, int], ...] = ((15, 4), (9, 2), (9, 2), (9, 1))


class ECGEncoder(nn.Module):
    """``(B, 1, 12, 2500)`` mV + ``(B, 12)`` lead mask -> ``(B, T, d)`` tokens."""

    def __init__(self, channels: list[int], d_model: int, n_tokens: int, n_heads: int):
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
        self.lead_embed = nn.Parameter(torch.randn(len(STANDARD_LEADS), d_model) * 0.02)
        self.proj = nn.Linear(c_in, d_model)
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)

    @property
    def cam_layer(self) -> nn.Module:
        """The last conv block: activations ``(B, C, 12, L')``."""
        return self.blocks[-1]

    def forward(self, ecg: torch.Tensor, leads: torch.Tensor) -> torch.Tensor:
        fmap = self.blocks(ecg)  # (B, C, 12, L')
        b, _, n_leads, length = fmap.shape
        tokens = self.proj(fmap.permute(0, 2, 3, 1)) + self.lead_embed[None, :, None]
        mask = leads[:, :, None].expand(b, n_leads, length)
        return self.pool(tokens.reshape(b, n_leads * length, -1), mask.reshape(b, -1))
