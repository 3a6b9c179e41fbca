"""Echo encoder shared across views: a per-frame 2D CNN plus temporal attention.

The per-frame CNN is Conv3d with (1, k, k) kernels on ``(B*V, 1, F, H, W)``, so its last conv
block is a 5-D video activation ``(B*V, C, F, h, w)``. Its finding maps
``(B*V, K, F, h, w)`` (:mod:`fuselens.model_zoo.encoders.finding_maps`, the Grad-CAM++ target),
pooled
to a 4 x 4 grid, make one token per frame with a view and a frame-position embedding; one
self-attention layer runs over each view's frames,
and a motion token (per-feature spread over frames, i.e. wall motion) is added per view.
"""

from __future__ import annotations

import torch
from torch import nn

from fuselens.model_zoo.case import ECHO_VIEWS
from fuselens.model_zoo.encoders.finding_maps import FindingMaps, masked_mean
from fuselens.model_zoo.estimates import clip_summary
from fuselens.model_zoo.layers import MaskedAttentionPool, conv_block

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
        n_findings: int,
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
        self.findings = FindingMaps(c_in, n_findings, 3)
        self.motion_weight = nn.Parameter(torch.zeros(n_findings))
        self.grid = nn.AdaptiveAvgPool3d((None, _GRID, _GRID))
        self.frame_proj = nn.Linear(n_findings * _GRID * _GRID, d_model)
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
        """The finding maps: activations ``(B*V, K, F, h, w)``."""
        return self.findings

    def finding_logits(self, maps: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """``(B, K)``: per view, the mean over frames of each frame's mean map plus a learnt
        multiple of how much that moves over the clip (wall motion, for the ejection
        fraction); averaged over the present views."""
        b, v = views.shape
        per_frame = maps.mean(dim=(3, 4))  # (B*V, K, F)
        spread = per_frame.std(dim=-1, unbiased=False)
        per_view = (per_frame.mean(dim=-1) + self.motion_weight * spread).reshape(b, v, -1)
        return masked_mean(per_view, views[:, :, None], (1,)) + self.findings.logit_bias

    def encode(
        self, echo: torch.Tensor, views: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens ``(B, T, d)``, finding logits ``(B, K)`` and finding maps
        ``(B, V, K, F, h, w)``."""
        b, v, f, s, _ = echo.shape
        maps = self.findings(self.blocks(echo.reshape(b * v, 1, f, s, s)))  # (B*V, K, F, h, w)
        logits = self.finding_logits(maps, views)
        grid = self.grid(maps).permute(0, 2, 1, 3, 4).reshape(b * v, f, -1)
        frames = self.frame_proj(grid) + self.time_embed[:f]
        frames = self.temporal(frames)  # (B*V, F, d)
        motion = self.motion(frames.std(dim=1, unbiased=False))[:, None]  # (B*V, 1, d)
        tokens = torch.cat([motion, frames], dim=1).reshape(b, v, f + 1, -1)
        tokens = tokens + self.view_embed[None, :, None]
        mask = views[:, :, None].expand(b, v, f + 1)
        pooled = self.pool(tokens.reshape(b, v * (f + 1), -1), mask.reshape(b, -1))
        return pooled, logits, maps.reshape(b, v, *maps.shape[1:])

    def forward(self, echo: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        return self.encode(echo, views)[0]

    def summary(self, echo: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """``(B, D)``: the last block's :func:`clip_summary`, averaged over present views
        (what the ejection-fraction head reads)."""
        b, v, f, s, _ = echo.shape
        per_view = clip_summary(self.blocks(echo.reshape(b * v, 1, f, s, s))).reshape(b, v, -1)
        return masked_mean(per_view, views[:, :, None], (1,))
