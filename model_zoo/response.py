"""The response module (TGMM Eq. 10-12): a small transformer decoder that scores answers.

A learnt query per task decodes over [that task's guided prompt; Z_all]; its output is
compared (scaled cosine) with the embeddings of the task's candidate answers ("no", "yes"),
giving one logit per answer. The diagnosis loss is the cross-entropy over the answers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fuselens.model_zoo.layers import AttentionDecoderLayer


class ResponseModule(nn.Module):
    """Guided prompts + Z_all -> answer logits ``(B, n_tasks, n_answers)``."""

    def __init__(
        self,
        n_tasks: int,
        n_answers: int,
        answer_dim: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.task_query = nn.Parameter(torch.randn(n_tasks, d_model) * 0.02)
        self.layers = nn.ModuleList(
            AttentionDecoderLayer(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, d_model)
        self.answer_proj = nn.Sequential(nn.LayerNorm(answer_dim), nn.Linear(answer_dim, d_model))
        self.answer_bias = nn.Parameter(torch.zeros(n_tasks, n_answers))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(
        self,
        guided: torch.Tensor,
        guided_mask: torch.Tensor,
        z_all: torch.Tensor,
        z_mask: torch.Tensor,
        answer_states: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns logits ``(B, n_tasks, A)``, task states ``(B, n_tasks, d)`` and the
        last layer's attention ``(B, n_tasks, P' + N)`` over [guided prompt; Z_all]."""
        b, n, p, d = guided.shape
        memory = torch.cat([guided, z_all[:, None].expand(b, n, -1, -1)], dim=2)
        memory = memory.reshape(b * n, -1, d)
        mask = torch.cat(
            [guided_mask[None].expand(b, -1, -1), z_mask[:, None].expand(b, n, -1)], dim=2
        ).reshape(b * n, -1)
        x = self.task_query[None].expand(b, -1, -1).reshape(b * n, 1, d)
        attn = None
        for layer in self.layers:
            x, attn = layer(x, memory, mask)
        states = self.norm(x).reshape(b, n, d)
        answers = F.normalize(self.answer_proj(answer_states), dim=-1)  # (n_tasks, A, d)
        h = F.normalize(self.head(states), dim=-1)
        logits = self.logit_scale.exp() * torch.einsum("bnd,nad->bna", h, answers)
        return logits + self.answer_bias, states, attn.reshape(b, n, -1)


class ContrastiveProjection(nn.Module):
    """Per-modality projection of mean encoder tokens to a shared unit sphere (TGMM Eq. 16)."""

    def __init__(self, modalities: tuple[str, ...], d_model: int, dim: int):
        super().__init__()
        self.heads = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, dim))
                for m in modalities
            }
        )
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.1)))

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: F.normalize(self.heads[m](f.mean(dim=1)), dim=-1) for m, f in features.items()}
