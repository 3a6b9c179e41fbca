"""Exports (HTML report, zipped bundle) and privacy: identifying DICOM fields never shown."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pydicom
import pytest
from app_support import tiny_workstation
from pydicom.data import get_testdata_file

from fuselens.app import exports, image_views, report_views, views
from fuselens.app.session import Workstation, open_uploads, status_table
from fuselens.explain.bundle import ExplanationBundle, GroundedReport, GroundedSentence
from fuselens.explain.methods import DEFAULT_METHOD

NAME, PATIENT_ID, INSTITUTION = "Testperson^Alice", "ID-998877", "Galliera Clinic Genova"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workstation:
    return tiny_workstation(1, tmp_path_factory.mktemp("cases"), tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def named_ecg(tmp_path_factory):
    """pydicom's real 12-lead ECG with a recognisable patient name, ID and institution."""
    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    ds.PatientName, ds.PatientID, ds.InstitutionName = NAME, PATIENT_ID, INSTITUTION
    path = tmp_path_factory.mktemp("upload") / "ecg_alice.dcm"
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def explained(ws, named_ecg, tmp_path_factory):
    loaded = open_uploads([named_ecg], tmp_path_factory.mktemp("work"))
    stages = list(ws.explain(loaded, "heart_failure", "yes"))
    return loaded, stages[-1][1]


def _strings(value) -> list[str]:
    """Every piece of text a panel value would put on screen."""
    if value is None or isinstance(value, np.ndarray):
        return []
    if isinstance(value, str):
        return [value]
    if hasattr(value, "to_json"):
        return [value.to_json()]
    if hasattr(value, "to_csv"):
        return [value.to_csv()]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_identifying_fields_never_reach_a_panel(ws, explained):
    loaded, bundle = explained
    assert loaded.case.identifiers.reveal()["PatientName"] == NAME
    texts = _strings(status_table(loaded.reports))
    texts += _strings(views.opened_panels(loaded.case).values())
    texts += _strings(
        list(views.bundle_panels(loaded.case, bundle, ws.settings([0.5] * 3, 0.5)).values())
    )
    for i in range(len(bundle.report.sentences) if bundle.report else 0):
        texts += _strings(list(report_views.sentence_evidence(loaded.case, bundle, i).values()))
    texts += [views.prediction_context(bundle, None), bundle.case_id]
    joined = "\n".join(texts)
    assert "12 leads" in joined  # the scan did see the panels
    for secret in ("Testperson", "Alice", "998877", "Galliera", "19710123"):
        assert secret not in joined
    assert exports.identifier_leaks(texts, loaded.case.identifiers) == []


def test_exports_hold_the_report_and_bundle_but_no_identifiers(ws, explained, tmp_path):
    loaded, bundle = explained
    html_path, zip_path = exports.export_all(loaded.case, bundle, tmp_path)
    html = html_path.read_text(encoding="utf-8")
    assert "<html" in html.lower() and "not for clinical use" in html
    assert "data:image/png;base64," in html
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "bundle.json"]
        blob = json.loads(zf.read("bundle.json"))
        zf.extractall(tmp_path / "unzipped")
    assert blob["bundle"]["case_id"] == bundle.case_id
    again = ExplanationBundle.load(tmp_path / "unzipped")
    assert list(again.maps) == list(bundle.maps) == [DEFAULT_METHOD]
    assert bundle.maps[DEFAULT_METHOD].ecg is not None
    np.testing.assert_array_equal(again.maps[DEFAULT_METHOD].ecg, bundle.maps[DEFAULT_METHOD].ecg)
    assert again.caveat == bundle.caveat
    for text in (html, json.dumps(blob)):
        for secret in ("Testperson", "Alice", "998877", "Galliera"):
            assert secret not in text


def test_leak_check_catches_a_name_and_refuses_the_export(explained, tmp_path):
    loaded, bundle = explained
    ids = loaded.case.identifiers
    assert exports.identifier_leaks(["seen: ALICE testperson"], ids) == ["PatientName"]
    assert exports.identifier_leaks(["value 0.998877 and 1998877"], ids) == []
    assert exports.identifier_leaks([f"id {PATIENT_ID}."], ids) == ["PatientID"]
    leaky = ExplanationBundle(**{**bundle.__dict__, "case_id": "Testperson"})
    with pytest.raises(exports.IdentifierLeak, match="PatientName"):
        exports.export_html(loaded.case, leaky, tmp_path)
    assert not list(tmp_path.rglob("*.html"))


def test_sentence_evidence_draws_echo_and_cxr_regions_and_lab_items(ws):
    loaded = ws.open_demo("hf-clear")
    bundle = list(ws.explain(loaded, "heart_failure", "yes"))[-1][1]
    case = loaded.case
    sentences = [
        GroundedSentence(
            "Echo: reduced EF.",
            "echo",
            "section",
            {"echo": 0.6, "task": 0.4},
            {"view": "A4C", "frames": [3, 4, 5], "bbox": [20, 30, 60, 80]},
        ),
        GroundedSentence(
            "Chest X-ray: cardiomegaly.",
            "cxr",
            "section",
            {"cxr": 1.0},
            {"bbox": [200, 150, 400, 380], "region": "cardiac silhouette"},
        ),
        GroundedSentence(
            "Labs: raised NT-proBNP.",
            "labs",
            "section",
            {"labs": 1.0},
            {
                "items": [
                    {"name": "NT-proBNP", "value": 5201, "unit": "pg/mL", "attribution": 0.4},
                    {"name": "History", "value": None, "unit": "", "attribution": 0.1},
                ],
                "source": "text_shap",
                "tokens": [{"token": "5201", "attribution": 0.3}],
            },
        ),
    ]
    report = GroundedReport(" ".join(s.text for s in sentences), sentences)
    shown = ExplanationBundle(**{**bundle.__dict__, "report": report})
    echo = report_views.sentence_evidence(case, shown, 0)
    magenta = (echo["evidence_image"] == [255, 0, 160]).all(axis=-1)
    rows, cols = np.nonzero(magenta)
    scale = image_views.ECHO_DISPLAY_SIDE / case.echo["A4C"].frames.shape[1]
    assert rows.min() == pytest.approx(20 * scale, abs=3) and cols.max() == pytest.approx(
        80 * scale, abs=3
    )
    assert "View A4C, frames 3–5" in echo["evidence_md"]
    cxr = report_views.sentence_evidence(case, shown, 1)
    assert (cxr["evidence_image"] == [255, 0, 160]).all(axis=-1).any()
    assert "cardiac silhouette" in cxr["evidence_md"]
    labs = report_views.sentence_evidence(case, shown, 2)
    assert "| NT-proBNP | 5201 pg/mL | +0.400 |" in labs["evidence_md"]
    assert "| History | (text) | +0.100 |" in labs["evidence_md"]
    assert "“5201” +0.300" in labs["evidence_md"]
    assert labs["evidence_image"] is None and labs["evidence_ecg"] is None
