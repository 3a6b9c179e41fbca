"""ECG, echo and CXR panels: the signal or image as read, with its Grad-CAM++ overlay.

Echo loops are written as H.264 MP4 files (one per view, on parallel threads: PyAV's encoder
runs outside Python's lock: three 32-frame loops at once took 0.18 s, one 0.11 s); frames are
enlarged for display before the overlay is blended.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import plotly.graph_objects as go

from fuselens.app.figures.ecg_print import ecg_print_figure
from fuselens.app.figures.loops import write_loop
from fuselens.app.figures.overlays import (
    cam_overlay,
    cxr_overlay,
    echo_overlay_frames,
    resample_cam_frames,
)
from fuselens.explain.bundle import ModalityMaps
from fuselens.explain.methods import REGISTRY
from fuselens.model_zoo.case import ECHO_VIEWS, EchoCine, PatientCase

ECHO_SLOTS = 3
ECHO_DISPLAY_SIDE = 256
CXR_DISPLAY_SIDE = 768
ECG_PRINT_HEIGHT = 900
BBOX_RGB = (255, 0, 160)


def ecg_panel(case: PatientCase, gradcam: ModalityMaps | None) -> go.Figure | None:
    """The 12-lead print, shaded with the chosen map when it has run."""
    if case.ecg is None:
        return None
    heat = None
    if gradcam is not None and gradcam.ecg is not None:
        order = [gradcam.ecg_leads.index(lead) for lead in case.ecg.lead_names]
        heat = np.asarray(gradcam.ecg)[order]
    label = method_label(gradcam)
    return ecg_print_figure(case.ecg, heat, heat_label=label, height=ECG_PRINT_HEIGHT)


def method_label(maps: ModalityMaps | None) -> str:
    """The name of the method that drew ``maps`` (``"map"`` before any has run)."""
    return REGISTRY[maps.method].label if maps is not None and maps.method in REGISTRY else "map"


def echo_slots(case: PatientCase) -> list[str]:
    """The echo views shown, standard views first, at most :data:`ECHO_SLOTS`."""
    views = sorted(case.echo, key=lambda v: (ECHO_VIEWS.index(v) if v in ECHO_VIEWS else 99, v))
    return views[:ECHO_SLOTS]


def display_size(shape: Sequence[int], side: int) -> tuple[int, int]:
    """``(height, width)`` with the longer side scaled to ``side``."""
    h, w = int(shape[0]), int(shape[1])
    scale = side / max(h, w)
    return max(2, round(h * scale)), max(2, round(w * scale))


def upscale_frames(frames: np.ndarray, side: int) -> np.ndarray:
    """Frames ``(F, H, W)`` resized (bicubic) so the longer side is ``side``."""
    h, w = display_size(frames.shape[1:], side)
    if (h, w) == frames.shape[1:]:
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in frames])


def echo_cam(gradcam: ModalityMaps | None, view: str) -> np.ndarray | None:
    """The view's Grad-CAM++ frames, or ``None`` before Grad-CAM++ or for an unused view."""
    if gradcam is None or view not in gradcam.echo:
        return None
    return np.asarray(gradcam.echo[view], dtype=np.float32)


def echo_rgb_frames(cine: EchoCine, cam: np.ndarray | None, opacity: float) -> np.ndarray:
    """Every frame of the cine, enlarged for display, with its overlay: ``(F, H, W, 3)``."""
    frames = upscale_frames(cine.frames, ECHO_DISPLAY_SIDE)
    if cam is None:
        return np.repeat(frames[..., None], 3, axis=-1)
    return echo_overlay_frames(frames, cam, opacity)


def echo_frame_image(
    cine: EchoCine, cam: np.ndarray | None, opacity: float, index: int
) -> np.ndarray:
    """Frame ``index`` (clamped) with its overlay, for the frame scrubber."""
    i = int(np.clip(int(index), 0, cine.frames.shape[0] - 1))
    frame = upscale_frames(cine.frames[i : i + 1], ECHO_DISPLAY_SIDE)[0]
    if cam is None:
        return np.repeat(frame[..., None], 3, axis=-1)
    per_frame = resample_cam_frames(cam, cine.frames.shape[0])
    return cam_overlay(frame, per_frame[i], opacity)


def echo_loop_file(
    cine: EchoCine, cam: np.ndarray | None, opacity: float, out_dir: str | Path
) -> Path:
    """An MP4 loop of the cine with its overlay, under a fresh name in ``out_dir``."""
    rgb = echo_rgb_frames(cine, cam, opacity)
    path = Path(out_dir) / f"echo-{cine.view}-{uuid.uuid4().hex[:10]}.mp4"
    return write_loop(rgb, cine.frame_rate, path)


def echo_panels(
    case: PatientCase, gradcam: ModalityMaps | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """Each echo slot's loop (when ``settings`` has a ``media_dir``) and first frame."""
    opacities = settings.get("echo_opacity", [0.5] * ECHO_SLOTS)
    media = settings.get("media_dir")
    slots = [(i, case.echo[v], echo_cam(gradcam, v)) for i, v in enumerate(echo_slots(case))]
    out: dict[str, Any] = {}
    if media is not None:
        with ThreadPoolExecutor(max_workers=len(slots) or 1) as pool:
            files = pool.map(lambda s: echo_loop_file(s[1], s[2], opacities[s[0]], media), slots)
            for (i, _, _), path in zip(slots, files, strict=True):
                out[f"echo_video:{i}"] = str(path)
    for i, cine, cam in slots:
        out[f"echo_frame:{i}"] = echo_frame_image(cine, cam, opacities[i], 0)
    return out


def cxr_panel(case: PatientCase, gradcam: ModalityMaps | None, opacity: float) -> np.ndarray | None:
    """The radiograph (display size) with its Grad-CAM++ overlay when it has run."""
    if case.cxr is None:
        return None
    cam = gradcam.cxr if gradcam is not None else None
    if cam is None:
        cam = np.zeros((8, 8), np.float32)
        opacity = 0.0
    return cxr_overlay(case.cxr, cam, opacity, max_side=CXR_DISPLAY_SIDE)


def bbox_image(image: np.ndarray, bbox: Sequence[float], side: int) -> np.ndarray:
    """``image`` (RGB uint8) resized to ``side`` with the stored-geometry ``bbox``
    (row0, col0, row1, col1) outlined in magenta on a cyan halo."""
    h, w = image.shape[:2]
    nh, nw = display_size((h, w), side)
    out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_CUBIC)
    r0, c0, r1, c1 = (float(v) for v in bbox)
    sy, sx = nh / h, nw / w
    p0 = (int(round(c0 * sx)), int(round(r0 * sy)))
    p1 = (int(round(c1 * sx)), int(round(r1 * sy)))
    thickness = max(2, side // 200)
    cv2.rectangle(out, p0, p1, (0, 255, 255), thickness + 2)
    cv2.rectangle(out, p0, p1, BBOX_RGB, thickness)
    return np.ascontiguousarray(out)
