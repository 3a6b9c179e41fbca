"""Attention matrices of one case from its fused output (no extra model run).

MedFlexFusion's modality x modality attention, gates and lambdas, and the textual-guidance
attention of the explained task's prompt tokens over Z_all (TGMM Fig. 8), also summarised as
the share each block (modality-specific labs/ecg/echo/cxr, shared) receives.
"""

from __future__ import annotations

import numpy as np

from explain.bundle import AttentionMaps
from explain.context import CaseContext
from model_zoo.case import MODALITIES

BLOCKS: tuple[str, ...] = (*MODALITIES, "shared")


def block_of(label: str) -> str:
    """``"ecg:2"`` -> ``"ecg"``; ``"shared:0"`` -> ``"shared"``; ``"task:x"`` -> ``"task"``."""
    return label.split(":", 1)[0]


def block_shares(weights: np.ndarray, labels: list[str], blocks: tuple[str, ...]) -> dict:
    """Share of the total weight (last axis over ``labels``) that falls in each block."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1, len(labels)).sum(0)
    total = float(w.sum()) or 1.0
    names = [block_of(lab) for lab in labels]
    pairs = list(zip(w, names, strict=True))
    return {b: float(sum(v for v, n in pairs if n == b) / total) for b in blocks}


def prompt_row_labels(ctx: CaseContext) -> list[str]:
    """The task prompt's word pieces (padding dropped), then ``learnable:i``."""
    tok = ctx.model.tokenizer
    prompt = ctx.model.config.task_prompts[ctx.task]
    pieces = tok.convert_ids_to_tokens(tok(prompt)["input_ids"])
    n_learn = ctx.model.guidance.n_learnable
    return pieces + [f"learnable:{i}" for i in range(n_learn)]


def attention_maps(ctx: CaseContext) -> AttentionMaps:
    """The case's attention maps for the explained task."""
    out = ctx.output
    t = ctx.model.task_names.index(ctx.task)
    mask = ctx.model.prompt_mask[t].cpu().numpy()
    n_learn = ctx.model.guidance.n_learnable
    rows = np.concatenate([mask, np.ones(n_learn, dtype=bool)])
    guidance = out.guidance_attention[0, t].float().cpu().numpy()[rows]
    labels = list(out.token_labels)
    return AttentionMaps(
        modalities=list(MODALITIES),
        present=[bool(p) for p in ctx.present[0].cpu().tolist()],
        modality_attention=out.modality_attention[0].float().cpu().numpy(),
        gates=out.gates[0].float().cpu().numpy(),
        lambdas=out.lambdas[0].float().cpu().numpy(),
        guidance=guidance,
        guidance_rows=prompt_row_labels(ctx),
        token_labels=labels,
        guidance_blocks=block_shares(guidance, labels, BLOCKS),
    )
