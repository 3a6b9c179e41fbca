"""Planted evidence masks on the model's input grid, for training the finding maps to look
where the evidence is (attention supervision: "right for the right reasons", Ross et al.
2017; GAIN, Li et al. 2018).

Each mask goes through the geometry of its modality's preprocessing (``model_zoo.preprocess``),
without the intensity steps: ECG at 250 Hz, first 10 s, canonical leads ``(12, 2500)``; echo
frames sampled evenly over the loop, area-resized to ``(V, F, 16, 16)``; CXR area-resized to
``(S, S)``. Values are the share of each cell inside the mask. Labs: one value per lab-text
line, 1 on the lines of the planted lab evidence. Only synthetic cases have masks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fuselens.model_zoo.case import ECHO_VIEWS, STANDARD_LEADS, PatientCase
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.model import CAM_ENCODERS
from fuselens.model_zoo.preprocess import ECG_RATE_HZ, ECG_SAMPLES, sample_frame_indices

ECHO_TARGET_SIZE = 16


def _area(mask: np.ndarray, size: int) -> np.ndarray:
    """``(..., H, W)`` bool -> ``(..., size, size)`` float16 share of each cell in the mask."""
    lead = mask.shape[:-2]
    t = torch.from_numpy(mask.astype(np.float32)).reshape(-1, 1, *mask.shape[-2:])
    out = F.interpolate(t, size=(size, size), mode="area")
    return out.reshape(*lead, size, size).numpy().astype(np.float16)


def ecg_target(mask: np.ndarray, rate: float) -> np.ndarray:
    """``(12, samples)`` canonical-lead mask at ``rate`` Hz -> ``(12, 2500)`` at 250 Hz."""
    t = np.arange(ECG_SAMPLES) / ECG_RATE_HZ
    idx = np.round(t * rate).astype(np.int64)
    out = np.zeros((len(STANDARD_LEADS), ECG_SAMPLES), dtype=np.float16)
    inside = idx < mask.shape[1]
    out[:, inside] = mask[:, idx[inside]]
    return out


def echo_target(masks: dict[str, np.ndarray], n_frames: int) -> np.ndarray:
    """View -> ``(frames, H, W)`` masks -> ``(V, n_frames, 16, 16)`` in ``ECHO_VIEWS`` order."""
    out = np.zeros((len(ECHO_VIEWS), n_frames, ECHO_TARGET_SIZE, ECHO_TARGET_SIZE), np.float16)
    for i, view in enumerate(ECHO_VIEWS):
        if view in masks:
            m = masks[view]
            out[i] = _area(m[sample_frame_indices(m.shape[0], n_frames)], ECHO_TARGET_SIZE)
    return out


def evidence_targets(case: PatientCase, config: ModelConfig) -> dict[str, np.ndarray]:
    """The case's non-empty evidence masks of ECG, echo and CXR on the model's grid."""
    masks = case.truth.masks if case.truth is not None else {}
    out: dict[str, np.ndarray] = {}
    if case.ecg is not None and masks.get("ecg") is not None and masks["ecg"].any():
        out["ecg"] = ecg_target(masks["ecg"], float(case.ecg.sampling_rate))
    views = {v: m for v, m in masks.get("echo", {}).items() if v in case.echo and m.any()}
    if views:
        out["echo"] = echo_target(views, config.echo_frames)
    if case.cxr is not None and masks.get("cxr") is not None and masks["cxr"].any():
        out["cxr"] = _area(masks["cxr"], config.cxr_size)
    if case.labs is not None and masks.get("labs"):
        out["labs"] = np.isin(case.labs.line_names(), masks["labs"]).astype(np.float16)
    return out


def evidence_batch(
    targets: list[dict[str, np.ndarray]], idx: list[int], device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per modality with a mask in some of the cases ``idx``: ``(targets (B, ...), has (B,))``,
    zeros where a case has no mask (lab line targets are zero-padded to the longest)."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for m in (*CAM_ENCODERS, "labs"):
        shapes = [targets[i][m].shape for i in idx if m in targets[i]]
        if not shapes:
            continue
        stack = np.zeros((len(idx), *np.max(shapes, axis=0)), dtype=np.float16)
        has = np.zeros(len(idx), dtype=bool)
        for row, i in enumerate(idx):
            if m in targets[i]:
                t = targets[i][m]
                stack[(row, *(slice(0, n) for n in t.shape))], has[row] = t, True
        out[m] = (torch.from_numpy(stack).to(device), torch.from_numpy(has).to(device))
    return out


def training_evidence(case: PatientCase, config: ModelConfig) -> dict[str, np.ndarray]:
    """The case's grid masks as loaded (``GroundTruth.grid_masks``), else computed from its
    full-size masks."""
    if case.truth is None:
        return {}
    return case.truth.grid_masks or evidence_targets(case, config)
