"""What every echo reader shares: view names, grey conversion, and the final checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import EchoCine

DEFAULT_FRAME_RATE = 30.0
_VIEW_TEXT = (
    ("A4C", r"\ba4c\b|apical\s*(4|four)|\b(4|four)[\s-]*ch(amber)?\b"),
    ("A2C", r"\ba2c\b|apical\s*(2|two)|\b(2|two)[\s-]*ch(amber)?\b"),
    ("A3C", r"\ba3c\b|apical\s*(3|three)|apical\s*long"),
    ("A5C", r"\ba5c\b|apical\s*(5|five)"),
    ("PLAX", r"\bplax\b|parasternal\s*long"),
    ("PSAX", r"\bpsax\b|parasternal\s*short"),
)
FILENAME_VIEWS = {view.lower(): view for view, _ in _VIEW_TEXT}


def view_from_text(text: str) -> str | None:
    """``"Apical four chamber"`` -> ``"A4C"``; None when no view is named."""
    lowered = text.lower()
    for view, pattern in _VIEW_TEXT:
        if re.search(pattern, lowered):
            return view
    return None


def view_from_filename(path: str | Path) -> str | None:
    """A view token in the file or folder name (``echo_A4C.dcm`` -> ``"A4C"``)."""
    tokens = re.split(r"[^a-z0-9]+", Path(path).stem.lower())
    for token in tokens:
        if token in FILENAME_VIEWS:
            return FILENAME_VIEWS[token]
    return None


def to_grey(frame: np.ndarray) -> np.ndarray:
    """One frame as uint8 grey: colour by Rec. 601 luminance, deeper greys rescaled."""
    arr = np.asarray(frame)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.shape[2] == 1:
            arr = arr[..., 0]
        else:
            arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize > 1:
        arr = arr.astype(np.float64) / 257.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def check_cine_size(path: str | Path, frames: int, rows: int, cols: int) -> None:
    """Refuse cines whose frames or total size (as uint8 grey) pass the limits."""
    if frames < 2:
        raise IngestError(path, "echo", f"{frames} frame: a cine loop needs at least 2")
    limits.check(path, "echo", "image_pixels", rows * cols, f"each {rows} x {cols} frame")
    what = f"{frames} frames of {rows} x {cols}"
    limits.check_bytes(path, "echo", "pixel_mb", frames * rows * cols, what)


def max_frames(rows: int, cols: int) -> int:
    """How many uint8 frames of ``rows`` x ``cols`` fit in the ``pixel_mb`` limit."""
    return int(limits.current().pixel_mb * limits.MB) // max(rows * cols, 1)


def build_cine(
    path: str | Path,
    frames: np.ndarray,
    frame_rate: float | None,
    view: str | None,
    pixel_spacing_mm: tuple[float, float] | None = None,
) -> Reading[EchoCine]:
    """Check a decoded cine and describe it; a missing frame rate becomes the default."""
    warnings: list[str] = []
    if frame_rate is None:
        frame_rate = DEFAULT_FRAME_RATE
        warnings.append(f"no frame rate in the file: assumed {DEFAULT_FRAME_RATE:g} frames/s")
    view = view or "unknown"
    if frames.shape[0] < 2:
        raise IngestError(path, "echo", f"{frames.shape[0]} frame: a cine loop needs at least 2")
    cine = EchoCine(
        frames=frames, frame_rate=float(frame_rate), view=view, pixel_spacing_mm=pixel_spacing_mm
    )
    cine.validate()
    details = {
        "shape": list(frames.shape),
        "frames": int(frames.shape[0]),
        "frame_size": [int(frames.shape[1]), int(frames.shape[2])],
        "view": view,
        "frame_rate": round(float(frame_rate), 3),
    }
    if pixel_spacing_mm is not None:
        details["pixel_spacing"] = [round(v, 6) for v in pixel_spacing_mm]
    return Reading(part=cine, warnings=warnings, details=details)
