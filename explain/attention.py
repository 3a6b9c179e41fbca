"""Attention of one case, where the model exposes it (the ``AttentionReader`` capability).

The matrices are the model's own (for the demo model: MedFlexFusion's modality x modality
attention and lambdas, and the task prompt's guidance attention over Z_all, TGMM Fig. 8).
"""

from __future__ import annotations

import numpy as np

from fuselens.explain.bundle import AttentionMaps
from fuselens.explain.context import CaseContext
from fuselens.model_zoo.contract import AttentionReader


def has_attention(ctx: CaseContext) -> bool:
    return isinstance(ctx.model, AttentionReader)


def attention_maps(ctx: CaseContext) -> AttentionMaps:
    """The case's attention matrices for the explained task."""
    att = ctx.model.attention(ctx.batch, ctx.task, features=ctx.features)
    titles = list(att.matrices)
    return AttentionMaps(
        titles=titles,
        matrices=[np.asarray(att.matrices[t], dtype=np.float32) for t in titles],
        rows=[list(att.rows[t]) for t in titles],
        columns=[list(att.columns[t]) for t in titles],
        block_shares=dict(att.block_shares),
    )
