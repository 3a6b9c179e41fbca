"""Demo cases: the catalogue's stories match the planted truth; folders are written once."""

from __future__ import annotations

import json
import shutil

import pytest
from pydicom.data import get_testdata_file

from fuselens.app.demo_cases import STAMP, DemoCase, load_catalogue, materialise
from fuselens.app.ingest import load_case
from fuselens.model_zoo.synth.latent import draw_latent


@pytest.fixture(scope="module")
def catalogue() -> dict[str, DemoCase]:
    return {d.key: d for d in load_catalogue()}


def test_catalogue_has_the_promised_stories(catalogue):
    assert {"hf-clear", "none-clear", "missing-modalities", "model-wrong", "real-ecg"} <= set(
        catalogue
    )
    clear = draw_latent(catalogue["hf-clear"].seed, catalogue["hf-clear"].index)
    assert clear.heart_failure == 1 and set(clear.evidence_modalities) == {
        "labs",
        "ecg",
        "echo",
        "cxr",
    }
    none = draw_latent(catalogue["none-clear"].seed, catalogue["none-clear"].index)
    assert none.heart_failure == 0 and not any(none.findings.values()) and not none.confounders
    missing = draw_latent(
        catalogue["missing-modalities"].seed, catalogue["missing-modalities"].index
    )
    assert set(missing.modalities) < {"labs", "ecg", "echo", "cxr"}
    ckd = draw_latent(catalogue["ckd-confounder"].seed, catalogue["ckd-confounder"].index)
    assert ckd.heart_failure == 0 and "ckd" in ckd.confounders and ckd.has("raised_ntprobnp")
    wrong = draw_latent(catalogue["model-wrong"].seed, catalogue["model-wrong"].index)
    assert wrong.heart_failure == 1 and not wrong.has("raised_ntprobnp")
    assert not wrong.has("reduced_ef")
    assert catalogue["real-ecg"].testdata == "waveform_ecg.dcm"


def test_catalogue_rejects_ambiguous_entries(tmp_path):
    bad = {"cases": [{"key": "x", "title": "x", "story": "", "seed": 1, "testdata": "a.dcm"}]}
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="seed\\+index or testdata"):
        load_catalogue(path)


def test_synthetic_case_is_written_once_and_deterministically(catalogue, tmp_path):
    demo = catalogue["missing-modalities"]
    first = materialise(demo, tmp_path / "a")
    assert (first / STAMP).is_file() and (first / "truth.json").is_file()
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    again = materialise(demo, tmp_path / "a")
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in again.iterdir()} == mtimes
    other = materialise(demo, tmp_path / "b")
    for path in first.iterdir():
        assert (other / path.name).read_bytes() == path.read_bytes(), path.name
    case, reports = load_case(first)
    assert case.modalities() == ["labs", "echo"] and all(r.ok for r in reports)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".writing")]


def test_stale_or_partial_folder_is_rewritten(catalogue, tmp_path):
    demo = catalogue["none-clear"]
    folder = materialise(demo, tmp_path)
    (folder / "ecg.dcm").unlink()
    (folder / STAMP).write_text(json.dumps({"seed": demo.seed, "index": 0, "generator": "old"}))
    rewritten = materialise(demo, tmp_path)
    assert (rewritten / "ecg.dcm").is_file()
    shutil.rmtree(rewritten)
    assert (materialise(demo, tmp_path) / "ecg.dcm").is_file()


def test_real_ecg_case_is_pydicoms_file(catalogue, tmp_path):
    folder = materialise(catalogue["real-ecg"], tmp_path)
    copied = folder / "waveform_ecg.dcm"
    assert copied.read_bytes() == open(get_testdata_file("waveform_ecg.dcm"), "rb").read()
    case, reports = load_case(folder)
    assert case.modalities() == ["ecg"] and case.ecg.sampling_rate == 1000.0


def test_demo_model_tells_the_stories(catalogue, tmp_path):
    """With the shipped demo checkpoint: clear cases right; the two cases whose stories say the
    model answers no (it misses heart failure) wrong."""
    from fuselens.model_zoo.loading import load_explainable
    from fuselens.model_zoo.predict import predict_case
    from fuselens.model_zoo.registry import DEMO_MODEL_DIR, WEIGHTS_FILE

    if not (DEMO_MODEL_DIR / WEIGHTS_FILE).is_file():
        pytest.skip("no demo checkpoint in assets/demo_model")
    model = load_explainable("demo", device="cpu")
    truth = {
        "hf-clear": 1,
        "none-clear": 0,
        "ckd-confounder": 0,
        "model-wrong": 1,
        "missing-modalities": 1,
    }
    for key, label in truth.items():
        case, _ = load_case(materialise(catalogue[key], tmp_path))
        p = predict_case(model, case)["tasks"]["heart_failure"]["probability"]
        if key in ("model-wrong", "missing-modalities"):
            assert (p > 0.5) != bool(label), (key, p)
        else:
            assert (p > 0.5) == bool(label), (key, p)
