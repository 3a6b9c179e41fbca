"""Preprocessing steps: ECG resampling and filtering, lead order, frame sampling, images, text."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch
from test_model_support import make_case

from fuselens.model_zoo.case import CXR, ECG, STANDARD_LEADS, EchoCine, LabItem, Labs
from fuselens.model_zoo.config import ModelConfig
from fuselens.model_zoo.encoders.text import load_tokenizer
from fuselens.model_zoo.inputs import case_to_inputs
from fuselens.model_zoo.preprocess import (
    ECG_SAMPLES,
    bandpass_ecg,
    canonical_leads,
    fix_length,
    preprocess_cxr,
    preprocess_ecg,
    preprocess_echo,
    remove_baseline,
    resample_ecg,
    sample_frame_indices,
    tokenise_labs,
)


@pytest.mark.parametrize(
    "rate, n", [(1000.0, 10_000), (500.0, 5_000), (360.0, 3_600), (250.0, 2_500)]
)
def test_resampling_to_250_hz_gives_2500_samples_for_10_s(rate: float, n: int) -> None:
    t = np.arange(n) / rate
    sig = np.sin(2 * np.pi * 5 * t)[None].astype(np.float32)
    out = resample_ecg(sig, rate)
    assert out.shape == (1, 2500)
    t250 = np.arange(2500) / 250.0
    np.testing.assert_allclose(out[0, 100:-100], np.sin(2 * np.pi * 5 * t250)[100:-100], atol=0.02)


def _band_power(x: np.ndarray, f0: float, fs: float = 250.0) -> float:
    f, p = welch(x, fs=fs, nperseg=2048)
    return float(p[np.argmin(np.abs(f - f0))])


def test_bandpass_removes_drift_and_mains_hum_but_keeps_ecg_band() -> None:
    fs, t = 250.0, np.arange(5000) / 250.0
    wanted = np.sin(2 * np.pi * 10 * t)
    drift = 2.0 * np.sin(2 * np.pi * 0.1 * t)
    hum = 0.5 * np.sin(2 * np.pi * 60 * t)
    out = bandpass_ecg((wanted + drift + hum)[None].astype(np.float32), fs)[0]
    assert _band_power(out, 60) < 1e-3 * _band_power(hum, 60)
    inner = slice(500, -500)
    np.testing.assert_allclose(out[inner], wanted[inner], atol=0.08)
    assert abs(out[inner].mean()) < 0.02  # the 0.1 Hz drift is gone


def test_remove_baseline_centres_each_lead() -> None:
    sig = np.stack([np.full(100, 3.0), np.linspace(-1, 1, 100)]).astype(np.float32)
    out = remove_baseline(sig)
    np.testing.assert_allclose(np.median(out, axis=1), 0.0, atol=1e-6)


def test_fix_length_pads_and_truncates() -> None:
    assert fix_length(np.ones((2, 3000), np.float32)).shape == (2, ECG_SAMPLES)
    short = fix_length(np.ones((2, 1000), np.float32))
    assert short[:, :1000].sum() == 2000 and short[:, 1000:].sum() == 0


def test_leads_go_to_canonical_order_with_missing_ones_masked() -> None:
    names = ["V6", "I", "aVR"]
    sig = np.stack([np.full(10, k, np.float32) for k in (6.0, 1.0, 4.0)])
    out, mask = canonical_leads(sig, names)
    assert out.shape == (12, 10)
    assert mask.tolist() == [n in names for n in STANDARD_LEADS]
    assert out[STANDARD_LEADS.index("V6"), 0] == 6.0 and out[STANDARD_LEADS.index("aVR"), 0] == 4.0
    assert not out[~mask].any()


def test_preprocess_ecg_from_a_1000_hz_record() -> None:
    rng = np.random.default_rng(0)
    sig = (0.1 * rng.normal(size=(8, 10_000)) + 1.0).astype(np.float32)
    leads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    out, mask = preprocess_ecg(ECG(sig, 1000.0, leads))
    assert out.shape == (12, 2500) and out.dtype == np.float32
    assert mask.sum() == 8 and not mask[STANDARD_LEADS.index("aVF")]
    assert abs(float(np.median(out[0]))) < 1e-3  # DC offset of 1 mV removed


def test_frame_sampling_spans_the_loop_evenly() -> None:
    idx = sample_frame_indices(32, 16)
    assert idx[0] == 0 and idx[-1] == 31 and len(idx) == 16
    assert np.all(np.diff(idx) >= 1) and np.ptp(np.diff(idx)) <= 1
    assert sample_frame_indices(5, 8).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]


def test_echo_views_are_resized_sampled_and_masked() -> None:
    frames = np.zeros((20, 80, 100), np.uint8)
    frames[:, :, :50] = 200
    out, mask = preprocess_echo({"PLAX": EchoCine(frames, 30.0, view="PLAX")}, 8, 32)
    assert out.shape == (3, 8, 32, 32) and out.dtype == np.uint8
    assert mask.tolist() == [False, False, True]
    assert out[2, :, :, :12].min() > 190 and out[2, :, :, -12:].max() < 10
    assert not out[:2].any()


def test_cxr_resized_and_kept_in_unit_range() -> None:
    img = np.zeros((300, 200), np.float32)
    img[:150] = 1.0
    out = preprocess_cxr(CXR(img), 64)
    assert out.shape == (64, 64) and 0.0 <= out.min() and out.max() <= 1.0
    assert out[:28].mean() > 0.99 and out[36:].mean() < 0.01


def test_labs_text_is_tokenised_with_the_minilm_tokenizer() -> None:
    labs = Labs(items=[LabItem("NT-proBNP", 1234.0, "pg/mL")])
    tok = load_tokenizer("minilm")
    ids, lines = tokenise_labs(labs.textualise(), tok, 64)
    words = tok.convert_ids_to_tokens(ids.tolist())
    assert words[0] == "[CLS]" and words[-1] == "[SEP]" and "patient" in words
    assert lines[0] == lines[-1] == -1 and (lines[1:-1] == 0).all()


def test_each_token_knows_its_lab_text_line() -> None:
    labs = Labs(
        items=[LabItem("NT-proBNP", 1234.0, "pg/mL"), LabItem("Sodium", 131.0, "mmol/L")],
        history="hypertension",
    )
    tok = load_tokenizer("minilm")
    ids, lines = tokenise_labs(labs.textualise(), tok, 64)
    words = tok.convert_ids_to_tokens(ids.tolist())
    assert lines[words.index("sodium")] == 1 and lines[words.index("history")] == 2
    assert sorted(set(lines.tolist())) == [-1, 0, 1, 2]
    assert (np.diff(lines[1:-1]) >= 0).all()


def test_case_to_inputs_marks_present_modalities() -> None:
    cfg = ModelConfig(echo_frames=4, echo_size=32, cxr_size=64)
    x = case_to_inputs(make_case(0, 1, ("labs", "echo")), cfg)
    assert x.present.tolist() == [[True, False, True, False]]
    assert x.echo.shape == (1, 3, 4, 32, 32) and x.echo_views.tolist() == [[True, True, False]]
    assert x.ecg.shape == (1, 1, 12, 2500) and not x.ecg.any()
    assert x.input_ids.shape[1] == int(x.attention_mask.sum())
