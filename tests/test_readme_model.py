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
