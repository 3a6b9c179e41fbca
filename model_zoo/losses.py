"""Training losses: diagnosis (TGMM Eq. 10-12), report cross-entropy, contrastive (Eq. 16)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from model_zoo.case import MODALITIES
from model_zoo.tasks import TASK_MODALITY


def task_label_mask(labels: torch.Tensor, tasks: list[str], present: torch.Tensor) -> torch.Tensor:
    """``(B, n_tasks)`` bool: the label is known and its modality is in the fused subset."""
    known = labels >= 0
    cols = []
    for i, task in enumerate(tasks):
        modality = TASK_MODALITY.get(task)
        cols.append(
            known[:, i]
            if modality is None
            else known[:, i] & present[:, MODALITIES.index(modality)]
        )
    return torch.stack(cols, dim=1)


def diagnosis_loss(
    logits: dict[str, torch.Tensor],
    labels: torch.Tensor,
    tasks: list[str],
    present: torch.Tensor,
    main_task: str,
    main_weight: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy over candidate answers, averaged over known labels (per-task mean)."""
    mask = task_label_mask(labels, tasks, present)
    total = logits[tasks[0]].new_zeros(())
    weight_sum = 0.0
    for i, task in enumerate(tasks):
        rows = mask[:, i]
        if not rows.any():
            continue
        w = main_weight if task == main_task else 1.0
        total = total + w * F.cross_entropy(logits[task][rows].float(), labels[rows, i])
        weight_sum += w
    return total / max(weight_sum, 1e-6)


def report_loss(logits: torch.Tensor, targets: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """Next-word cross-entropy ignoring padding."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad
    )


def contrastive_loss(
    embeddings: dict[str, torch.Tensor], present: torch.Tensor, log_temperature: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE between every pair of modalities over the cases that have both."""
    total, pairs = present.new_zeros((), dtype=torch.float32), 0
    scale = torch.exp(-log_temperature)
    for a, b in itertools.combinations(MODALITIES, 2):
        if a not in embeddings or b not in embeddings:
            continue
        rows = present[:, MODALITIES.index(a)] & present[:, MODALITIES.index(b)]
        if rows.sum() < 2:
            continue
        sim = scale * embeddings[a][rows].float() @ embeddings[b][rows].float().T
        target = torch.arange(sim.shape[0], device=sim.device)
        total = total + 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
        pairs += 1
    return total / max(pairs, 1)
