"""Small building blocks shared by the encoders and heads: the encoders' conv block and
attention layers that keep their attention weights."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(
    c_in: int, c_out: int, kernel: tuple[int, ...], stride: tuple[int, ...]
) -> nn.Sequential:
    """Conv (2-D or 3-D by ``len(kernel)``, "same" padding by replicating edge values) + batch
    norm + ReLU. Zero padding would give every border its own response, and Grad-CAM++ peaked
    there."""
    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if len(kernel) == 2 else (nn.Conv3d, nn.BatchNorm3d)
    return nn.Sequential(
        conv(
            c_in,
            c_out,
            kernel,
            stride=stride,
            padding=tuple(k // 2 for k in kernel),
            padding_mode="replicate",
            bias=False,
        ),
        norm(c_out),
        nn.ReLU(inplace=False),
    )


def safe_key_mask(mask: torch.Tensor) -> torch.Tensor:
    """A key-valid mask with no all-False row (such rows would give NaN attention)."""
    empty = ~mask.any(dim=-1, keepdim=True)
    return mask | empty


class MaskedAttentionPool(nn.Module):
    """``n_tokens`` learnt queries attend over valid tokens: ``(B, N, d) -> (B, n_tokens, d)``."""

    def __init__(self, d_model: int, n_tokens: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model)
        )
        self.last_attention: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        out, w = self.attn(q, tokens, tokens, key_padding_mask=~safe_key_mask(mask))
        self.last_attention = w
        out = self.norm(out + q)
        return out + self.mlp(out)


class AttentionDecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer whose cross-attention weights are kept.

    Returns ``(x, cross_attention)`` with the attention averaged over heads,
    shaped ``(B, T, N)`` over the memory tokens.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.cross_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm3 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, 2 * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * d_model, d_model),
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        causal: bool = False,
        pad_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm1(x)
        causal_mask = None
        if causal:
            t = x.shape[1]
            causal_mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        key_pad = None if pad_mask is None else ~pad_mask
        sa, _ = self.self_attn(
            h, h, h, attn_mask=causal_mask, key_padding_mask=key_pad, need_weights=False
        )
        x = x + self.drop(sa)
        h = self.norm2(x)
        ca, w = self.cross_attn(h, memory, memory, key_padding_mask=~safe_key_mask(memory_mask))
        x = x + self.drop(ca)
        x = x + self.drop(self.ff(self.norm3(x)))
        return x, w
