"""One geometry for every case's maps, so maps of a cohort can be averaged and clustered.

- ECG: the 12 standard leads (a lead the case lacks is 0) x ``ECG_BINS`` equal bins of the
  record (each the mean of its samples), whatever the record's length and rate;
- echo: the mean over frames and over the case's views of ``ECHO_GRID`` x ``ECHO_GRID``
  box-averaged cells of the sector image;
- CXR: ``CXR_GRID`` x ``CXR_GRID`` box-averaged cells of the radiograph.

A mask (a cue's region, a finding's evidence) goes through the same pooling, giving the
share of each cell it covers.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from fuselens.explain.bundle import ModalityMaps
from fuselens.model_zoo.case import STANDARD_LEADS

ECG_BINS = 250
ECHO_GRID = 56
CXR_GRID = 64
SHAPES: dict[str, tuple[int, ...]] = {
    "ecg": (len(STANDARD_LEADS), ECG_BINS),
    "echo": (ECHO_GRID, ECHO_GRID),
    "cxr": (CXR_GRID, CXR_GRID),
}


def pool_time(a: np.ndarray, bins: int = ECG_BINS) -> np.ndarray:
    """(..., T) -> (..., bins): the mean of each of ``bins`` equal stretches of T."""
    a = np.asarray(a, dtype=np.float32)
    edges = np.linspace(0, a.shape[-1], bins + 1).round().astype(int)
    edges = np.minimum(edges[:-1], a.shape[-1] - 1)
    sums = np.add.reduceat(a, edges, axis=-1)
    counts = np.diff(np.append(edges, a.shape[-1])).clip(min=1)
    return (sums / counts).astype(np.float32)


def pool_image(a: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (size, size) by box averaging."""
    img = Image.fromarray(np.asarray(a, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def ecg_grid(values: np.ndarray, leads: list[str]) -> np.ndarray:
    """(n_leads, T) in the case's lead order -> the 12 x ``ECG_BINS`` grid."""
    out = np.zeros(SHAPES["ecg"], dtype=np.float32)
    pooled = pool_time(values)
    for row, name in enumerate(leads):
        if name in STANDARD_LEADS:
            out[STANDARD_LEADS.index(name)] = pooled[row]
    return out


def echo_grid(views: dict[str, np.ndarray]) -> np.ndarray:
    """view -> (F, H, W) -> the frame- and view-mean ``ECHO_GRID`` grid."""
    grids = [
        pool_image(np.asarray(v, dtype=np.float32).mean(axis=0), ECHO_GRID) for v in views.values()
    ]
    return np.mean(grids, axis=0).astype(np.float32)


def cxr_grid(image: np.ndarray) -> np.ndarray:
    return pool_image(image, CXR_GRID)


def common_maps(maps: ModalityMaps | None) -> dict[str, np.ndarray]:
    """Each spatial modality's map of ``maps`` on the common geometry."""
    if maps is None:
        return {}
    out = {}
    if maps.ecg is not None:
        out["ecg"] = ecg_grid(maps.ecg, maps.ecg_leads)
    if maps.echo:
        out["echo"] = echo_grid(maps.echo)
    if maps.cxr is not None:
        out["cxr"] = cxr_grid(maps.cxr)
    return out
