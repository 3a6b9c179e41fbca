"""MedFlexFusion (TGMM Eq. 1-8) generalised to M modalities and any present subset.

For each query modality i, attention runs over the key/value tokens of every *present*
modality j, each modality's share weighted by a learnt lambda_ij (softmax over present j,
added as log lambda to the logits): a lambda-weighted mix of the present modalities' keys and
values. Absent modalities are masked out of the attention (never zero-filled as if present).
A global sigmoid gate g_i weighs each local fusion L_i into the shared features; the
modality-specific tokens and the shared tokens are concatenated into Z_all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FusionState:
    """What MedFlexFusion produces for a batch."""

    z_all: torch.Tensor  # (B, (M + 1) * T, d): M specific blocks, then the shared block
    z_mask: torch.Tensor  # (B, (M + 1) * T) bool: absent modalities' tokens False
    modality_attention: (
        torch.Tensor
    )  # (B, M, M): query modality -> share of attention per key modality
    token_attention: torch.Tensor  # (B, M, T, M * T): head-averaged attention over all tokens
    gates: torch.Tensor  # (B, M): global gate per modality (0 where absent)
    lambdas: torch.Tensor  # (B, M, M): lambda mixing weights over present modalities


class MedFlexFusion(nn.Module):
    """Fuse ``(B, M, T, d)`` modality tokens given a ``(B, M)`` present mask."""

    def __init__(self, n_modalities: int, d_model: int, n_heads: int, dropout: float = 0.1):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.m, self.h, self.dh = n_modalities, n_heads, d_model // n_heads
        self.modality_embed = nn.Parameter(torch.randn(n_modalities, d_model) * 0.02)
        self.norm = nn.LayerNorm(d_model)
        self.q = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_modalities))
        self.k = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_modalities))
        self.v = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_modalities))
        self.lambda_logits = nn.Parameter(torch.zeros(n_modalities, n_modalities))
        self.out = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(2 * d_model, 1)
        self.specific_norm = nn.LayerNorm(d_model)
        self.shared_norm = nn.LayerNorm(d_model)
        self.shared_ff = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.h, self.dh).transpose(1, 2)  # (B, h, T, dh)

    def forward(self, feats: torch.Tensor, present: torch.Tensor) -> FusionState:
        b, m, t, d = feats.shape
        if m != self.m:
            raise ValueError(f"expected {self.m} modalities, got {m}")
        present = present.bool()
        if not present.any(dim=1).all():
            raise ValueError("every case needs at least one present modality")
        feats = torch.where(present[:, :, None, None], feats, torch.zeros_like(feats))
        x = self.norm(feats + self.modality_embed[None, :, None])
        q = torch.stack([self._heads(self.q[i](x[:, i])) for i in range(m)], 1)
        k = torch.stack([self._heads(self.k[i](x[:, i])) for i in range(m)], 1)
        v = torch.stack([self._heads(self.v[i](x[:, i])) for i in range(m)], 1)
        # logits[b, i, h, t, j, s]: query modality i token t -> key modality j token s
        logits = torch.einsum("bihtc,bjhsc->bihtjs", q, k) / self.dh**0.5
        lam_logits = self.lambda_logits[None].expand(b, m, m)
        lam_logits = lam_logits.masked_fill(~present[:, None, :], float("-inf"))
        log_lam = torch.log_softmax(lam_logits, dim=-1)  # (B, M_i, M_j)
        logits = logits + log_lam[:, :, None, None, :, None]
        flat = logits.reshape(b, m, self.h, t, m * t)
        attn = torch.softmax(flat, dim=-1)
        local = torch.einsum(
            "bihtn,bhnc->bihtc",
            self.drop(attn),
            v.transpose(1, 2).reshape(b, self.h, m * t, self.dh),
        )
        local = self.out(local.transpose(2, 3).reshape(b, m, t, d))  # (B, M, T, d)

        pooled = x.mean(dim=2)  # (B, M, d)
        weights = present.float()
        context = (pooled * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
        gate_in = torch.cat([pooled, context[:, None].expand(b, m, d)], dim=-1)
        gates = torch.sigmoid(self.gate(gate_in)).squeeze(-1) * weights  # (B, M)
        shared = (gates[:, :, None, None] * local).sum(1) / gates.sum(1).clamp_min(1e-6)[
            :, None, None
        ]
        shared = self.shared_norm(shared)
        shared = shared + self.shared_ff(shared)

        specific = self.specific_norm(x + local)
        z_all = torch.cat([specific.reshape(b, m * t, d), shared], dim=1)
        shared_mask = torch.ones(b, t, dtype=torch.bool, device=feats.device)
        z_mask = torch.cat([present[:, :, None].expand(b, m, t).reshape(b, m * t), shared_mask], 1)

        token_attn = attn.mean(dim=2)  # (B, M, T, M*T)
        mod_attn = token_attn.reshape(b, m, t, m, t).sum(-1).mean(2)  # (B, M, M)
        return FusionState(
            z_all=z_all,
            z_mask=z_mask,
            modality_attention=mod_attn,
            token_attention=token_attn,
            gates=gates,
            lambdas=log_lam.exp(),
        )
