"""Maps on the model's input grid back to the case's own geometry, inverting preprocessing.

ECG: canonical leads at 250 Hz (the first 10 s) -> the case's lead order and sampling rate.
Echo: ``F`` frames sampled evenly over the loop, resized to ``S x S`` -> every stored frame at
the stored frame size. CXR: ``S x S`` -> the stored image size. Maps stay in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fuselens.model_zoo.case import CXR, ECG, STANDARD_LEADS, EchoCine
from fuselens.model_zoo.preprocess import ECG_RATE_HZ, sample_frame_indices


def resize_map(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(..., h, w)`` -> ``(..., H, W)`` by bilinear interpolation (half-pixel centres)."""
    lead = m.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)).reshape(-1, 1, *m.shape[-2:])
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *shape).numpy()


def ecg_to_native(cam: np.ndarray, ecg: ECG) -> np.ndarray:
    """``(12, n)`` canonical-lead map at 250 Hz -> ``(n_leads, samples)`` of ``ecg``."""
    n_model = cam.shape[1]
    t_model = np.arange(n_model) / ECG_RATE_HZ
    t_native = np.arange(ecg.signal.shape[1]) / float(ecg.sampling_rate)
    out = np.zeros(ecg.signal.shape, dtype=np.float32)
    for row, name in enumerate(ecg.lead_names):
        canonical = cam[STANDARD_LEADS.index(name)]
        out[row] = np.interp(t_native, t_model, canonical, right=0.0)
    return out


def echo_to_native(cam: np.ndarray, cine: EchoCine) -> np.ndarray:
    """``(F, S, S)`` map of the sampled frames -> ``(frames, H, W)`` of the stored cine."""
    n_native, h, w = cine.frames.shape
    idx = sample_frame_indices(n_native, cam.shape[0])
    spatial = resize_map(cam, (h, w))
    positions, inverse = np.unique(idx, return_inverse=True)
    sums = np.zeros((len(positions), h, w), dtype=np.float64)
    np.add.at(sums, inverse, spatial)
    per_frame = sums / np.bincount(inverse)[:, None, None]
    if len(positions) == 1:
        return np.repeat(per_frame.astype(np.float32), n_native, axis=0)
    frac = np.interp(np.arange(n_native), positions, np.arange(len(positions)))
    lo = np.floor(frac).astype(int).clip(0, len(positions) - 2)
    wt = (frac - lo)[:, None, None]
    return ((1 - wt) * per_frame[lo] + wt * per_frame[lo + 1]).astype(np.float32)


def cxr_to_native(cam: np.ndarray, cxr: CXR) -> np.ndarray:
    """``(S, S)`` map -> ``(H, W)`` of the stored radiograph."""
    return resize_map(cam, cxr.image.shape).clip(0.0, 1.0)
