"""Round trip with the synthetic cohort: its files load back into the values it rendered."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from fuselens.app.ingest import load_case, read_cxr_dicom
from fuselens.model_zoo.synth.cohort import (
    STREAM_CXR,
    STREAM_ECG,
    STREAM_ECHO,
    STREAM_LABS,
    write_case,
)
from fuselens.model_zoo.synth.cxr import simulate_cxr
from fuselens.model_zoo.synth.dicom import PatientMeta, RadiographStyle, write_cxr
from fuselens.model_zoo.synth.ecg import simulate_ecg
from fuselens.model_zoo.synth.echo import simulate_echo
from fuselens.model_zoo.synth.labs import make_labs
from fuselens.model_zoo.synth.latent import draw_latent, patient_rng

SEED = 3


def full_cases(count: int) -> list[int]:
    """Indices of patients with all four modalities."""
    out = []
    for index in range(100):
        if set(draw_latent(SEED, index).modalities) == {"labs", "ecg", "echo", "cxr"}:
            out.append(index)
        if len(out) == count:
            return out
    raise AssertionError("no patients with all four modalities")


@pytest.mark.parametrize("index", full_cases(2))
def test_synthetic_case_round_trip(tmp_path, index):
    truth = write_case(tmp_path, SEED, index)
    folder = tmp_path / truth["case_id"]
    case, reports = load_case(folder)
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
    assert {r.path.rsplit("/", 1)[-1] for r in reports} == {"labs.csv", "ecg.dcm", "cxr.dcm"} | {
        f"echo_{v}.dcm" for v in truth["echo_views"]
    }  # evidence.npz and truth.json are not inputs
    assert case.case_id == truth["case_id"]
    assert case.modalities() == ["labs", "ecg", "echo", "cxr"]
    assert sorted(case.echo) == sorted(truth["echo_views"])  # views from ViewCodeSequence
    case.validate()
    assert case.demographics.sex == truth["demographics"]["sex"]
    assert case.demographics.age == truth["demographics"]["age"]

    latent = draw_latent(SEED, index)
    signal, _ = simulate_ecg(latent, patient_rng(SEED, index, STREAM_ECG))
    assert case.ecg.sampling_rate == 500.0 and case.ecg.signal.shape == signal.shape
    assert np.abs(case.ecg.signal - signal).max() <= 0.0013  # int16 counts of <= 2.5 µV
    for clip in simulate_echo(latent, patient_rng(SEED, index, STREAM_ECHO)):
        np.testing.assert_array_equal(case.echo[clip.view].frames, clip.frames)
        assert case.echo[clip.view].frame_rate == pytest.approx(1000.0 / clip.frame_time_ms, 1e-3)
    image, _ = simulate_cxr(latent, patient_rng(SEED, index, STREAM_CXR))
    assert case.cxr.image.shape == image.shape
    assert np.corrcoef(case.cxr.image.ravel(), image.ravel())[0, 1] > 0.95
    panel = make_labs(latent, patient_rng(SEED, index, STREAM_LABS))
    assert [i.name for i in case.labs.items] == panel.names()
    assert [i.value for i in case.labs.items] == pytest.approx([r.value for r in panel.rows])
    assert case.labs.history == panel.history and case.labs.medications == panel.medications

    ds = pydicom.dcmread(folder / "ecg.dcm", stop_before_pixels=True)
    assert case.identifiers.reveal()["PatientID"] == str(ds.PatientID)
    shown = repr(case) + json.dumps(case.to_summary()) + json.dumps([r.to_dict() for r in reports])
    assert str(ds.PatientID) not in shown and str(ds.PatientName) not in shown


@pytest.mark.parametrize(
    "style",
    [RadiographStyle("CR", "MONOCHROME1", 12), RadiographStyle("DX", "MONOCHROME2", 14)],
)
def test_synthetic_radiograph_styles(tmp_path, style):
    index = full_cases(1)[0]
    latent = draw_latent(SEED, index)
    image, _ = simulate_cxr(latent, patient_rng(SEED, index, STREAM_CXR))
    meta = PatientMeta(SEED, index, latent.case_id, latent.age, latent.sex)
    path = tmp_path / "cxr.dcm"
    write_cxr(path, meta, image, style, 0.7)
    reading = read_cxr_dicom(path)
    # bone bright either way: MONOCHROME1 is inverted back, the window only stretches
    assert np.corrcoef(reading.part.image.ravel(), image.ravel())[0, 1] > 0.98
    assert reading.part.pixel_spacing_mm == (0.7, 0.7)
    assert reading.details["photometric_interpretation"] == style.photometric
