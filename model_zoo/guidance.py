"""Textual guidance (TGMM Eq. 9): a task prompt guides what is read from the fused features.

Each task's prompt is its human-written question (frozen text-encoder states) followed by
learnable prompt tokens; one transformer encoder layer runs over it. The prompt tokens then
query Z_all through gated cross-attention (tanh gate, as in Flamingo), and the attention over
the modality-specific and shared tokens of Z_all is returned.
"""

from __future__ import annotations

import torch
from torch import nn

from fuselens.model_zoo.layers import safe_key_mask


class TextualGuidance(nn.Module):
    """Prompts ``(n_tasks, P, H)`` + Z_all ``(B, N, d)`` -> guided ``(B, n_tasks, P', d)``."""

    def __init__(
        self,
        n_tasks: int,
        prompt_dim: int,
        d_model: int,
        n_heads: int,
        n_learnable: int,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.prompt_proj = nn.Sequential(nn.LayerNorm(prompt_dim), nn.Linear(prompt_dim, d_model))
        self.learnable = nn.Parameter(torch.randn(n_tasks, n_learnable, d_model) * 0.02)
        self.encoder = nn.TransformerEncoderLayer(
            d_model, n_heads, 2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.cross = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(d_model)
        self.gate = nn.Parameter(torch.tensor(0.5))
        self.n_learnable = n_learnable

    def encode_prompts(
        self, prompt_states: torch.Tensor, prompt_mask: torch.Tensor
    ) -> torch.Tensor:
        """One transformer layer over [question; learnable tokens]: ``(n_tasks, P', d)``."""
        n_tasks = prompt_states.shape[0]
        tokens = torch.cat([self.prompt_proj(prompt_states), self.learnable], dim=1)
        ones = torch.ones(n_tasks, self.n_learnable, dtype=torch.bool, device=tokens.device)
        mask = torch.cat([prompt_mask.bool(), ones], dim=1)
        return self.encoder(tokens, src_key_padding_mask=~mask), mask

    def forward(
        self,
        prompt_states: torch.Tensor,
        prompt_mask: torch.Tensor,
        z_all: torch.Tensor,
        z_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns guided prompts ``(B, n_tasks, P', d)``, their mask ``(n_tasks, P')`` and the
        cross-attention ``(B, n_tasks, P', N)`` over the Z_all tokens."""
        prompts, mask = self.encode_prompts(prompt_states, prompt_mask)
        b, n = z_all.shape[0], prompts.shape[0]
        q = prompts[None].expand(b, -1, -1, -1).reshape(b * n, prompts.shape[1], -1)
        kv = z_all[:, None].expand(-1, n, -1, -1).reshape(b * n, z_all.shape[1], -1)
        key_mask = z_mask[:, None].expand(-1, n, -1).reshape(b * n, -1)
        out, w = self.cross(self.cross_norm(q), kv, kv, key_padding_mask=~safe_key_mask(key_mask))
        guided = q + torch.tanh(self.gate) * out
        p = prompts.shape[1]
        return guided.reshape(b, n, p, -1), mask, w.reshape(b, n, p, -1)
