"""The 12-lead print figure, built from pydicom's real 12-lead DICOM ECG."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from fuselens.app.figures.ecg_print import (
    COLUMN_S,
    GRID_LAYOUT,
    MINOR_MV,
    MINOR_S,
    ecg_print_figure,
    row_baseline,
)
from fuselens.model_zoo.case import ECG, STANDARD_LEADS


@pytest.fixture(scope="module")
def real_ecg() -> ECG:
    ds = dcmread(get_testdata_file("waveform_ecg.dcm"))
    names = [
        ch.ChannelSourceSequence[0].CodeMeaning.replace("Lead ", "").replace(" (Einthoven)", "")
        for ch in ds.WaveformSequence[0].ChannelDefinitionSequence
    ]
    assert names == list(STANDARD_LEADS)
    signal = (ds.waveform_array(0).T / 1000.0).astype(np.float32)  # µV -> mV
    ecg = ECG(signal, float(ds.WaveformSequence[0].SamplingFrequency), names)
    ecg.validate()
    return ecg


def _subset(ecg: ECG, leads: list[str]) -> ECG:
    rows = [ecg.lead_names.index(n) for n in leads]
    return ECG(ecg.signal[rows], ecg.sampling_rate, leads)


def _traces(fig, kind: str) -> list:
    return [t for t in fig.data if t.meta and t.meta.get("kind") == kind]


def _lead_trace(fig, lead: str, rhythm: bool = False):
    for t in _traces(fig, "lead"):
        if t.meta["lead"] == lead and (t.meta["col"] is None) == rhythm:
            return t
    return None


def _annotation(fig, name: str):
    return next((a for a in fig.layout.annotations if a.name == name), None)


def test_thirteen_lead_traces_in_the_print_layout(real_ecg: ECG) -> None:
    fig = ecg_print_figure(real_ecg)
    leads = _traces(fig, "lead")
    assert len(leads) == 13
    for row, row_leads in enumerate(GRID_LAYOUT):
        for col, lead in enumerate(row_leads):
            t = _lead_trace(fig, lead)
            assert (t.meta["row"], t.meta["col"]) == (row, col)
            x = np.asarray(t.x, dtype=float)
            assert x.min() == pytest.approx(col * COLUMN_S, abs=1e-4)
            assert x.max() < (col + 1) * COLUMN_S
            assert x.max() - x.min() == pytest.approx(COLUMN_S, abs=0.01)
            y = np.asarray(t.y, dtype=float)
            assert abs(np.median(y) - row_baseline(row)) < 0.3
    rhythm = _lead_trace(fig, "II", rhythm=True)
    x = np.asarray(rhythm.x, dtype=float)
    assert x.min() == pytest.approx(0.0) and x.max() == pytest.approx(10.0, abs=0.01)
    assert _annotation(fig, "label:rhythm:II") is not None


def test_grid_is_25_mm_per_s_and_10_mm_per_mv_with_square_boxes(real_ecg: ECG) -> None:
    fig = ecg_print_figure(real_ecg)
    xa, ya = fig.layout.xaxis, fig.layout.yaxis
    assert xa.minor.dtick == pytest.approx(0.04) and xa.dtick == pytest.approx(0.2)
    assert ya.minor.dtick == pytest.approx(0.1) and ya.dtick == pytest.approx(0.5)
    assert xa.minor.showgrid and ya.minor.showgrid
    assert ya.scaleanchor == "x"
    # one 1 mm box is 0.04 s wide and 0.1 mV tall: equal pixels means square boxes
    assert math.isclose(MINOR_MV * ya.scaleratio, MINOR_S)
    # baselines sit on 5 mm lines so the paper grid lines up with every row
    for row in range(4):
        assert (row_baseline(row) / ya.dtick) == pytest.approx(round(row_baseline(row) / ya.dtick))


def test_calibration_pulse_is_1_mv_by_0_2_s_on_every_row(real_ecg: ECG) -> None:
    (cal,) = _traces(ecg_print_figure(real_ecg), "calibration")
    xs, ys = list(cal.x), list(cal.y)
    pulses: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if x is None:
            pulses.append([])
        else:
            pulses[-1].append((x, y))
    pulses = [p for p in pulses if p]
    assert len(pulses) == 4
    for row, pulse in enumerate(pulses):
        px = np.array([p[0] for p in pulse])
        py = np.array([p[1] for p in pulse])
        assert py.min() == pytest.approx(row_baseline(row))
        assert py.max() - py.min() == pytest.approx(1.0)
        top = px[py == py.max()]
        assert top.max() - top.min() == pytest.approx(0.2)
        assert px.max() <= 0.0


def test_amplitude_is_kept_in_millivolts(real_ecg: ECG) -> None:
    rhythm = _lead_trace(ecg_print_figure(real_ecg), "II", rhythm=True)
    drawn = np.asarray(rhythm.customdata, dtype=float)
    assert len(drawn) == 2500  # 1000 Hz drawn at 250 Hz
    raw = real_ecg.lead("II").astype(float)
    raw = raw - np.median(raw)
    assert drawn.max() == pytest.approx(raw.max(), rel=0.15)
    np.testing.assert_allclose(
        np.asarray(rhythm.y, dtype=float), drawn + row_baseline(3), atol=1e-4
    )


def test_missing_lead_leaves_a_labelled_empty_slot(real_ecg: ECG) -> None:
    fig = ecg_print_figure(_subset(real_ecg, [n for n in STANDARD_LEADS if n != "V3"]))
    assert len(_traces(fig, "lead")) == 12
    assert _lead_trace(fig, "V3") is None
    note = _annotation(fig, "missing:V3")
    assert note is not None and "lead missing" in note.text
    assert note.x == pytest.approx(2 * COLUMN_S, abs=0.6)
    assert _annotation(fig, "missing:V2") is None


def test_rhythm_strip_falls_back_when_lead_ii_is_missing(real_ecg: ECG) -> None:
    fig = ecg_print_figure(_subset(real_ecg, ["I", "V1", "V5"]))
    assert _lead_trace(fig, "V1", rhythm=True) is not None
    assert _annotation(fig, "label:rhythm:V1") is not None
    assert _annotation(fig, "missing:II") is not None


def test_lead_order_of_the_input_does_not_matter(real_ecg: ECG) -> None:
    shuffled = list(reversed(STANDARD_LEADS))
    a = _lead_trace(ecg_print_figure(real_ecg), "aVL")
    b = _lead_trace(ecg_print_figure(_subset(real_ecg, shuffled)), "aVL")
    np.testing.assert_allclose(np.asarray(a.y), np.asarray(b.y))


def _heat_for(ecg: ECG, lead: str, t0: float, t1: float, value: float = 1.0) -> np.ndarray:
    heat = np.zeros(ecg.signal.shape, dtype=np.float32)
    rate = ecg.sampling_rate
    heat[ecg.lead_names.index(lead), int(t0 * rate) : int(t1 * rate)] = value
    return heat


def _shading_row(fig, row: int) -> np.ndarray:
    (trace,) = [t for t in _traces(fig, "shading") if t.meta["row"] == row]
    return np.asarray(trace.z, dtype=float)[0]


def test_shading_where_heat_is_high_and_none_where_it_is_zero(real_ecg: ECG) -> None:
    heat = _heat_for(real_ecg, "aVL", 3.0, 3.4) + _heat_for(real_ecg, "II", 6.0, 7.0, 0.5)
    fig = ecg_print_figure(real_ecg, heat, heat_label="Grad-CAM++")
    row1 = _shading_row(fig, 1)  # II | aVL | V2 | V5
    assert row1.shape == (500,)  # 0.02 s bins
    np.testing.assert_allclose(row1[150:170], 1.0)  # aVL slot, 3.0-3.4 s
    assert np.all(row1[:150] == 0) and np.all(row1[170:] == 0)
    assert np.all(_shading_row(fig, 0) == 0)
    rhythm = _shading_row(fig, 3)  # lead II over 10 s
    np.testing.assert_allclose(rhythm[300:350], 0.5)
    assert np.all(rhythm[:300] == 0) and np.all(rhythm[350:] == 0)
    shown = [t for t in _traces(fig, "shading") if t.showscale]
    assert len(shown) == 1 and shown[0].colorbar.title.text == "Grad-CAM++"
    assert "rgba" in shown[0].colorscale[0][1] and shown[0].colorscale[0][1].endswith(",0)")
    # shading is drawn behind the traces
    kinds = [t.meta["kind"] for t in fig.data]
    assert max(i for i, k in enumerate(kinds) if k == "shading") < kinds.index("lead")


def test_heat_at_another_rate_is_resampled(real_ecg: ECG) -> None:
    heat = np.zeros((12, 2500), dtype=np.float32)  # 250 Hz map for a 1000 Hz signal
    heat[STANDARD_LEADS.index("V5"), 2000:2100] = 1.0  # 8.0-8.4 s
    row1 = _shading_row(ecg_print_figure(real_ecg, heat), 1)
    assert row1[402:418].min() > 0.95
    assert row1[:398].max() == 0 and row1[422:].max() == 0


def test_heat_is_checked(real_ecg: ECG) -> None:
    with pytest.raises(ValueError, match="leads=12"):
        ecg_print_figure(real_ecg, np.zeros((11, 10000)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ecg_print_figure(real_ecg, np.full((12, 10000), 3.0))


def test_long_signal_shows_first_10_s_and_short_signal_fills_what_exists(real_ecg: ECG) -> None:
    long = ECG(np.concatenate([real_ecg.signal] * 2, axis=1), 1000.0, real_ecg.lead_names)
    fig = ecg_print_figure(long)
    assert np.asarray(_lead_trace(fig, "II", rhythm=True).x).max() < 10.0
    assert "first 10 s of 20.0 s" in _annotation(fig, "footer").text

    short = ECG(real_ecg.signal[:, :6000], 1000.0, real_ecg.lead_names)
    fig = ecg_print_figure(short, np.ones((12, 6000), dtype=np.float32))
    assert len(_traces(fig, "lead")) == 10  # the V4-V6 column (7.5-10 s) is empty
    assert np.asarray(_lead_trace(fig, "V1").x).max() == pytest.approx(6.0, abs=0.01)
    assert np.asarray(_lead_trace(fig, "II", rhythm=True).x).max() < 6.0
    rhythm = _shading_row(fig, 3)
    assert np.all(rhythm[:300] == 1.0) and np.isnan(rhythm[300:]).all()


def test_low_rate_signal_is_not_upsampled(real_ecg: ECG) -> None:
    low = ECG(real_ecg.signal[:, ::5].copy(), 200.0, real_ecg.lead_names)
    rhythm = _lead_trace(ecg_print_figure(low), "II", rhythm=True)
    assert len(rhythm.x) == 2000


def test_width_follows_the_container_and_height_is_settable(real_ecg: ECG) -> None:
    fig = ecg_print_figure(real_ecg, height=600)
    assert fig.layout.height == 600 and fig.layout.width is None
    assert fig.layout.xaxis.constrain == "domain" and fig.layout.yaxis.constrain == "domain"
