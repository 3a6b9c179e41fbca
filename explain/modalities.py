"""One description per modality, in place of per-modality branches in every method.

A :class:`Modality` says, for the contract's standard input layout of its modality
(:mod:`fuselens.model_zoo.contract`): which input elements are real (missing leads and views
are not), its feature grid (for occlusion, deletion/insertion and the sanity test), what a
removed feature becomes, how Grad-CAM sees the input, how a map on the input returns to the
case's own geometry, the evidence summary of such a map, and the planted evidence mask of a
synthetic case in that geometry. Methods and metrics look a modality up in :data:`MODALITY`.

Feature grids follow the demo model's training-time erasing (``model_zoo.erasing``): an ECG
lead x 0.2 s window, an echo view x frame x 1/8-of-the-side patch, a CXR 1/16-of-the-side
patch, a lab word piece. Removal values: 0 mV (ECG), the loop's mean (echo: black is what
blood in a cavity looks like, so blacking out walls makes a ventricle look dilated; on an
earlier demo checkpoint Grad-CAM++'s deletion curve fell below random in 0 of 19 echo
evidence cases with a black baseline, in 19 of 19 with the loop's mean), the image mean
(CXR), ``[MASK]`` (labs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fuselens.explain.bundle import ModalityMaps
from fuselens.explain.evidence import cxr_evidence, ecg_evidence, echo_evidence
from fuselens.explain.geometry import cxr_to_native, ecg_to_native, echo_to_native
from fuselens.model_zoo.case import ECHO_VIEWS, STANDARD_LEADS, PatientCase
from fuselens.model_zoo.contract import Batch
from fuselens.model_zoo.erasing import ECG_WINDOW

ECHO_CELLS = 8  # patches per side of an echo frame
CXR_CELLS = 16  # patches per side of a radiograph
OCCLUSION_FRAMES = 4  # echo frames occluded together
LABEL = "heart_failure"  # the synthetic cohort's diagnosis label (its masks are for it)


def _cells(size: int, n: int) -> np.ndarray:
    """``(size, size)`` ids of an ``n`` x ``n`` grid of square cells."""
    cell = np.minimum(np.arange(size) * n // size, n - 1)
    return cell[:, None] * n + cell[None, :]


@dataclass
class Modality:
    """How explanations treat one modality's standard input (row 0 of a :class:`Batch`)."""

    name: str
    spatial: bool = True  # a map over the input (False: labs, explained per word piece)

    def valid(self, batch: Batch) -> np.ndarray:
        """Bool, shaped like the input without its batch axis: elements that are real."""
        return np.ones(batch.tensors[self.name].shape[1:], dtype=bool)

    def grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        """Feature id of every input element (no batch axis); -1: never removed."""
        raise NotImplementedError

    def occlusion_grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        """The grid occlusion ablates (one model call per feature): :meth:`grid` unless a
        modality has too many features for that."""
        return self.grid(batch, model)

    def removal(self, x: torch.Tensor, model: Any = None) -> torch.Tensor:
        """What removed features of ``x`` ``(B, ...)`` become, shaped like ``x``."""
        dims = tuple(range(1, x.ndim))
        return x.float().mean(dim=dims, keepdim=True).to(x.dtype).expand_as(x)

    def to_cam(self, x: torch.Tensor) -> torch.Tensor:
        """The input as pytorch-grad-cam is given it (its spatial axes are the map's)."""
        return x

    def from_cam(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Inverse of :meth:`to_cam` on a batch of inputs."""
        return x

    def cam_to_input(self, cam: np.ndarray, batch: Batch) -> np.ndarray:
        """A Grad-CAM map over :meth:`to_cam`'s spatial axes -> shaped like the input."""
        return cam.reshape(batch.tensors[self.name].shape[1:])

    def to_case(self, m: np.ndarray, case: PatientCase) -> Any:
        """A map shaped like the input (no batch axis) -> the case's own geometry."""
        raise NotImplementedError

    def evidence(self, native: Any, case: PatientCase) -> dict[str, Any]:
        """JSON-ready summary of where a map (in the case's geometry) points."""
        raise NotImplementedError

    def store(self, maps: ModalityMaps, native: Any, case: PatientCase) -> None:
        """Put a map in the case's geometry into a method's :class:`ModalityMaps`."""
        setattr(maps, self.name, native)

    def evidence_mask(self, case: PatientCase) -> Any:
        """A synthetic case's planted evidence in the case's geometry, or ``None``."""
        return None

    def flatten(self, native: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
        """A native map and a mask of the same geometry as two flat arrays."""
        return np.asarray(native).ravel(), np.asarray(mask).ravel()


def _planted(case: PatientCase, modality: str) -> Any:
    truth = case.truth
    if truth is None or truth.labels.get(LABEL) != 1 or not truth.masks:
        return None
    return truth.masks.get(modality)


class ECGModality(Modality):
    """``(1, 12, 2500)`` mV at 250 Hz in the standard lead order; ``ecg.leads`` ``(12,)``."""

    def valid(self, batch: Batch) -> np.ndarray:
        leads = batch.tensors["ecg.leads"][0].cpu().numpy().astype(bool)
        shape = batch.tensors["ecg"].shape[1:]
        return np.broadcast_to(leads[:, None], shape[-2:]).reshape(shape).copy()

    def grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        shape = batch.tensors["ecg"].shape[1:]
        n_leads, length = shape[-2:]
        n_win = -(-length // ECG_WINDOW)
        index = np.arange(n_leads)[:, None] * n_win + (np.arange(length) // ECG_WINDOW)[None]
        index = np.broadcast_to(index, shape).copy()
        index[~self.valid(batch)] = -1
        return index

    def removal(self, x: torch.Tensor, model: Any = None) -> torch.Tensor:
        return torch.zeros_like(x)

    def to_case(self, m: np.ndarray, case: PatientCase) -> np.ndarray:
        return ecg_to_native(m.reshape(len(STANDARD_LEADS), -1), case.ecg)

    def store(self, maps: ModalityMaps, native: np.ndarray, case: PatientCase) -> None:
        """The map with its rows' lead names and sampling rate (the case's own)."""
        maps.ecg = native
        maps.ecg_leads = list(case.ecg.lead_names)
        maps.ecg_rate_hz = float(case.ecg.sampling_rate)

    def evidence(self, native: np.ndarray, case: PatientCase) -> dict[str, Any]:
        return ecg_evidence(native, list(case.ecg.lead_names), float(case.ecg.sampling_rate))

    def evidence_mask(self, case: PatientCase) -> np.ndarray | None:
        mask = _planted(case, "ecg")
        if mask is None or case.ecg is None:
            return None
        mask = np.stack([mask[STANDARD_LEADS.index(n)] for n in case.ecg.lead_names])
        return mask if mask.any() else None


class EchoModality(Modality):
    """``(V, F, S, S)`` over ``ECHO_VIEWS``; ``echo.views`` ``(V,)``. Grad-CAM sees the views
    stacked in depth, ``(1, V*F, S, S)``, so one weight per channel covers every view."""

    def valid(self, batch: Batch) -> np.ndarray:
        views = batch.tensors["echo.views"][0].cpu().numpy().astype(bool)
        shape = batch.tensors["echo"].shape[1:]
        return np.broadcast_to(views[:, None, None, None], shape).copy()

    def grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        v, f, s, _ = batch.tensors["echo"].shape[1:]
        per_frame = _cells(s, ECHO_CELLS)
        index = np.arange(v * f)[:, None, None] * ECHO_CELLS**2 + per_frame[None]
        index = index.reshape(v, f, s, s)
        index[~self.valid(batch)] = -1
        return index

    def occlusion_grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        """View x 4-frame group x 1/4-of-the-side patch (192 features for 3 views of 16
        frames, against 3,072 in :meth:`grid`: occlusion took 53 s for the echo alone)."""
        v, f, s, _ = batch.tensors["echo"].shape[1:]
        groups = -(-f // OCCLUSION_FRAMES)
        cells = ECHO_CELLS // 2
        per_frame = _cells(s, cells)
        group = np.arange(f) // OCCLUSION_FRAMES
        index = (np.arange(v)[:, None] * groups + group[None])[:, :, None, None] * cells**2
        index = index + per_frame[None, None]
        index[~self.valid(batch)] = -1
        return index

    def to_cam(self, x: torch.Tensor) -> torch.Tensor:
        b, v, f, s, _ = x.shape
        return x.reshape(b, 1, v * f, s, s)

    def from_cam(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        v, f, s, _ = batch.tensors["echo"].shape[1:]
        return x.reshape(x.shape[0], v, f, s, s)

    def to_case(self, m: np.ndarray, case: PatientCase) -> dict[str, np.ndarray]:
        return {
            v: echo_to_native(m[i], case.echo[v])
            for i, v in enumerate(ECHO_VIEWS)
            if v in case.echo
        }

    def evidence(self, native: dict[str, np.ndarray], case: PatientCase) -> dict[str, Any]:
        return echo_evidence(native)

    def evidence_mask(self, case: PatientCase) -> dict[str, np.ndarray] | None:
        views = {v: m for v, m in (_planted(case, "echo") or {}).items() if v in case.echo}
        views = {v: m for v, m in views.items() if m.any()}
        return views or None

    def flatten(self, native: dict, mask: dict) -> tuple[np.ndarray, np.ndarray]:
        views = sorted(mask)
        return (
            np.concatenate([native[v].ravel() for v in views]),
            np.concatenate([mask[v].ravel() for v in views]),
        )


class CXRModality(Modality):
    """``(1, S, S)``, in whatever value range the model reads."""

    def grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        s = batch.tensors["cxr"].shape[-1]
        return _cells(s, CXR_CELLS)[None]

    def to_case(self, m: np.ndarray, case: PatientCase) -> np.ndarray:
        return cxr_to_native(m.reshape(m.shape[-2:]), case.cxr)

    def evidence(self, native: np.ndarray, case: PatientCase) -> dict[str, Any]:
        return cxr_evidence(native, case.cxr.view_position)

    def evidence_mask(self, case: PatientCase) -> np.ndarray | None:
        mask = _planted(case, "cxr")
        return mask if mask is not None and mask.any() else None


class LabsModality(Modality):
    """Word-piece ids ``(L,)``; a feature is one word piece (special tokens never removed)."""

    def grid(self, batch: Batch, model: Any = None) -> np.ndarray:
        ids = batch.tensors["labs"][0].cpu().numpy()
        special = np.isin(ids, model.tokenizer.all_special_ids)
        index = np.full(ids.shape, -1, dtype=np.int64)
        index[~special] = np.arange(int((~special).sum()))
        return index

    def removal(self, x: torch.Tensor, model: Any = None) -> torch.Tensor:
        return torch.full_like(x, model.tokenizer.mask_token_id)

    def evidence_mask(self, case: PatientCase) -> list[str] | None:
        mask = _planted(case, "labs")
        return list(mask) if mask else None


MODALITY: dict[str, Modality] = {
    "labs": LabsModality("labs", spatial=False),
    "ecg": ECGModality("ecg"),
    "echo": EchoModality("echo"),
    "cxr": CXRModality("cxr"),
}
