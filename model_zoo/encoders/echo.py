"""Echo encoder shared across views: a per-frame 2D CNN plus temporal attention.

The per-frame CNN is Conv3d with (1, k, k) kernels on ``(B*V, 1, F, H, W)``, so its last conv
block is a 5-D video activation ``(B*V, C, F, h, w)`` (the Grad-CAM++ target). Frame tokens get
a view and a frame-position embedding, one self-attention layer runs over each view's frames,
and a motion token (per-feature spread over frames, i.e. wall motion) is added per view.
"""

from __future__ import annotations

import torch
from torch import nn

from model_zoo.case import ECHO_VIEWS
from model_zoo.layers import MaskedAttentionPool, conv_block

_GRID = 4


class EchoEncoder(nn.Module):
    """``(B, V, F, S, S)`` normalised frames + ``(B, V)`` view mask -> ``(B, T, d)`` tokens."""

    def __init__(
        self,
        channels: list[int],
        n_frames: int,
        d_model: int,
        n_tokens: int,
        n_heads: int,
        dropout: float = 0.1,
    ):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"echo_channels needs 4 entries, got {len(channels)}")
        specs = ((5, 2), (3, 2), (3, 1), (3, 1))
        blocks, c_in = [], 1
        for c, (k, s) in zip(channels, specs, strict=True):
            blocks.append(conv_block(c_in, c, (1, k, k), (1, s, s)))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.grid = nn.AdaptiveAvgPool3d((None, _GRID, _GRID))
        self.frame_proj = nn.Linear(c_in * _GRID * _GRID, d_model)
        self.view_embed = nn.Parameter(torch.randn(len(ECHO_VIEWS), d_model) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(n_frames, d_model) * 0.02)
        self.temporal = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.motion = nn.Linear(d_model, d_model)
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)
        self.last_temporal_attention: torch.Tensor | None = None

    @property
    def cam_layer(self) -> nn.Module:
        """The last per-frame conv block: activations ``(B*V, C, F, h, w)``."""
        return self.blocks[-1]

    def forward(self, echo: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        b, v, f, s, _ = echo.shape
        fmap = self.blocks(echo.reshape(b * v, 1, f, s, s))  # (B*V, C, F, h, w)
        grid = self.grid(fmap).permute(0, 2, 1, 3, 4).reshape(b * v, f, -1)
        frames = self.frame_proj(grid) + self.time_embed[:f]
        frames = self.temporal(frames)  # (B*V, F, d)
        motion = self.motion(frames.std(dim=1, unbiased=False))[:, None]  # (B*V, 1, d)
        tokens = torch.cat([motion, frames], dim=1).reshape(b, v, f + 1, -1)
        tokens = tokens + self.view_embed[None, :, None]
        mask = views[:, :, None].expand(b, v, f + 1)
        return self.pool(tokens.reshape(b, v * (f + 1), -1), mask.reshape(b, -1))
