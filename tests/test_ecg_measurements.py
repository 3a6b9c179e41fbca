"""ECG interval measurements against planted synthetic truth and a real machine's readings.

Margins come from the 100-case run of ``benchmarks/ecg_measurements.py`` (seed 11): sinus
HR within 5/min in 100 %, non-LBBB QRS within 20 ms of planted in 100 % (median +7.5 ms),
LBBB +58 ms over planted (all read 190-235 ms), AF irregular and sinus regular in 100 %
(RR CV: sinus at most 0.029, AF at least 0.117), PR None in every AF case.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from pydicom import dcmread

from fuselens.app.ingest import read_ecg_dicom
from fuselens.explain.ecg_measurements import ECGMeasurements, measure_ecg
from fuselens.model_zoo.case import ECG, STANDARD_LEADS
from fuselens.model_zoo.synth.cohort import STREAM_ECG
from fuselens.model_zoo.synth.ecg import RATE_HZ, simulate_ecg
from fuselens.model_zoo.synth.latent import Latent, draw_latent, patient_rng

SEED = 11


def synthetic_ecg(latent: Latent) -> ECG:
    signal, _ = simulate_ecg(latent, patient_rng(SEED, latent.index, STREAM_ECG))
    return ECG(signal, float(RATE_HZ), list(STANDARD_LEADS))


@pytest.fixture(scope="module")
def measured() -> list[tuple[Latent, ECGMeasurements]]:
    """The first 30 seed-11 cases with an ECG, simulated as ``write_cohort`` renders them."""
    out, index = [], 0
    while len(out) < 30:
        latent = draw_latent(SEED, index)
        index += 1
        if "ecg" in latent.modalities:
            out.append((latent, measure_ecg(synthetic_ecg(latent))))
    return out


def test_heart_rate_matches_planted_rate_in_sinus(measured):
    sinus = [(lat, m) for lat, m in measured if not lat.has("atrial_fibrillation")]
    ok = [abs(m.heart_rate - lat.params["heart_rate"]) <= 5 for lat, m in sinus]
    assert len(sinus) >= 20
    assert sum(ok) / len(ok) >= 0.95


def test_qrs_matches_planted_width_without_lbbb(measured):
    normal = [(lat, m) for lat, m in measured if not lat.has("lbbb")]
    ok = [m.qrs_ms is not None and abs(m.qrs_ms - lat.params["qrs_ms"]) <= 20 for lat, m in normal]
    assert sum(ok) / len(ok) >= 0.9


def test_lbbb_reads_broad(measured):
    lbbb = [m for lat, m in measured if lat.has("lbbb")]
    normal = [m.qrs_ms for lat, m in measured if not lat.has("lbbb")]
    assert lbbb, "the sample should hold LBBB cases"
    assert all(m.qrs_ms is not None and m.qrs_ms >= 150 for m in lbbb)
    assert max(normal) < 130


def test_af_is_irregular_without_pr_and_sinus_regular_with_pr(measured):
    af = [m for lat, m in measured if lat.has("atrial_fibrillation")]
    sinus = [m for lat, m in measured if not lat.has("atrial_fibrillation")]
    assert af and sinus
    assert all(m.regular is False for m in af)
    assert all(m.pr_ms is None for m in af)
    assert all(m.regular is True for m in sinus)
    assert sum(m.pr_ms is not None for m in sinus) / len(sinus) >= 0.9


def machine_measurements(path: str) -> dict[str, float]:
    out = {}
    for item in dcmread(path).WaveformAnnotationSequence:
        if "NumericValue" in item:
            out[str(item.ConceptNameCodeSequence[0].CodeMeaning)] = float(item.NumericValue)
    return out


def test_real_dicom_ecg_agrees_with_its_machine(testdata: Callable[[str], str]):
    path = testdata("waveform_ecg.dcm")
    machine = machine_measurements(path)
    m = measure_ecg(read_ecg_dicom(path).part)
    assert m.lead == "II" and m.regular is True
    assert m.heart_rate == pytest.approx(60000.0 / machine["RR Interval"], abs=2.0)
    assert m.pr_ms == pytest.approx(machine["PR Interval"], abs=15.0)
    # 64 ms against the machine's 75: the 20 % velocity threshold was chosen on synthetic
    # LBBB against its drawn QRS (explain/ecg_measurements.py); 15 % read 68 ms here
    assert m.qrs_ms == pytest.approx(machine["QRS Duration"], abs=15.0)
    assert m.qt_ms == pytest.approx(machine["QT Interval"], abs=25.0)
    assert m.qtc_ms == pytest.approx(machine["QTc Interval"], abs=25.0)


def test_flat_and_short_recordings_raise():
    flat = ECG(np.zeros((12, 5000), np.float32), 500.0, list(STANDARD_LEADS))
    with pytest.raises(ValueError, match="flat"):
        measure_ecg(flat)
    short = synthetic_ecg(draw_latent(SEED, 1))
    short = ECG(short.signal[:, :1000].copy(), 500.0, short.lead_names)
    with pytest.raises(ValueError, match="too short"):
        measure_ecg(short)


def test_flat_preferred_lead_falls_back_to_the_next():
    ecg = synthetic_ecg(draw_latent(SEED, 1))
    ecg.signal[STANDARD_LEADS.index("II")] = 0.0
    assert measure_ecg(ecg).lead == "V5"
    with pytest.raises(ValueError, match="lead II is flat"):
        measure_ecg(ecg, lead="II")


def test_no_warnings_escape_and_it_is_fast():
    ecg = synthetic_ecg(draw_latent(SEED, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measure_ecg(ecg)
        t0 = time.perf_counter()
        measure_ecg(ecg)
        seconds = time.perf_counter() - t0
    assert not caught
    assert seconds < 1.0


def test_print_line_and_dict():
    m = ECGMeasurements("II", 12, 72.2, 0.02, True, 160.4, 96.0, 380.0, 412.3, "test")
    assert m.print_line() == "HR 72/min · RR regular · PR 160 ms · QRS 96 ms · QT/QTc 380/412 ms"
    assert json.loads(json.dumps(m.to_dict()))["qtc_ms"] == 412.3
    af = ECGMeasurements("II", 14, 101.0, 0.2, False, None, None, 350.0, None, "test")
    assert af.print_line() == "HR 101/min · RR irregular · PR – · QRS – · QT 350 ms"
