"""Chest X-ray encoders: a small CNN, or a torchxrayvision-style DenseNet121 (optional).

The DenseNet is ``torchvision.models.densenet121(weights=None)`` with a one-channel stem, so a
torchxrayvision state dict (``features.*``; its classifier and thresholds are ignored) loads
into it from a local file; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import densenet121

from model_zoo.layers import MaskedAttentionPool, conv_block
from model_zoo.preprocess import CXR_MEAN, CXR_STD

XRV_RANGE = 1024.0


class _SpatialTokens(nn.Module):
    """A feature map ``(B, C, h, w)`` -> pooled tokens with a learnt position embedding."""

    def __init__(self, channels: int, grid: int, d_model: int, n_tokens: int, n_heads: int):
        super().__init__()
        self.grid = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Linear(channels, d_model)
        self.pos = nn.Parameter(torch.randn(grid * grid, d_model) * 0.02)
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.grid(fmap).flatten(2).transpose(1, 2)) + self.pos
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return self.pool(tokens, mask)


class SmallCXREncoder(nn.Module):
    """Five conv blocks on ``(B, 1, S, S)`` normalised; last block ``(B, C, S/8, S/8)``."""

    def __init__(self, channels: list[int], d_model: int, n_tokens: int, n_heads: int):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"cxr_channels needs 4 entries, got {len(channels)}")
        specs = ((5, 2), (3, 2), (3, 2), (3, 1))
        blocks, c_in = [], 1
        for c, (k, s) in zip(channels, specs, strict=True):
            blocks.append(conv_block(c_in, c, (k, k), (s, s)))
            c_in = c
        blocks.append(conv_block(c_in, c_in, (3, 3), (1, 1)))
        self.blocks = nn.Sequential(*blocks)
        self.tokens = _SpatialTokens(c_in, 8, d_model, n_tokens, n_heads)

    @property
    def cam_layer(self) -> nn.Module:
        return self.blocks[-1]

    def forward(self, cxr: torch.Tensor) -> torch.Tensor:
        return self.tokens(self.blocks(cxr))


def xrv_densenet_features() -> nn.Module:
    """torchvision DenseNet121 features with torchxrayvision's one-channel stem."""
    net = densenet121(weights=None)
    net.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net.features


class DenseNetCXREncoder(nn.Module):
    """torchxrayvision-style DenseNet121 (input rescaled to its [-1024, 1024] range)."""

    def __init__(self, d_model: int, n_tokens: int, n_heads: int, weights: str | None = None):
        super().__init__()
        self.features = xrv_densenet_features()
        self.relu = nn.ReLU(inplace=False)
        self.tokens = _SpatialTokens(1024, 7, d_model, n_tokens, n_heads)
        if weights:
            self.load_xrv_weights(weights)

    def load_xrv_weights(self, path: str | Path) -> None:
        """Load the ``features.*`` tensors of a torchxrayvision DenseNet state-dict file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"DenseNet121 weights {path} not found (never downloaded)")
        state = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(state, nn.Module):
            state = state.state_dict()
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        if not feats:
            raise ValueError(f"{path}: no 'features.*' tensors: not a DenseNet121 state dict")
        self.features.load_state_dict(feats, strict=True)

    @property
    def cam_layer(self) -> nn.Module:
        return self.features.denseblock4

    def forward(self, cxr: torch.Tensor) -> torch.Tensor:
        unit = cxr * CXR_STD + CXR_MEAN
        fmap = self.relu(self.features((2.0 * unit - 1.0) * XRV_RANGE))
        return self.tokens(fmap)
