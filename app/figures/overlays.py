"""Heat-map overlays on images and cine loops, blended with pytorch-grad-cam's own routine.

``opacity`` is the weight of the heat map: 0 shows the image alone, 1 the heat map alone.
Heat maps use the JET colour map Grad-CAM papers use (red = high, dark blue = low).
"""

from __future__ import annotations

import cv2
import numpy as np
from pytorch_grad_cam.utils.image import show_cam_on_image

from fuselens.model_zoo.case import CXR

CAM_TOLERANCE = 1e-6


def _check_opacity(opacity: float) -> float:
    opacity = float(opacity)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    return opacity


def _image_rgb_float(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)``, uint8 or float in [0, 1] -> float32 RGB in [0, 1]."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {img.shape}")
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    else:
        out = img.astype(np.float32)
        if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError("a float image must be finite and in [0, 1]")
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return out


def _check_cam(cam: np.ndarray, ndim: int) -> np.ndarray:
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != ndim:
        raise ValueError(f"cam must have {ndim} dimensions, got shape {cam.shape}")
    if not np.isfinite(cam).all():
        raise ValueError("cam has NaN or infinite values")
    if cam.min() < -CAM_TOLERANCE or cam.max() > 1 + CAM_TOLERANCE:
        raise ValueError(f"cam must lie in [0, 1], got [{cam.min():.3g}, {cam.max():.3g}]")
    return np.clip(cam, 0.0, 1.0)


def resize_cam(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``(h, w)`` cam in [0, 1] resized (bilinear) to ``(height, width)``."""
    cam = _check_cam(cam, 2)
    if cam.shape == (height, width):
        return cam
    return np.clip(cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def cam_overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """``image`` (H, W) with ``cam`` (h, w) in [0, 1] blended on top: (H, W, 3) uint8 RGB."""
    opacity = _check_opacity(opacity)
    rgb = _image_rgb_float(image)
    mask = resize_cam(cam, rgb.shape[0], rgb.shape[1])
    if opacity == 0.0:
        return np.round(rgb * 255.0).astype(np.uint8)
    return show_cam_on_image(rgb, mask, use_rgb=True, image_weight=1.0 - opacity)


def resample_cam_frames(cam: np.ndarray, n_frames: int) -> np.ndarray:
    """A ``(F', h, w)`` cam linearly resampled in time to ``n_frames`` frames."""
    cam = _check_cam(cam, 3)
    n_src = cam.shape[0]
    if n_src == n_frames:
        return cam
    if n_src == 1:
        return np.repeat(cam, n_frames, axis=0)
    pos = np.linspace(0.0, n_src - 1, n_frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_src - 1)
    w = (pos - lo).astype(np.float32)[:, None, None]
    return (1.0 - w) * cam[lo] + w * cam[hi]


def echo_overlay_frames(frames: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Every frame of a cine ``(F, H, W)`` uint8 with its cam: ``(F, H, W, 3)`` uint8.

    ``cam`` is ``(F', h, w)`` (resampled over frames and pixels) or one ``(h, w)`` map for
    all frames.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (F, H, W), got {frames.dtype} {frames.shape}")
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim == 2:
        cam = cam[None]
    per_frame = resample_cam_frames(cam, frames.shape[0])
    return np.stack([cam_overlay(f, c, opacity) for f, c in zip(frames, per_frame, strict=True)])


def cxr_overlay(
    cxr: CXR, cam: np.ndarray, opacity: float = 0.5, max_side: int = 1024
) -> np.ndarray:
    """The radiograph with its cam, downsized (area) so its longer side is <= ``max_side``."""
    image = cxr.image
    h, w = downsized_shape(image.shape, max_side)
    if (h, w) != image.shape[:2]:
        image = np.clip(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    return cam_overlay(image, cam, opacity)


def downsized_shape(shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    """``(height, width)`` of an image of ``shape`` shrunk so its longer side is <= ``max_side``
    (never enlarged): the geometry :func:`cxr_overlay` draws at."""
    h, w = int(shape[0]), int(shape[1])
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))
