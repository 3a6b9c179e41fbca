"""PatientCase modalities to model-ready arrays, one named function per step.

ECG: resample to 250 Hz, 0.67-40 Hz band-pass, baseline removal, 12 x 2,500 in the
canonical lead order with a lead-present mask. Echo: frames sampled evenly over the
loop, resized, normalised. CXR: resized and normalised. Labs: the TGMM text lines,
tokenised by the text encoder's tokenizer.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import butter, resample_poly, sosfiltfilt

from fuselens.model_zoo.case import CXR, ECG, ECHO_VIEWS, STANDARD_LEADS, EchoCine, Labs

ECG_RATE_HZ = 250.0
ECG_SAMPLES = 2500
ECG_BAND_HZ = (0.67, 40.0)
ECG_CLIP_MV = 10.0
ECHO_MEAN, ECHO_STD = 0.25, 0.25
CXR_MEAN, CXR_STD = 0.5, 0.25


def resample_ecg(signal: np.ndarray, rate: float, target: float = ECG_RATE_HZ) -> np.ndarray:
    """Polyphase resampling of ``(leads, samples)`` from ``rate`` to ``target`` Hz."""
    ratio = Fraction(target / rate).limit_denominator(1000)
    if ratio == 1:
        return signal.astype(np.float32, copy=True)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32)


def bandpass_ecg(
    signal: np.ndarray, rate: float = ECG_RATE_HZ, band: tuple[float, float] = ECG_BAND_HZ
) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass (the ST-MEM / TGMM 0.67-40 Hz band)."""
    high = min(band[1], 0.45 * rate)
    sos = butter(4, [band[0], high], btype="bandpass", fs=rate, output="sos")
    pad = min(signal.shape[-1] - 1, 3 * 250)
    return sosfiltfilt(sos, signal, axis=-1, padlen=pad).astype(np.float32)


def remove_baseline(signal: np.ndarray) -> np.ndarray:
    """Subtract each lead's median so the isoelectric line sits at zero."""
    return (signal - np.median(signal, axis=-1, keepdims=True)).astype(np.float32)


def fix_length(signal: np.ndarray, n: int = ECG_SAMPLES) -> np.ndarray:
    """The first ``n`` samples, zero-padded at the end when the record is shorter."""
    out = np.zeros((signal.shape[0], n), dtype=np.float32)
    k = min(n, signal.shape[-1])
    out[:, :k] = signal[:, :k]
    return out


def canonical_leads(signal: np.ndarray, lead_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows in ``STANDARD_LEADS`` order; missing leads zero with ``mask`` False."""
    out = np.zeros((len(STANDARD_LEADS), signal.shape[-1]), dtype=np.float32)
    mask = np.zeros(len(STANDARD_LEADS), dtype=bool)
    for row, name in zip(signal, lead_names, strict=True):
        i = STANDARD_LEADS.index(name)
        out[i], mask[i] = row, True
    return out, mask


def preprocess_ecg(ecg: ECG) -> tuple[np.ndarray, np.ndarray]:
    """An ECG as ``(12, 2500)`` float32 mV at 250 Hz plus the ``(12,)`` lead-present mask."""
    sig = resample_ecg(ecg.signal, ecg.sampling_rate)
    sig = remove_baseline(bandpass_ecg(sig))
    sig = np.clip(fix_length(sig), -ECG_CLIP_MV, ECG_CLIP_MV)
    return canonical_leads(sig, list(ecg.lead_names))


def sample_frame_indices(n_frames: int, k: int) -> np.ndarray:
    """``k`` frame indices spread evenly from the first to the last frame of the loop."""
    if n_frames < 1:
        raise ValueError("a cine loop needs at least one frame")
    return np.round(np.linspace(0, n_frames - 1, k)).astype(np.int64)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``(F, H, W)`` uint8 frames resized (antialiased bilinear) to ``(F, size, size)`` uint8."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).float()[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def echo_view_frames(cine: EchoCine, n_frames: int, size: int) -> np.ndarray:
    """One view as ``(n_frames, size, size)`` uint8: sampled over the loop, then resized."""
    idx = sample_frame_indices(cine.frames.shape[0], n_frames)
    return resize_frames(cine.frames[idx], size)


def preprocess_echo(
    echo: dict[str, EchoCine], n_frames: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Views in ``ECHO_VIEWS`` order as ``(V, F, S, S)`` uint8 plus the ``(V,)`` view mask.

    Views with other names are not used (the model knows only the canonical views).
    """
    out = np.zeros((len(ECHO_VIEWS), n_frames, size, size), dtype=np.uint8)
    mask = np.zeros(len(ECHO_VIEWS), dtype=bool)
    for i, view in enumerate(ECHO_VIEWS):
        if view in echo:
            out[i], mask[i] = echo_view_frames(echo[view], n_frames, size), True
    return out, mask


def normalise_echo(frames: torch.Tensor) -> torch.Tensor:
    """uint8 echo frames to float, roughly zero-mean unit-variance."""
    return (frames.float() / 255.0 - ECHO_MEAN) / ECHO_STD


def preprocess_cxr(cxr: CXR, size: int) -> np.ndarray:
    """A radiograph in [0, 1] resized (antialiased bilinear) to ``(size, size)`` float32."""
    t = torch.from_numpy(np.ascontiguousarray(cxr.image, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].clamp(0.0, 1.0).numpy()


def normalise_cxr(image: torch.Tensor) -> torch.Tensor:
    """A [0, 1] radiograph to float, roughly zero-mean unit-variance."""
    return (image.float() - CXR_MEAN) / CXR_STD


def labs_text(labs: Labs) -> str:
    """The TGMM textualisation of the labs (one line per item, then history, medications)."""
    return labs.textualise()


def tokenise_labs(text: str, tokenizer, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and each token's text line, ``-1`` for ``[CLS]``/``[SEP]`` (unpadded,
    truncated to ``max_tokens``; a fast tokenizer, for the character offsets)."""
    enc = tokenizer(
        text,
        truncation=True,
        max_length=max_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    starts = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)[:, 0]
    line_starts = np.cumsum([0] + [len(s) + 1 for s in text.split("\n")])[:-1]
    lines = np.searchsorted(line_starts, starts, side="right") - 1
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    return ids, np.where(special, -1, lines).astype(np.int64)
