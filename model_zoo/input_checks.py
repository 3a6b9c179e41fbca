"""Checks a batch before the model sees it (shape, dtype, range), with clear errors.

Like torchxrayvision's models, the fusion model states what it expects instead of trusting
its inputs: a wrong unit or a forgotten normalisation fails loudly here.
"""

from __future__ import annotations

import torch

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES, STANDARD_LEADS
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.preprocess import (
    CXR_MEAN,
    CXR_STD,
    ECG_CLIP_MV,
    ECG_SAMPLES,
    ECHO_MEAN,
    ECHO_STD,
)

_TOL = 1e-3


class InputError(ValueError):
    """A batch does not match what the model expects."""


def _shape(name: str, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != shape:
        raise InputError(f"{name}: expected shape {shape}, got {tuple(x.shape)}")


def _range(name: str, x: torch.Tensor, lo: float, hi: float, hint: str) -> None:
    if x.numel() == 0:
        return
    if not torch.isfinite(x).all():
        raise InputError(f"{name}: NaN or infinite values")
    mn, mx = float(x.min()), float(x.max())
    if mn < lo - _TOL or mx > hi + _TOL:
        raise InputError(
            f"{name}: values in [{mn:.3g}, {mx:.3g}], expected [{lo:.3g}, {hi:.3g}] ({hint})"
        )


def check_inputs(inputs, config: ModelConfig) -> None:
    """Raise :class:`InputError` when ``inputs`` (a ModelInputs) cannot be what the model needs."""
    b = len(inputs)
    _shape("present", inputs.present, (b, len(MODALITIES)))
    if b == 0:
        raise InputError("empty batch")
    if not inputs.present.any(dim=1).all():
        raise InputError("every case needs at least one present modality")
    p = {m: inputs.present[:, i].bool() for i, m in enumerate(MODALITIES)}
    if inputs.input_ids.dtype != torch.long or inputs.input_ids.ndim != 2:
        raise InputError("input_ids: expected a (B, L) long tensor")
    _shape("attention_mask", inputs.attention_mask, tuple(inputs.input_ids.shape))
    _shape("input_lines", inputs.input_lines, tuple(inputs.input_ids.shape))
    if p["labs"].any() and (inputs.attention_mask[p["labs"]].sum(1) == 0).any():
        raise InputError("labs: marked present but has no tokens")
    _shape("ecg", inputs.ecg, (b, 1, len(STANDARD_LEADS), ECG_SAMPLES))
    _shape("ecg_leads", inputs.ecg_leads, (b, len(STANDARD_LEADS)))
    _range("ecg", inputs.ecg[p["ecg"]], -ECG_CLIP_MV, ECG_CLIP_MV, "millivolts at 250 Hz, clipped")
    if p["ecg"].any() and not inputs.ecg_leads[p["ecg"]].any(dim=1).all():
        raise InputError("ecg: marked present but no lead is present")
    v, f, s = len(ECHO_VIEWS), config.echo_frames, config.echo_size
    _shape("echo", inputs.echo, (b, v, f, s, s))
    _shape("echo_views", inputs.echo_views, (b, v))
    lo, hi = (0 - ECHO_MEAN) / ECHO_STD, (1 - ECHO_MEAN) / ECHO_STD
    _range("echo", inputs.echo[p["echo"]], lo, hi, "uint8 frames normalised by normalise_echo")
    if p["echo"].any() and not inputs.echo_views[p["echo"]].any(dim=1).all():
        raise InputError("echo: marked present but no view is present")
    _shape("cxr", inputs.cxr, (b, 1, config.cxr_size, config.cxr_size))
    lo, hi = (0 - CXR_MEAN) / CXR_STD, (1 - CXR_MEAN) / CXR_STD
    _range("cxr", inputs.cxr[p["cxr"]], lo, hi, "a [0, 1] image normalised by normalise_cxr")
