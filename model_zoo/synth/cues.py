"""Spurious cues for the shortcut benchmark: artefacts that follow the label, not the disease.

A cue is drawn into a modality's data after it is rendered, at the same place in every case
that gets it, so a model trained without evidence supervision can learn it as a shortcut
(DeGrave et al. 2021: COVID-19 radiograph models keyed on burnt-in text markers):

- cxr: a burnt-in "PORTABLE" tag, white glyphs with a dark halo, in the top right corner;
- ecg: a pacing-spike artefact, 4 ms spikes at a fixed 75/min in every lead (1 to 4.5 mV,
  the limb leads consistent with Einthoven's law);
- echo: a bright square marker in the top left corner, outside the sector, in every frame.

With strength ``s`` a heart-failure case gets the cue with probability ``s`` and any other
case with probability ``1 - s``. Each cue's region is a mask of the rendered data's geometry
(:func:`cxr_cue_mask`, :func:`ecg_cue_mask`, :func:`echo_cue_mask`); the reference report
never mentions a cue.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import binary_dilation

from fuselens.model_zoo.case import STANDARD_LEADS
from fuselens.model_zoo.synth.ecg import limb_and_chest
from fuselens.model_zoo.synth.echo import SECTOR

CUE_MODALITIES = ("cxr", "ecg", "echo")
DEFAULT_CUE_STRENGTH = 0.9

CXR_TAG = "PORTABLE"
CXR_TAG_SCALE = 3  # the bitmap font's 11 px glyphs, enlarged so the tag survives resizing
CXR_TAG_MARGIN_PX = 14
CXR_HALO_PX = 2

PACE_INTERVAL_S = 0.8  # 75/min, asynchronous to the patient's own rhythm
PACE_FIRST_S = 0.2
PACE_WIDTH_S = 0.004
PACE_RECHARGE_S = 0.008  # the opposite-polarity tail after each spike
PACE_MASK_PAD_S = 0.004
# Spike amplitude in mV in leads I, II, V1..V6; the other limb leads follow from I and II.
PACE_BASE_MV = (4.5, 3.5, 4.0, 4.5, 4.0, 3.5, 3.0, 2.5)

ECHO_MARKER = (slice(5, 14), slice(5, 14))  # rows, columns of a 9 x 9 px square
ECHO_MARKER_VALUE = 255


def cue_decisions(
    cues: Mapping[str, float], heart_failure: int, rng: np.random.Generator
) -> dict[str, bool]:
    """Whether each requested cue is planted: one uniform per cue modality, always all three
    in ``CUE_MODALITIES`` order, so one modality's decision does not depend on the others
    being requested."""
    draws = dict(zip(CUE_MODALITIES, rng.random(len(CUE_MODALITIES)), strict=True))
    out = {}
    for modality, strength in cues.items():
        p = strength if heart_failure else 1.0 - strength
        out[modality] = bool(draws[modality] < p)
    return out


def check_cues(cues: Mapping[str, float]) -> None:
    for modality, strength in cues.items():
        if modality not in CUE_MODALITIES:
            raise ValueError(f"cue modality {modality!r} is not one of {', '.join(CUE_MODALITIES)}")
        if not 0.5 <= strength <= 1.0:
            raise ValueError(f"cue strength {strength} for {modality} is not in [0.5, 1]")


def parse_cue(spec: str) -> tuple[str, float]:
    """``MODALITY[:STRENGTH]`` -> (modality, strength); strength defaults to 0.9."""
    modality, _, strength = spec.partition(":")
    try:
        value = float(strength) if strength else DEFAULT_CUE_STRENGTH
    except ValueError:
        raise ValueError(f"cue strength {strength!r} is not a number") from None
    check_cues({modality: value})
    return modality, value


def _tag_glyphs() -> np.ndarray:
    """The tag's glyph pixels at ``CXR_TAG_SCALE`` (bool (h, w)), from PIL's bitmap font."""
    font = ImageFont.load_default_imagefont()
    left, top, right, bottom = font.getbbox(CXR_TAG)
    small = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(small).text((-left, -top), CXR_TAG, fill=255, font=font)
    glyphs = np.asarray(small) > 127
    return np.kron(glyphs, np.ones((CXR_TAG_SCALE, CXR_TAG_SCALE), dtype=bool))


def _tag_layers(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Glyph and halo pixels of the tag placed in the top right corner of ``shape``."""
    glyphs = _tag_glyphs()
    h, w = glyphs.shape
    pad = CXR_HALO_PX
    top, left = CXR_TAG_MARGIN_PX, shape[1] - CXR_TAG_MARGIN_PX - w
    ink = np.zeros(shape, dtype=bool)
    ink[top : top + h, left : left + w] = glyphs
    near = binary_dilation(ink, iterations=pad)
    return ink, near & ~ink


def cxr_cue_mask(shape: tuple[int, int]) -> np.ndarray:
    """The tag's region: the bounding box of its glyphs and halo."""
    ink, halo = _tag_layers(shape)
    rows, cols = np.nonzero(ink | halo)
    mask = np.zeros(shape, dtype=bool)
    mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    return mask


def add_cxr_cue(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A radiograph in [0, 1] (bright = dense) with the tag burnt in, and the tag's mask."""
    ink, halo = _tag_layers(image.shape)
    out = image.copy()
    out[halo] = 0.0
    out[ink] = 1.0
    return out, cxr_cue_mask(image.shape)


def _pace_times(n_samples: int, rate: float) -> np.ndarray:
    last = (n_samples - 1) / rate - PACE_WIDTH_S - PACE_RECHARGE_S
    return np.arange(PACE_FIRST_S, last, PACE_INTERVAL_S)


def ecg_cue_mask(n_samples: int, rate: float) -> np.ndarray:
    """``(12, n_samples)``: every lead around every spike and its recharge tail."""
    row = np.zeros(n_samples, dtype=bool)
    for t in _pace_times(n_samples, rate):
        a = int(np.floor((t - PACE_MASK_PAD_S) * rate))
        b = int(np.ceil((t + PACE_WIDTH_S + PACE_RECHARGE_S + PACE_MASK_PAD_S) * rate))
        row[max(0, a) : b + 1] = True
    return np.repeat(row[None], len(STANDARD_LEADS), axis=0)


def add_ecg_cue(signal: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``(12, samples)`` mV signal with pacing spikes added, and their mask."""
    n = signal.shape[1]
    width = max(1, int(round(PACE_WIDTH_S * rate)))
    tail = np.exp(-np.arange(int(round(PACE_RECHARGE_S * rate))) / (0.003 * rate))
    tail *= -0.08 * width / tail.sum()  # the recharge returns 8 % of the spike's charge
    pulse = np.concatenate([np.ones(width), tail])
    train = np.zeros(n)
    for t in _pace_times(n, rate):
        start = int(round(t * rate))
        train[start : start + pulse.size] += pulse
    amplitude = limb_and_chest(np.asarray(PACE_BASE_MV, dtype=np.float64)[:, None])
    out = (signal + amplitude * train[None]).astype(signal.dtype)
    return out, ecg_cue_mask(n, rate)


def echo_cue_mask(n_frames: int) -> np.ndarray:
    """``(n_frames, 112, 112)``: the marker square in every frame."""
    mask = np.zeros((n_frames, *SECTOR.shape), dtype=bool)
    mask[(slice(None), *ECHO_MARKER)] = True
    return mask


def add_echo_cue(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(F, 112, 112)`` frames with the marker in every frame, and its mask."""
    mask = echo_cue_mask(frames.shape[0])
    out = frames.copy()
    out[mask] = ECHO_MARKER_VALUE
    return out, mask
