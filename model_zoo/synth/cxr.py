"""Synthetic PA chest radiograph with planted cardiomegaly, pleural effusion and edema.

Layers (soft tissue, lung air, bone, vessels, fluid) are built on a normalised grid,
blurred to radiographic softness and summed into a brightness map: bone, fluid and the
mediastinum bright, aerated lung dark. Confounders leave their own marks: COPD
hyperinflates and flattens the diaphragm and thins the vessels, pneumonia adds a patchy
consolidation with air bronchograms (neither is a heart-failure finding).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import binary_dilation, gaussian_filter

from fuselens.model_zoo.synth.cxr_anatomy import (
    SIZE,
    XX,
    YY,
    Thorax,
    diaphragm_y,
    draw_thorax,
    heart_silhouette,
    lateral_margin,
    lung_fields,
)
from fuselens.model_zoo.synth.latent import Latent

PIXEL_SPACING_MM = 0.7


class Layer:
    """A float drawing surface addressed in normalised coordinates."""

    def __init__(self) -> None:
        self.img = Image.new("F", (SIZE, SIZE), 0.0)
        self.draw = ImageDraw.Draw(self.img)

    def line(self, points: np.ndarray, width: float, value: float = 1.0) -> None:
        pts = [(float(x) * SIZE, float(y) * SIZE) for x, y in np.asarray(points)]
        self.draw.line(pts, fill=value, width=max(1, int(round(width * SIZE))), joint="curve")

    def array(self, blur_px: float = 0.0) -> np.ndarray:
        arr = np.asarray(self.img, dtype=np.float32)
        return gaussian_filter(arr, blur_px) if blur_px > 0 else arr.copy()


def _soft(mask: np.ndarray, blur_px: float) -> np.ndarray:
    return gaussian_filter(mask.astype(np.float32), blur_px)


def _body(th: Thorax) -> np.ndarray:
    """Soft-tissue brightness: torso with shoulders and neck, thicker centrally."""
    dx = np.abs(XX - th.cx)
    torso = dx < th.half_width + 0.06 + 0.03 * np.clip((YY - 0.2) / 0.5, 0, 1)
    shoulders = (YY > 0.03) & (dx < th.half_width + 0.13 - 0.5 * np.clip(0.1 - YY, 0, None))
    neck = dx < 0.1
    body = _soft(torso | (shoulders & (YY < 0.25)) | neck, 5.0)
    return body * (1.0 - 0.25 * (dx / 0.5) ** 2)


def _bones(th: Thorax, rng: np.random.Generator, cage: np.ndarray) -> np.ndarray:
    """Ribs (posterior and anterior) inside the cage, clavicles, spine, humeral heads."""
    ribs, cortex, other = Layer(), Layer(), Layer()
    spacing = (th.costophrenic_y - th.apex_y) / 9.0
    for side in (-1.0, 1.0):
        for i in range(10):
            y0 = th.apex_y + 0.005 + i * spacing
            t = np.linspace(0.0, 1.0, 28)
            y = y0 - 0.025 * np.sin(np.pi * t * 0.7) + (0.1 + 0.03 * i / 9) * t**2.5
            margin = lateral_margin(th, y)
            x = th.cx + side * (0.03 + t * (margin + 0.015 - 0.03))
            pts = np.column_stack([x, y])
            w = 0.014 + 0.003 * i / 9
            ribs.line(pts, w)
            cortex.line(pts + [0.0, -w / 2], 0.0025)
            cortex.line(pts + [0.0, w / 2], 0.0025)
            ta = np.linspace(0.0, 1.0, 16)
            ya = y[-1] + ta * (0.12 + 0.01 * i)
            xa = th.cx + side * (
                lateral_margin(th, ya) + 0.01 - ta * (lateral_margin(th, ya) - 0.09)
            )
            keep = ya < diaphragm_y(th, xa) + 0.02
            if keep.sum() > 1:
                ribs.line(np.column_stack([xa, ya])[keep], 0.011, 0.45)
        t = np.linspace(0.0, 1.0, 24)
        cx0, cy0 = th.cx + side * 0.045, th.apex_y + 0.035
        cx1, cy1 = th.cx + side * (th.half_width + 0.03), th.apex_y - 0.045
        clav = np.column_stack(
            [cx0 + t * (cx1 - cx0), cy0 + t * (cy1 - cy0) + 0.012 * np.sin(2 * np.pi * t)]
        )
        other.line(clav, 0.022)
        head_x = th.cx + side * (th.half_width + 0.12)
        other.draw.ellipse(
            [
                (head_x - 0.07) * SIZE,
                (th.apex_y - 0.11) * SIZE,
                (head_x + 0.07) * SIZE,
                (th.apex_y + 0.04) * SIZE,
            ],
            fill=0.8,
        )
        scap = np.array(
            [
                (head_x - side * 0.06, th.apex_y + 0.03),
                (th.cx + side * (th.half_width - 0.07), 0.45),
            ]
        )
        cortex.line(scap, 0.004, 0.7)
    spine = np.zeros_like(XX)
    cols = slice(max(0, int((th.cx - 0.05) * SIZE)), min(SIZE, int((th.cx + 0.05) * SIZE)))
    x, y = XX[:, cols] - th.cx, YY[:, cols] - th.apex_y
    column = np.clip((0.03 - np.abs(x)) * SIZE / 4.0 + 0.5, 0.0, 1.0)
    endplates = 0.5 + 0.5 * np.cos(2 * np.pi * y / 0.052) ** 8
    pedicles = np.exp(-(((np.abs(x) - 0.021) / 0.006) ** 2)) * (
        np.cos(2 * np.pi * y / 0.052 + 1.2) > 0.6
    )
    spine[:, cols] = 0.45 * column * (0.7 + 0.3 * endplates) + 0.2 * pedicles
    cage_soft = np.clip(
        (lateral_margin(th, YY) + 0.01 - np.abs(XX - th.cx)) * SIZE / 4.0 + 0.5, 0.0, 1.0
    )
    rib_img = gaussian_filter(ribs.array() + 0.8 * cortex.array(), 0.9) * (0.35 + 0.65 * cage_soft)
    jitter = 1.0 + 0.08 * rng.standard_normal()
    return jitter * (0.45 * rib_img + other.array(1.5) + spine)


def _vessels(th: Thorax, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Pulmonary vessels branching from the hila, tapering and fading to the periphery."""
    layer = Layer()
    for side, hilum in ((-1.0, th.hila[0]), (1.0, th.hila[1])):
        for base_angle in (-70.0, -35.0, 0.0, 35.0, 70.0, 100.0):
            stack = [
                (
                    np.array(hilum),
                    np.deg2rad(base_angle + rng.uniform(-10, 10)),
                    0.07,
                    0.011 * scale,
                    0,
                )
            ]
            while stack:
                p, ang, length, width, depth = stack.pop()
                q = p + length * np.array([side * np.cos(ang), np.sin(ang)])
                layer.line(np.vstack([p, q]), width, 1.0 / (1 + depth))
                if depth < 4:
                    for turn in (-1.0, 1.0):
                        da = np.deg2rad(rng.uniform(12.0, 32.0)) * turn
                        stack.append(
                            (q, ang + da, length * rng.uniform(0.65, 0.85), width * 0.68, depth + 1)
                        )
    d = np.minimum(
        np.hypot(XX - th.hila[0][0], YY - th.hila[0][1]),
        np.hypot(XX - th.hila[1][0], YY - th.hila[1][1]),
    )
    return layer.array(1.2) * np.exp(-d / (0.22 * scale))


def _effusion(th: Thorax, side: str, size: float, lungs: np.ndarray) -> np.ndarray:
    """Pleural fluid at one base, its meniscus rising towards the lateral chest wall."""
    sign = -1.0 if side == "right" else 1.0
    lateral = th.cx + sign * th.half_width
    medial = th.cx + sign * th.mediastinum
    frac = np.clip((XX - medial) / (lateral - medial), 0.0, 1.0)
    height = 0.05 + 0.16 * size
    meniscus = th.costophrenic_y - height * (0.25 + 0.75 * frac**2.5)
    below_dome = (YY < diaphragm_y(th, XX) + 0.012) & (np.abs(XX - th.cx) < lateral_margin(th, YY))
    fluid = (frac > 0) & (YY > meniscus) & (lungs | below_dome)
    return _soft(fluid, 2.5)


def _edema(
    th: Thorax, rng: np.random.Generator, severity: float, air: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Perihilar (bat-wing) haze and Kerley B lines; returns brightness and its region."""
    haze = np.zeros_like(XX)
    for hx, hy in th.hila:
        sign = -1.0 if hx < th.cx else 1.0
        haze += np.exp(-(((XX - hx - sign * 0.05) / 0.13) ** 2 + ((YY - hy - 0.04) / 0.17) ** 2))
    texture = gaussian_filter(rng.standard_normal(XX.shape, dtype=np.float32), 5.0)
    haze = np.clip(haze * (1.0 + 3.0 * texture), 0.0, None) * air
    kerley = Layer()
    zone = np.zeros(XX.shape, dtype=bool)
    for sign in (-1.0, 1.0):
        for _ in range(int(6 + 10 * severity)):
            y = rng.uniform(th.costophrenic_y - 0.2, th.costophrenic_y - 0.04)
            edge = th.cx + sign * float(lateral_margin(th, np.array(y)))
            length = rng.uniform(0.015, 0.035)
            kerley.line(np.array([(edge, y), (edge - sign * length, y)]), 0.0025)
        edge_x = th.cx + sign * lateral_margin(th, YY)
        zone |= (np.abs(XX - edge_x) < 0.09) & (YY > th.costophrenic_y - 0.22)
    lines = kerley.array(0.5) * air
    region = (gaussian_filter(haze, 3.0) > 0.2 * max(float(haze.max()), 1e-9)) | zone
    return severity * (0.2 * haze + 0.35 * lines), region & (air > 0.3)


def _consolidation(
    th: Thorax, rng: np.random.Generator, side: str, zone: str, air: np.ndarray
) -> np.ndarray:
    """Lobar pneumonia: patchy opacity with air bronchograms."""
    sign = -1.0 if side == "right" else 1.0
    cx = th.cx + sign * th.half_width * 0.55
    cy = th.costophrenic_y - 0.13 if zone == "lower" else 0.45
    blob = np.exp(-(((XX - cx) / 0.11) ** 2 + ((YY - cy) / 0.085) ** 2))
    patch = gaussian_filter(rng.standard_normal(XX.shape, dtype=np.float32), 5.0)
    cons = np.clip(blob * (0.8 + 12.0 * patch), 0.0, 1.0)
    bronchi = Layer()
    for _ in range(4):
        ang = rng.uniform(-0.6, 0.6)
        p = np.array([cx - sign * 0.05, cy - 0.04])
        bronchi.line(
            np.vstack([p, p + 0.1 * np.array([sign * np.cos(ang), np.sin(ang) + 0.5])]), 0.004
        )
    return np.clip(cons - 0.7 * bronchi.array(0.7), 0.0, None) * air


def simulate_cxr(latent: Latent, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A PA chest film (float32 (512, 512) in [0, 1], bone bright) and its evidence mask."""
    p = latent.params
    findings = set(latent.findings["cxr"])
    conf = set(latent.confounders)
    th = draw_thorax(rng, float(p["ctr"]), latent.sex == "F", "copd" in conf)
    heart = heart_silhouette(th)
    fields = lung_fields(th)
    hila = np.zeros_like(fields)
    for hx, hy in th.hila:
        hila |= ((XX - hx) / 0.03) ** 2 + ((YY - hy) / 0.05) ** 2 <= 1.0
    knob = ((XX - th.cx - 0.07) / 0.04) ** 2 + ((YY - 0.27) / 0.035) ** 2 <= 1.0
    lungs = fields & ~heart & ~knob
    air = _soft(lungs, 2.0) * (1.0 - 0.45 * _soft(hila, 4.0))
    cage = np.abs(XX - th.cx) < lateral_margin(th, YY) + 0.01

    edema = "pulmonary_edema" in findings
    vessels = _vessels(th, rng, 1.3 if edema else 1.0) * air
    depth_shade = (
        1.0
        - 0.35 * np.clip((th.apex_y + 0.12 - YY) / 0.12, 0, 1)
        - 0.2 * np.clip((YY - th.dome_y + 0.12) / 0.12, 0, 1)
    )
    lucency = (0.42 if th.copd else 0.36) * air * depth_shade
    reticular = gaussian_filter(rng.standard_normal(XX.shape, dtype=np.float32), 2.0) * air
    img = 0.72 * _body(th) - lucency + (0.22 if th.copd else 0.34) * vessels + 0.1 * reticular
    img += 0.2 * _bones(th, rng, cage)
    trachea = Layer()
    trachea.line(np.array([(th.cx, 0.0), (th.cx + 0.005, 0.31)]), 0.028)
    trachea.line(np.array([(th.cx + 0.005, 0.31), (th.cx - 0.06, 0.37)]), 0.016)
    trachea.line(np.array([(th.cx + 0.005, 0.31), (th.cx + 0.07, 0.355)]), 0.015)
    img -= 0.08 * trachea.array(2.0)
    bubble = ((XX - th.cx - 0.17) / 0.05) ** 2 + (
        (YY - th.dome_y - th.dome_left_drop - 0.06) / 0.03
    ) ** 2 <= 1
    img -= 0.1 * _soft(bubble, 3.0)
    if th.female:
        for sx in (-1.0, 1.0):
            d2 = ((XX - th.cx - sx * 0.2) / 0.15) ** 2 + (
                (YY - th.costophrenic_y + 0.02) / 0.11
            ) ** 2
            img += 0.07 * np.exp(-d2) * (YY > th.costophrenic_y - 0.16)

    mask = np.zeros(XX.shape, dtype=bool)
    if "cardiomegaly" in findings:
        mask |= heart
    if "pleural_effusion" in findings:
        sides = (
            ("right", "left") if p["effusion_side"] == "bilateral" else (str(p["effusion_side"]),)
        )
        for side in sides:
            fluid = _effusion(th, side, float(p["effusion_size"]), fields)
            img += 0.42 * fluid
            mask |= binary_dilation(fluid > 0.3, iterations=3)
    if edema:
        change, region = _edema(th, rng, float(p["edema_severity"]), air)
        img += change
        mask |= region
    if "pneumonia" in conf:
        img += 0.3 * _consolidation(
            th, rng, str(p["pneumonia_side"]), str(p["pneumonia_zone"]), air
        )

    img = gaussian_filter(img, 0.7) + 0.006 * rng.standard_normal(img.shape, dtype=np.float32)
    lo, hi = np.percentile(img, [0.5, 99.9])
    out = np.clip((img - lo) / (hi - lo), 0.0, 1.0) ** rng.uniform(0.9, 1.15)
    return out.astype(np.float32), mask
