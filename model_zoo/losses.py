"""Training losses: diagnosis (TGMM Eq. 10-12), report cross-entropy, contrastive (Eq. 16)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from fuselens.model_zoo.case import MODALITIES
from fuselens.model_zoo.encoders.finding_maps import FindingOutput
from fuselens.model_zoo.tasks import TASK_MODALITY


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


def finding_loss(
    findings: dict[str, FindingOutput],
    finding_tasks: dict[str, list[str]],
    labels: torch.Tensor,
    tasks: list[str],
) -> torch.Tensor:
    """Binary cross-entropy of each convolutional encoder's finding logits (see
    :meth:`FusionModel.encode_with_findings`) against the known finding labels."""
    total, terms = labels.new_zeros((), dtype=torch.float32), 0
    for m, (rows, logits, _) in findings.items():
        target = labels[rows][:, [tasks.index(t) for t in finding_tasks[m]]]
        known = target >= 0
        if known.any():
            total = total + F.binary_cross_entropy_with_logits(
                logits.float()[known], target[known].float()
            )
            terms += 1
    return total / max(terms, 1)


def _outside_share(maps: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per map, the share of its (valid) mass outside ``target``; maps ``(n, K, *cells)``,
    target and valid ``(n, 1, *cells)``."""
    dims = tuple(range(2, maps.ndim))
    mass = (maps * valid).sum(dim=dims)
    outside = (maps * valid * (1.0 - target)).sum(dim=dims)
    return outside / (mass + 1e-6)


def _evidence_share(
    modality: str, maps: torch.Tensor, target: torch.Tensor, leads: torch.Tensor | None
) -> torch.Tensor:
    """``(n, K)``: each finding map's share of mass outside ``target`` pooled (area) to the
    map's cells; ECG counts only present ``leads``, echo averages the views that have a mask."""
    if modality == "echo":
        n, v = maps.shape[:2]
        target = F.adaptive_avg_pool3d(target.flatten(0, 1), maps.shape[-3:])
        target = target.reshape(n, v, 1, *maps.shape[-3:])
        valid = (target.flatten(3).sum(-1) > 0).float()[..., None, None, None]
        share = _outside_share(
            maps.flatten(0, 1), target.flatten(0, 1), valid.flatten(0, 1)
        ).reshape(n, v, -1)
        view_ok = valid.flatten(2).amax(-1)[..., None]  # (n, V, 1)
        return (share * view_ok).sum(1) / view_ok.sum(1).clamp_min(1.0)
    if modality == "ecg":
        target = F.adaptive_avg_pool1d(target, maps.shape[-1])[:, None]
        valid = leads[:, None, :, None].float().expand_as(target)
    else:
        target = F.adaptive_avg_pool2d(target[:, None], maps.shape[-2:])
        valid = torch.ones_like(target)
    return _outside_share(maps, target, valid)


def evidence_loss(
    findings: dict[str, FindingOutput],
    evidence: dict[str, tuple[torch.Tensor, torch.Tensor]],
    finding_tasks: dict[str, list[str]],
    labels: torch.Tensor,
    tasks: list[str],
    ecg_leads: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean share of each present finding's map mass outside the case's planted evidence
    mask (see :mod:`fuselens.model_zoo.evidence_targets`), over the rows that have a mask.

    ``evidence[m]`` is ``(targets (B, ...), has_mask (B,))`` for the whole batch; targets are
    pooled (area) to the map's cells. ECG maps count only present leads.
    """
    total, terms = labels.new_zeros((), dtype=torch.float32), 0
    for m, (rows, _, maps) in findings.items():
        if m not in evidence:
            continue
        targets, has = evidence[m]
        keep = has[rows]
        if not keep.any():
            continue
        sel = rows[keep]
        positive = labels[sel][:, [tasks.index(t) for t in finding_tasks[m]]] == 1
        leads = ecg_leads[sel] if m == "ecg" else None
        share = _evidence_share(m, maps[keep].float(), targets[sel].float(), leads)
        total = total + share[positive].sum()
        terms += int(positive.sum())
    return total / max(terms, 1)


def lab_evidence_loss(
    attention: torch.Tensor,
    rows: torch.Tensor,
    lines: torch.Tensor,
    evidence: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Mean share of the lab encoder's pooling attention outside the tokens of the planted
    lab-evidence lines, over the rows that have such lines (the text side of
    :func:`evidence_loss`; with line attention a line's tokens carry only that line).

    ``attention`` ``(n, Q, L)`` is the pool's attention on the batch rows ``rows``; ``lines``
    ``(B, L)`` each token's line (``-1`` special/padding); ``evidence`` is ``(line targets (B,
    n_lines), has (B,))``.
    """
    targets, has = evidence
    keep = has[rows]
    if not keep.any():
        return attention.new_zeros((), dtype=torch.float32)
    sel = rows[keep]
    line = lines[sel]
    t = targets[sel].float()
    inside = torch.gather(t, 1, line.clamp(0, t.shape[1] - 1)) * (line >= 0)
    outside = (attention[keep].float() * (1.0 - inside[:, None, :])).sum(-1)
    return outside.mean()


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
