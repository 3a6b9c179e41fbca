"""Synthetic echocardiography cine loops (A4C, A2C, PLAX) with the planted LV and LA.

Each frame's anatomy (``echo_anatomy``) is a reflectivity map; imaging multiplies it by
spatially correlated, partly persistent speckle, applies depth and beam-edge fall-off, log
compression and the sector, and quantises to uint8 (EchoNet size, 112 x 112).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from fuselens.model_zoo.synth.echo_anatomy import APEX_XY, SIZE, Heart, cycle_phase, render_anatomy
from fuselens.model_zoo.synth.latent import Latent

N_FRAMES = 32
SECTOR_HALF_ANGLE_DEG = 38.0
SECTOR_RADIUS = 108.0
LV_FINDINGS = ("reduced_ef", "dilated_lv")


@dataclass(frozen=True)
class EchoClip:
    """One rendered view: uint8 frames, the evidence mask and the frame timing."""

    view: str
    frames: np.ndarray
    mask: np.ndarray
    frame_time_ms: float
    heart_rate: float


def heart_from_latent(latent: Latent, rng: np.random.Generator) -> Heart:
    p = latent.params
    lv_scale = float(p["lv_scale"])
    wall = rng.uniform(7.0, 8.5) if "hypertension" in latent.confounders else rng.uniform(5.5, 7.0)
    if "dilated_lv" in latent.findings["echo"]:
        wall *= 0.85
    return Heart(
        lv_length=60.0 * lv_scale**0.6 * rng.uniform(0.95, 1.05),
        lv_width=32.0 * lv_scale**1.2 * rng.uniform(0.95, 1.05),
        la_scale=float(p["la_scale"]),
        ef=float(p["ef"]) / 100.0,
        wall=wall,
        shift=(float(rng.uniform(-3.0, 3.0)), float(rng.uniform(-2.0, 3.0))),
        tilt_deg=float(rng.uniform(-5.0, 5.0)),
    )


def _sector_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    dx, dy = xx - APEX_XY[0], yy - APEX_XY[1]
    radius = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(dx, dy))
    inside = (np.abs(angle) <= SECTOR_HALF_ANGLE_DEG) & (radius <= SECTOR_RADIUS) & (dy > 0)
    return inside, radius, angle


SECTOR, RADIUS, ANGLE = _sector_geometry()
DEPTH_GAIN = 1.0 - 0.35 * (RADIUS / SECTOR_RADIUS) ** 1.5
EDGE_GAIN = 1.0 - 0.6 * np.minimum(np.abs(ANGLE) / SECTOR_HALF_ANGLE_DEG, 1.0) ** 4
GAIN_MAP = (DEPTH_GAIN * EDGE_GAIN).astype(np.float32)
CLUTTER = (0.3 * np.exp(-RADIUS / 6.0)).astype(np.float32)


def _speckle(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, H, W) unit-mean speckle intensity, correlated in space and (partly) in time."""
    rho = 0.75
    fresh = gaussian_filter(
        rng.standard_normal((n, 2, SIZE, SIZE), dtype=np.float32), sigma=(0, 0, 0.6, 1.1)
    )
    new = fresh[:, 0] + 1j * fresh[:, 1]
    field = new.copy()
    for i in range(1, n):
        field[i] = rho * field[i - 1] + np.sqrt(1.0 - rho**2) * new[i]
    out = np.abs(field) ** 2
    return out / out.mean()


def _image(refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reflectivity (F, H, W) -> uint8 B-mode frames."""
    n = refl.shape[0]
    noise = rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    texture = np.exp(0.5 * gaussian_filter(noise, 2.5) / 0.11)
    soft = gaussian_filter(refl, sigma=(0, 0.7, 0.7)) * (texture * GAIN_MAP)
    floor = 3e-5 * rng.standard_exponential(soft.shape, dtype=np.float32)
    intensity = (soft + CLUTTER) * _speckle(rng, n) + floor
    dyn = rng.uniform(40.0, 46.0)
    gain = rng.uniform(-1.5, 1.5)
    level = np.clip((10.0 * np.log10(intensity) + (gain + dyn)) / dyn, 0.0, 1.0)
    return np.where(SECTOR[None], np.round(255.0 * level * level), 0).astype(np.uint8)


def simulate_echo(latent: Latent, rng: np.random.Generator) -> list[EchoClip]:
    """The latent's echo views, in order A4C, A2C, PLAX where present."""
    heart = heart_from_latent(latent, rng)
    findings = set(latent.findings["echo"])
    hr = float(latent.params["heart_rate"])
    cycles = rng.uniform(1.5, 2.0)
    fps = float(np.clip(N_FRAMES * hr / 60.0 / cycles, 20.0, 60.0))
    clips = []
    for view in latent.echo_views:
        start = rng.uniform(0.0, 1.0)
        refl = np.empty((N_FRAMES, SIZE, SIZE), dtype=np.float32)
        mask = np.zeros((N_FRAMES, SIZE, SIZE), dtype=bool)
        for f in range(N_FRAMES):
            canvas = render_anatomy(view, heart, cycle_phase(start + f * hr / 60.0 / fps))
            refl[f] = canvas.refl
            if findings & set(LV_FINDINGS):
                mask[f] |= canvas.regions["lv"]
            if "enlarged_la" in findings:
                mask[f] |= canvas.regions["la"]
        mask &= SECTOR[None]
        clips.append(EchoClip(view, _image(refl, rng), mask, 1000.0 / fps, hr))
    return clips
