"""ECG readers: DICOM waveform, WFDB, CSV, NPY — real files, round trips and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import wfdb

from fuselens.app.ingest import (
    IngestError,
    read_ecg_csv,
    read_ecg_dicom,
    read_ecg_npy,
    read_ecg_wfdb,
    read_file,
)
from fuselens.app.ingest.leads import canonical_lead, lead_from_code
from fuselens.model_zoo.case import STANDARD_LEADS

PTBXL_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def synthetic_ecg(rate: float = 500.0, seconds: float = 2.0, leads: int = 12) -> np.ndarray:
    """(leads, samples) in mV: a distinct sinusoid per lead."""
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([(0.2 + 0.05 * i) * np.sin(2 * np.pi * (1 + i) * t) for i in range(leads)])


def test_dicom_waveform_rhythm_group_in_mv(testdata):
    path = testdata("waveform_ecg.dcm")
    reading = read_ecg_dicom(path)
    ecg = reading.part
    assert ecg.lead_names == list(STANDARD_LEADS)
    assert ecg.sampling_rate == 1000.0
    assert ecg.signal.shape == (12, 10000)
    assert ecg.signal.dtype == np.float32
    assert 0.5 < float(np.abs(ecg.signal).max()) < 5.0
    assert reading.details["multiplex_group"] == "RHYTHM"
    # same numbers pydicom gets (µV after sensitivity) divided by 1000
    expected = pydicom.dcmread(path).waveform_array(0).T / 1000.0
    np.testing.assert_allclose(ecg.signal, expected, atol=1e-6)
    assert reading.warnings == []


def test_dicom_median_beat_only_is_an_error(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("waveform_ecg.dcm"))
    del ds.WaveformSequence[0]
    path = tmp_path / "median.dcm"
    ds.save_as(path)
    with pytest.raises(IngestError, match="only a median beat"):
        read_ecg_dicom(path)


def test_dicom_without_waveform_is_an_error(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("waveform_ecg.dcm"))
    del ds.WaveformSequence
    path = tmp_path / "nowave.dcm"
    ds.save_as(path)
    with pytest.raises(IngestError, match="no waveform data") as info:
        read_ecg_dicom(path)
    assert info.value.modality == "ecg"


@pytest.mark.parametrize(
    ("label", "lead"),
    [
        ("Lead I (Einthoven)", "I"),
        ("Lead aVR", "aVR"),
        ("Lead V1", "V1"),
        ("AVL", "aVL"),
        ("MDC_ECG_LEAD_AVF", "aVF"),
        ("v6", "V6"),
        ("Lead III", "III"),
        ("V7", None),
        ("Resp", None),
    ],
)
def test_canonical_lead(label, lead):
    assert canonical_lead(label) == lead


def test_lead_codes():
    assert lead_from_code("5.6.3-9-62") == "aVR"
    assert lead_from_code("2:3") == "V1"
    assert lead_from_code("5.6.3-9-999") is None


def test_wfdb_round_trip_ptbxl_names(tmp_path):
    signal = synthetic_ecg(rate=500.0, seconds=3.0)
    order = [3, 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]  # AVR first: the reader must reorder
    wfdb.wrsamp(
        "rec01",
        fs=500,
        units=["mV"] * 12,
        sig_name=[PTBXL_NAMES[i] for i in order],
        p_signal=signal[order].T,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path),
    )
    reading = read_ecg_wfdb(tmp_path / "rec01.hea")
    ecg = reading.part
    assert ecg.lead_names == list(STANDARD_LEADS)
    assert ecg.sampling_rate == 500.0
    np.testing.assert_allclose(ecg.signal, signal, atol=1e-3)
    # read_file finds the same record from the .dat too
    modality, part, report = read_file(tmp_path / "rec01.dat")
    assert modality == "ecg" and report.ok and part.signal.shape == (12, 1500)


def test_wfdb_missing_dat_is_an_error(tmp_path):
    wfdb.wrsamp(
        "rec02",
        fs=250,
        units=["mV"] * 12,
        sig_name=PTBXL_NAMES,
        p_signal=synthetic_ecg(250.0).T,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path),
    )
    (tmp_path / "rec02.dat").unlink()
    with pytest.raises(IngestError) as info:
        read_ecg_wfdb(tmp_path / "rec02.hea")
    assert info.value.modality == "ecg" and "rec02" in str(info.value)


def write_csv(path: Path, signal: np.ndarray, names, rate=None, time=False, units=None) -> Path:
    lines = []
    if rate is not None:
        lines.append(f"# sampling_rate={rate}")
    if units:
        lines.append(f"# units={units}")
    header = (["time"] if time else []) + list(names)
    lines.append(",".join(header))
    step = 1.0 / (rate or 500.0)
    for k, row in enumerate(signal.T):
        cells = ([f"{k * step:.6f}"] if time else []) + [f"{v:.6f}" for v in row]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_round_trip_with_rate_comment(tmp_path):
    signal = synthetic_ecg(rate=250.0)
    path = write_csv(tmp_path / "ecg.csv", signal, PTBXL_NAMES, rate=250)
    ecg = read_ecg_csv(path).part
    assert ecg.sampling_rate == 250.0 and ecg.lead_names == list(STANDARD_LEADS)
    np.testing.assert_allclose(ecg.signal, signal, atol=1e-5)


def test_csv_round_trip_with_time_column_in_uv(tmp_path):
    signal = synthetic_ecg(rate=500.0)
    path = write_csv(tmp_path / "ecg.csv", signal * 1000, STANDARD_LEADS, time=True, units="uV")
    assert "sampling_rate" not in path.read_text()
    reading = read_ecg_csv(path)
    assert reading.part.sampling_rate == pytest.approx(500.0)
    np.testing.assert_allclose(reading.part.signal, signal, atol=1e-5)
    assert read_file(path)[0] == "ecg"


def test_csv_unknown_sampling_rate(tmp_path):
    path = write_csv(tmp_path / "ecg.csv", synthetic_ecg(), STANDARD_LEADS)
    with pytest.raises(IngestError, match="unknown sampling rate"):
        read_ecg_csv(path)


def test_csv_nan_names_the_leads(tmp_path):
    signal = synthetic_ecg()
    signal[2, 100] = np.nan
    signal[7, 5:9] = np.nan
    path = write_csv(tmp_path / "ecg.csv", signal, STANDARD_LEADS, rate=500)
    with pytest.raises(IngestError, match=r"NaN .* leads III, V2$"):
        read_ecg_csv(path)


def test_flat_lead_is_a_warning(tmp_path):
    signal = synthetic_ecg()
    signal[8] = 0.0
    path = write_csv(tmp_path / "ecg.csv", signal, STANDARD_LEADS, rate=500)
    reading = read_ecg_csv(path)
    assert any("flat leads" in w and w.endswith("V3") for w in reading.warnings)


def test_six_limb_leads_read_with_warning(tmp_path):
    path = write_csv(tmp_path / "ecg.csv", synthetic_ecg(leads=6), STANDARD_LEADS[:6], rate=500)
    reading = read_ecg_csv(path)
    assert reading.part.lead_names == list(STANDARD_LEADS[:6])
    assert any("V1, V2, V3, V4, V5, V6" in w and "precordial" in w for w in reading.warnings)


def test_extra_channels_are_warned_and_dropped(tmp_path):
    signal = synthetic_ecg(leads=13)
    path = tmp_path / "ecg.npy"
    np.save(path, signal)
    names = [*STANDARD_LEADS, "V7"]
    (tmp_path / "ecg.json").write_text(json.dumps({"sampling_rate": 500, "leads": names}))
    reading = read_ecg_npy(path)
    assert reading.part.signal.shape == (12, 1000)
    assert any("V7" in w for w in reading.warnings)


def test_npy_round_trip_samples_by_leads_in_uv(tmp_path):
    signal = synthetic_ecg(rate=360.0)
    path = tmp_path / "ecg.npy"
    np.save(path, (signal * 1000).T.astype(np.float32))
    sidecar = {"sampling_rate": 360, "leads": PTBXL_NAMES, "units": "uV"}
    (tmp_path / "ecg.json").write_text(json.dumps(sidecar))
    ecg = read_ecg_npy(path).part
    assert ecg.sampling_rate == 360.0 and ecg.lead_names == list(STANDARD_LEADS)
    np.testing.assert_allclose(ecg.signal, signal, atol=1e-4)


def test_npy_without_sidecar_unknown_rate(tmp_path):
    path = tmp_path / "ecg.npy"
    np.save(path, synthetic_ecg())
    with pytest.raises(IngestError, match="unknown sampling rate") as info:
        read_ecg_npy(path)
    assert str(info.value).startswith("ecg.npy: ecg: ")


def test_microvolts_declared_as_millivolts_is_caught(tmp_path):
    path = write_csv(tmp_path / "ecg.csv", synthetic_ecg() * 1000, STANDARD_LEADS, rate=500)
    with pytest.raises(IngestError, match="wrong units"):
        read_ecg_csv(path)
