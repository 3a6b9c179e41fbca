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

from fuselens.model_zoo.encoders.finding_maps import FindingMaps
from fuselens.model_zoo.estimates import grid_summary
from fuselens.model_zoo.layers import MaskedAttentionPool, conv_block
from fuselens.model_zoo.preprocess import CXR_MEAN, CXR_STD

XRV_RANGE = 1024.0


class _SpatialTokens(nn.Module):
    """A feature map ``(B, C, h, w)`` -> finding maps -> pooled tokens with a learnt position
    embedding, finding logits (each map's mean) and the maps."""

    def __init__(
        self, channels: int, grid: int, d_model: int, n_tokens: int, n_heads: int, n_findings: int
    ):
        super().__init__()
        self.findings = FindingMaps(channels, n_findings, 2)
        self.grid = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Linear(n_findings, d_model)
        self.pos = nn.Parameter(torch.randn(grid * grid, d_model) * 0.02)
        self.pool = MaskedAttentionPool(d_model, n_tokens, n_heads)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        maps = self.findings(fmap)
        tokens = self.proj(self.grid(maps).flatten(2).transpose(1, 2)) + self.pos
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return self.pool(tokens, mask), self.findings.logits(maps, None, (2, 3)), maps


class SmallCXREncoder(nn.Module):
    """Five conv blocks on ``(B, 1, S, S)`` normalised; last block ``(B, C, S/8, S/8)``."""

    def __init__(
        self, channels: list[int], d_model: int, n_tokens: int, n_heads: int, n_findings: int
    ):
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
        self.tokens = _SpatialTokens(c_in, 8, d_model, n_tokens, n_heads, n_findings)

    @property
    def findings(self) -> FindingMaps:
        return self.tokens.findings

    @property
    def cam_layer(self) -> nn.Module:
        return self.findings

    def encode(self, cxr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens ``(B, T, d)``, finding logits ``(B, K)`` and finding maps ``(B, K, h, w)``."""
        return self.tokens(self.blocks(cxr))

    def summary(self, cxr: torch.Tensor) -> torch.Tensor:
        """``(B, D)``: the last block's :func:`grid_summary` (what the CTR head reads)."""
        return grid_summary(self.blocks(cxr))

    def forward(self, cxr: torch.Tensor) -> torch.Tensor:
        return self.encode(cxr)[0]


def xrv_densenet_features() -> nn.Module:
    """torchvision DenseNet121 features with torchxrayvision's one-channel stem."""
    net = densenet121(weights=None)
    net.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net.features


class DenseNetCXREncoder(nn.Module):
    """torchxrayvision-style DenseNet121 (input rescaled to its [-1024, 1024] range)."""

    def __init__(
        self,
        d_model: int,
        n_tokens: int,
        n_heads: int,
        n_findings: int,
        weights: str | None = None,
    ):
        super().__init__()
        self.features = xrv_densenet_features()
        self.relu = nn.ReLU(inplace=False)
        self.tokens = _SpatialTokens(1024, 7, d_model, n_tokens, n_heads, n_findings)
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
    def findings(self) -> FindingMaps:
        return self.tokens.findings

    @property
    def cam_layer(self) -> nn.Module:
        return self.findings

    def encode(self, cxr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens ``(B, T, d)``, finding logits ``(B, K)`` and finding maps ``(B, K, h, w)``."""
        return self.tokens(self._features(cxr))

    def _features(self, cxr: torch.Tensor) -> torch.Tensor:
        unit = cxr * CXR_STD + CXR_MEAN
        return self.relu(self.features((2.0 * unit - 1.0) * XRV_RANGE))

    def summary(self, cxr: torch.Tensor) -> torch.Tensor:
        """``(B, D)``: the last block's :func:`grid_summary` (what the CTR head reads)."""
        return grid_summary(self._features(cxr))

    def forward(self, cxr: torch.Tensor) -> torch.Tensor:
        return self.encode(cxr)[0]
