"""Chest radiograph geometry: a PA thorax as masks on a normalised grid.

x runs from the image's left (the patient's right) to its right, y from top to bottom,
both in [0, 1]. The heart's horizontal width is scaled to the planted cardiothoracic ratio
(CTR = widest heart width / widest internal thoracic width, the lungs' lateral margins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 512


def _grid() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return (xx + 0.5) / SIZE, (yy + 0.5) / SIZE


XX, YY = _grid()


@dataclass(frozen=True)
class Thorax:
    """Per-patient layout of the thorax on the film."""

    cx: float
    half_width: float
    apex_y: float
    dome_y: float
    dome_left_drop: float
    costophrenic_y: float
    mediastinum: float
    ctr: float
    female: bool
    copd: bool

    @property
    def lateral_x(self) -> tuple[float, float]:
        return self.cx - self.half_width, self.cx + self.half_width

    @property
    def hila(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (self.cx - 0.1, 0.41), (self.cx + 0.095, 0.39)


def draw_thorax(rng: np.random.Generator, ctr: float, female: bool, copd: bool) -> Thorax:
    flat = 0.06 if copd else 0.0
    dome = rng.uniform(0.63, 0.67) + flat
    return Thorax(
        cx=float(0.5 + rng.uniform(-0.015, 0.015)),
        half_width=float(rng.uniform(0.35, 0.38) + (0.01 if copd else 0.0)),
        apex_y=float(rng.uniform(0.09, 0.12)),
        dome_y=float(dome),
        dome_left_drop=float(rng.uniform(0.015, 0.035)),
        costophrenic_y=float(dome + rng.uniform(0.08, 0.1) - 0.5 * flat),
        mediastinum=float(rng.uniform(0.06, 0.075)),
        ctr=float(ctr),
        female=female,
        copd=copd,
    )


def diaphragm_y(th: Thorax, x: np.ndarray) -> np.ndarray:
    """Height of the diaphragm at image-x: domes, lowest at the costophrenic angles."""
    side = np.where(x < th.cx, -1.0, 1.0)
    top = th.dome_y + np.where(side > 0, th.dome_left_drop, 0.0)
    mid = th.cx + side * 0.16
    lateral = th.cx + side * th.half_width
    s_lat = np.clip((x - mid) / (lateral - mid), 0.0, 1.2)
    s_med = np.clip((mid - x) / (mid - th.cx), 0.0, 1.0)
    power = 4.0 if th.copd else 2.2
    return top + (th.costophrenic_y - top) * s_lat**power + 0.02 * s_med**2


def lateral_margin(th: Thorax, y: np.ndarray) -> np.ndarray:
    """Half-distance from the midline to the inner rib margin at height y."""
    t = np.clip((y - th.apex_y) / 0.3, 0.0, 1.0)
    apex_half = 0.13
    return apex_half + (th.half_width - apex_half) * np.sqrt(1.0 - (1.0 - t) ** 2)


def lung_fields(th: Thorax) -> np.ndarray:
    """Both lung fields (bool), before the heart and hila are carved out."""
    dx = np.abs(XX - th.cx)
    t = np.clip((YY - th.apex_y) / 0.1, 0.0, 1.0)
    medial = 0.13 - (0.13 - th.mediastinum) * np.sqrt(1.0 - (1.0 - t) ** 2)
    inside = (dx < lateral_margin(th, YY)) & (dx > medial) & (YY > th.apex_y)
    return inside & (YY < diaphragm_y(th, XX))


def _ellipse(
    center: tuple[float, float], a: float, b: float, angle_deg: float, xx: np.ndarray
) -> np.ndarray:
    th = np.deg2rad(angle_deg)
    dx, dy = xx - center[0], YY - center[1]
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _half_extent(a: float, b: float, angle_deg: float) -> float:
    """Horizontal half-width of an ellipse with semi-axes a, b rotated by ``angle_deg``."""
    th = np.deg2rad(angle_deg)
    return float(np.hypot(a * np.cos(th), b * np.sin(th)))


def heart_silhouette(th: Thorax) -> np.ndarray:
    """The cardiac silhouette (bool), scaled so its widest extent gives the planted CTR."""
    floor = th.dome_y + 0.02
    parts = (
        ((th.cx + 0.07, floor - 0.09), 0.17, 0.115, 32.0),
        ((th.cx - 0.035, floor - 0.1), 0.075, 0.12, -8.0),
        ((th.cx + 0.02, floor - 0.2), 0.07, 0.07, 0.0),
    )
    left = min(c[0] - _half_extent(a, b, ang) for c, a, b, ang in parts)
    right = max(c[0] + _half_extent(a, b, ang) for c, a, b, ang in parts)
    scale = th.ctr * 2 * th.half_width / (right - left)
    xx = th.cx + (XX - th.cx) / scale
    heart = np.zeros(XX.shape, dtype=bool)
    for center, a, b, angle in parts:
        heart |= _ellipse(center, a, b, angle, xx)
    return heart & (YY < floor + 0.04)


def measured_ctr(th: Thorax, heart: np.ndarray) -> float:
    """Widest heart width over widest internal thoracic width, from the masks."""
    cols = np.where(heart.any(axis=0))[0]
    return float((cols[-1] - cols[0] + 1) / SIZE / (2 * th.half_width))
