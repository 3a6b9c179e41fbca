"""The README's ``my_model.py``, copied out as written, explains a case of real files
(pydicom's 12-lead ECG, pydicom-data's chest radiograph) with ``fuselens explain`` and in the
workstation, loaded as ``--model my_model:build``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_model_source() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n# my_model\.py\n(.*?)```", text, re.S)
    assert found, "README.md has no ```python block starting with '# my_model.py'"
    return found.group(1)


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A user's folder: the README's my_model.py and a case folder of real DICOM files."""
    from pydicom.data import get_testdata_file

    folder = tmp_path_factory.mktemp("user")
    (folder / "my_model.py").write_text(readme_model_source(), encoding="utf-8")
    case = folder / "case"
    case.mkdir()
    shutil.copy(get_testdata_file("waveform_ecg.dcm"), case / "ecg.dcm")
    shutil.copy(get_testdata_file("RG1_UNCR.dcm"), case / "cxr.dcm")
    return folder


def test_the_readme_model_imports_only_the_public_api():
    tree_imports = re.findall(r"^(?:from|import) (\S+)", readme_model_source(), re.M)
    assert "fuselens" in tree_imports
    assert all(m in ("torch", "torch.nn", "fuselens", "torch.nn.functional") for m in tree_imports)


def test_fuselens_explain_runs_the_readme_model_on_real_files(user_folder):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [
        sys.executable,
        "-m",
        "fuselens.app.cli",
        "explain",
        "case",
        "--out",
        "out",
        "--model",
        "my_model:build",
        "--method",
        "gradcam_pp",
        "--method",
        "integrated_gradients",
        "--json",
    ]
    run = subprocess.run(cmd, cwd=user_folder, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["modalities"] == ["ecg", "cxr"]
    assert summary["model"] == "my-model" and summary["task"] == "cardiomegaly"
    assert summary["caveat"].startswith("Untrained example model")
    assert set(summary["unavailable"]) == {"attention", "report"}
    from fuselens.explain.bundle import ExplanationBundle

    bundle = ExplanationBundle.load(user_folder / "out")
    for method in ("gradcam_pp", "integrated_gradients"):
        maps = bundle.maps[method]
        assert maps.ecg.shape[0] == 12 and maps.ecg_rate_hz > 0 and maps.ecg.max() > 0
        assert maps.cxr.ndim == 2 and maps.cxr.max() > 0
    assert bundle.shapley.modalities == ["ecg", "cxr"] and bundle.shapley.efficiency_error < 1e-9
    html = (user_folder / "out" / "report.html").read_text(encoding="utf-8")
    assert (
        "Grad-CAM++" in html and "Integrated Gradients" in html and "exposes no attention" in html
    )


@pytest.mark.slow
def test_the_workstation_explains_an_upload_with_the_readme_model(user_folder, monkeypatch):
    from browser_support import ARTIFACTS, require_chromium, serve_workstation, workstation_page

    require_chromium()
    monkeypatch.chdir(user_folder)
    args = ["--model", "my_model:build", "--device", "cpu", "--cases", str(user_folder / "demo")]
    with serve_workstation(args, "serve_my_model.log", cwd=user_folder) as served:
        with workstation_page(served["url"]) as pg:
            assert "Untrained example model" in pg.inner_text("#fl-caveat")
            pg.click("text=Open your own files")
            files = [str(user_folder / "case" / n) for n in ("ecg.dcm", "cxr.dcm")]
            pg.set_input_files("#fl-upload input[type=file]", files)
            pg.click("#fl-open")
            pg.wait_for_function(
                "document.querySelector('#fl-progress').innerText.includes('done')",
                timeout=180_000,
            )
            assert "Cardiomegaly" in pg.inner_text("#fl-prediction")
            assert "Untrained example model" in pg.inner_text("#fl-prediction")
            assert "exposes no attention maps" in pg.inner_text("#fl-unavailable")
            # ...and no empty attention or report panels stand on the page for it
            for panel in ("#fl-attention", "#fl-guidance", "#fl-sentences", "#fl-report"):
                assert not pg.locator(panel).is_visible(), panel
            # the labs it does not read are shown plain, and the panel says why
            assert "Lab text (this model does not read labs)" in pg.inner_text("#fl-lab-text")
            assert "Lab text (SHAP" not in pg.inner_text("#fl-lab-text")
            pg.locator("#fl-ecg").scroll_into_view_if_needed()
            pg.wait_for_selector("#fl-ecg .heatmaplayer .hm", state="attached")
            assert "Grad-CAM++" in pg.inner_text("#fl-ecg")
            pg.screenshot(path=str(ARTIFACTS / "my_model_gradcam.png"), full_page=True)
            pg.locator("#fl-method").get_by_text("Occlusion").click()
            pg.wait_for_function(
                "document.querySelector('#fl-progress').innerText.includes('Occlusion')"
                " && document.querySelector('#fl-progress').innerText.includes('done')",
                timeout=180_000,
            )
            pg.wait_for_function(
                "document.querySelector('#fl-ecg').innerText.includes('Occlusion')"
            )
            pg.screenshot(path=str(ARTIFACTS / "my_model_occlusion.png"), full_page=True)


REAL_CASES = {  # case folder -> (files copied in, cardiomegaly label, rhythm label)
    "r1-ecg-cxr": (("waveform_ecg.dcm", "RG1_UNCR.dcm"), "yes", "sinus"),
    "r2-cxr-j2k": (("RG1_J2KR.dcm",), "no", ""),
    "r3-ecg-tibia": (("waveform_ecg.dcm", "RG3_UNCR.dcm"), "no", "other"),
    "r4-tibia": (("RG3_J2KR.dcm",), "yes", ""),
}
TIBIA = "cxr.dcm: cxr: BodyPartExamined 'EXTREMITY' is not the chest"  # pydicom-data's RG3


def test_fuselens_review_of_real_dicom_cases_with_the_readme_model(user_folder, tmp_path):
    """``fuselens review --labels --task --model my_model:build``: each outcome what the CSV's
    truth and the model's own prediction (run here) make it; RG3, a radiograph of the tibia,
    is refused as a chest X-ray: its case with an ECG is stored on the ECG with the refusal
    among its input warnings, the case with nothing else is reported, not stored."""
    from pydicom.data import get_testdata_file

    from fuselens.app.cohort import open_cohort
    from fuselens.app.review import store
    from fuselens.app.storage.db import open_database
    from fuselens.model_zoo.loading import load_factory

    cohort = tmp_path / "cohort"
    rows = ["case_id,cardiomegaly,rhythm"]
    for case_id, (files, cardio, rhythm) in REAL_CASES.items():
        (cohort / case_id).mkdir(parents=True)
        for name in files:
            kind = "ecg" if name.startswith("waveform") else "cxr"
            shutil.copy(get_testdata_file(name), cohort / case_id / f"{kind}.dcm")
        rows.append(f"{case_id},{cardio},{rhythm}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'review.db'}"
    cmd = [
        sys.executable,
        "-m",
        "fuselens.app.cli",
        "review",
        "--cohort",
        str(cohort),
        "--labels",
        str(labels),
        "--task",
        "cardiomegaly",
        "--model",
        "my_model:build",
        "--db",
        url,
        "--run-name",
        "real",
    ]
    run = subprocess.run(cmd, cwd=user_folder, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # a case was not reviewed
    assert "3/4 cases stored" in run.stdout
    (refused,) = [line for line in run.stderr.splitlines() if "r4-tibia: not reviewed" in line]
    assert "no readable modality" in refused and TIBIA in refused
    assert f"r3-ecg-tibia: stored with input warnings: {TIBIA}" in run.stderr

    engine, sessions = open_database(url)
    try:
        (info,) = store.list_runs(sessions)
        stored = {r["case_id"]: r for r in store.run_rows(sessions, info.id)}
    finally:
        engine.dispose()
    assert sorted(stored) == sorted(set(REAL_CASES) - {"r4-tibia"})
    from fuselens.model_zoo.predict import predict_case

    old_cwd = os.getcwd()
    os.chdir(user_folder)
    try:
        model = load_factory("my_model:build")
    finally:
        os.chdir(old_cwd)
    opened = open_cohort(cohort, labels)
    for case_id, (files, cardio, _) in REAL_CASES.items():
        if case_id not in stored:
            continue
        p_yes = predict_case(model, opened.load(case_id))["tasks"]["cardiomegaly"]["probability"]
        predicted = "yes" if p_yes >= 0.5 else "no"
        outcome = {("yes", "yes"): "TP", ("no", "yes"): "FP", ("no", "no"): "TN"}.get(
            (cardio, predicted), "FN"
        )
        row = stored[case_id]
        assert row["truth_answer"] == cardio and row["predicted_answer"] == predicted
        assert row["outcome"] == outcome and row["probability"] == pytest.approx(p_yes, abs=1e-5)
        expected = ["ecg", "cxr"] if len(files) == 2 else ["cxr"]
        assert row["modalities"] == (["ecg"] if "tibia" in case_id else expected)
        assert any(w.startswith(TIBIA) for w in row["input_warnings"]) == ("tibia" in case_id)
