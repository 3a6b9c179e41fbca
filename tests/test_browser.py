"""The workstation in a real browser: Playwright driving Debian's chromium.

Starts ``fuselens serve`` as a subprocess on a free port (the demo model when it is
installed, else a tiny random model), opens demo cases, waits for every panel and checks
its content, changes the class, downloads the HTML export, and saves screenshots plus the
measured timings under ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest
from app_support import REPORTING_SEED
from browser_support import (
    ARTIFACTS,
    PUSHED_MARGINS,
    REDRAWS,
    require_chromium,
    serve_workstation,
    workstation_page,
)

pytestmark = pytest.mark.slow

HF_CASE = "Clear heart failure (all modalities)"
REAL_ECG_CASE = "Real 12-lead DICOM ECG (pydicom test file), ECG only"


def _model_arg(tmp_path_factory) -> str:
    from fuselens.model_zoo.registry import DEMO_MODEL_DIR, WEIGHTS_FILE

    if (
        os.environ.get("FUSELENS_BROWSER_MODEL") == "demo"
        and (DEMO_MODEL_DIR / WEIGHTS_FILE).is_file()
    ):
        return "demo"
    import torch
    from test_model_support import tiny_config

    from fuselens.model_zoo.model import FusionModel
    from fuselens.model_zoo.registry import save_model

    torch.manual_seed(REPORTING_SEED)
    return str(save_model(FusionModel(tiny_config()), tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``fuselens serve`` on a free port; yields its URL and how long HTTP 200 took."""
    require_chromium()
    model = _model_arg(tmp_path_factory)
    args = ["--model", model, "--cases", str(tmp_path_factory.mktemp("cases")), "--device", "cpu"]
    with serve_workstation(args, "serve.log") as served:
        yield {**served, "model": model}


@pytest.fixture(scope="module")
def page(server):
    with workstation_page(server["url"]) as pg:
        yield pg


def _open_case(pg, title: str) -> float:
    pg.click("#fl-demo input")
    pg.get_by_role("option", name=title).click()
    return time.perf_counter()


def _wait_done(pg) -> None:
    pg.wait_for_function(
        "document.querySelector('#fl-progress').innerText.includes('done')", timeout=180_000
    )


def _wait_case_done(pg, title: str) -> None:
    """Until the identity line names the case ``title`` and the progress says done."""
    pg.wait_for_function(
        "document.querySelector('#fl-identity').innerText.includes(" + json.dumps(title) + ")"
        " && document.querySelector('#fl-progress').innerText.includes('done')",
        timeout=180_000,
    )


def _load_lazy_images(pg) -> None:
    """Gradio's images load lazily: scroll the whole page once."""
    height = pg.evaluate("document.body.scrollHeight")
    for y in range(0, height + 1080, 700):
        pg.evaluate(f"window.scrollTo(0, {y})")
        time.sleep(0.1)
    pg.evaluate("window.scrollTo(0, 0)")
    pg.wait_for_function(
        "Array.from(document.querySelectorAll('img')).filter(i => i.offsetParent)"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def _token_text(pg, selector: str) -> str:
    """The text a HighlightedText shows (its template's spacing elements left out)."""
    return pg.eval_on_selector_all(
        f"{selector} .token .text", "els => els.map(e => e.textContent).join('')"
    )


def _token_colours(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#fl-lab-text .token.highlighted", "els => els.map(e => e.style.backgroundColor)"
    )


def test_serve_answers_http_200(server):
    """Start-up time is recorded in browser_timings.json; the target lives in the closing note."""
    with urllib.request.urlopen(server["url"], timeout=30) as response:
        assert response.status == 200, server["log"]


def test_the_page_loads_plotly_before_a_case_is_picked(page):
    loaded = "performance.getEntriesByType('resource').some(e => e.name.includes('/PlotlyPlot-'))"
    page.wait_for_function(f"{loaded} && window.Plotly !== undefined")
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 0  # removed


def test_demo_case_fills_every_panel(server, page):
    pg = page
    t0 = _open_case(pg, HF_CASE)
    pg.wait_for_function(
        "document.querySelector('#fl-prediction').innerText.includes('probability')"
    )
    prediction_s = time.perf_counter() - t0
    _wait_done(pg)
    pg.wait_for_function(
        "document.querySelectorAll('#fl-lab-text .token.highlighted').length > 5"
        " && document.querySelectorAll('#fl-echo-video-2 video[src]').length == 1"
        " && document.querySelectorAll('#fl-shapley .barlayer .point').length == 4"
    )
    panels_s = time.perf_counter() - t0

    status = pg.inner_text("#fl-status")
    for name in ("labs.csv", "ecg.dcm", "echo_A4C.dcm", "echo_A2C.dcm", "echo_PLAX.dcm", "cxr.dcm"):
        assert name in status
    prediction = pg.inner_text("#fl-prediction")
    assert "Heart failure" in prediction and "not for clinical use" in prediction
    assert "Planted truth" in pg.inner_text("#fl-prediction-context")
    assert "not for clinical use" in pg.inner_text("#fl-caveat")
    methods = pg.inner_text("#fl-method")
    for label in ("Grad-CAM++", "Integrated Gradients", "Occlusion"):
        assert label in methods
    assert pg.locator("#fl-method").get_by_role("radio", name="Grad-CAM++").is_checked()
    assert "✓ Grad-CAM++" in pg.inner_text("#fl-progress")

    lab_text = _token_text(pg, "#fl-lab-text")
    assert lab_text.startswith("NT-proBNP of the patient is 5201 pg/mL (high).")
    table = pg.inner_text("#fl-lab-table")
    for item in ("NT-proBNP", "Creatinine", "Medications", "Contribution", "Direction"):
        assert item in table
    ecg_traces = pg.locator("#fl-ecg .scatterlayer .trace").count()
    assert ecg_traces >= 14  # 12 leads + rhythm strip + calibration
    assert pg.locator("#fl-ecg .heatmaplayer .hm").count() >= 4  # Grad-CAM++ shading rows
    assert pg.locator("#fl-interactions .heatmaplayer .hm").count() == 1
    assert pg.locator("#fl-attention .heatmaplayer .hm").count() == 1
    assert pg.locator("#fl-guidance .heatmaplayer .hm").count() == 1
    margins = pg.evaluate(PUSHED_MARGINS)  # each figure's margins hold its labels: drawn once
    assert margins["plots"] >= 5 and margins["pushed"] == []

    playing = pg.evaluate(
        "Array.from(document.querySelectorAll('[id^=fl-echo-video] video'))"
        ".map(v => [v.currentTime, v.paused, v.loop])"
    )
    time.sleep(0.6)
    later = pg.evaluate(
        "Array.from(document.querySelectorAll('[id^=fl-echo-video] video')).map(v => v.currentTime)"
    )
    assert len(playing) == 3 and all(loop and not paused for _, paused, loop in playing)
    assert all(a != b for (a, _, _), b in zip(playing, later, strict=True))

    _load_lazy_images(pg)
    for selector in ("#fl-cxr img", "#fl-echo-frame-0 img", "#fl-echo-frame-1 img"):
        width = pg.eval_on_selector(selector, "i => i.naturalWidth")
        assert width >= 256, selector
    report = _token_text(pg, "#fl-report")
    assert len(report.split()) >= 3
    assert pg.locator("#fl-sentences input[type=radio]").count() >= 1
    assert pg.locator("#fl-sentences input[type=radio]").first.is_checked()
    assert pg.inner_text("#fl-evidence").startswith("Evidence for:")

    pg.screenshot(path=str(ARTIFACTS / "workstation-full.png"), full_page=True)
    pg.screenshot(path=str(ARTIFACTS / "workstation-top.png"))
    for name in ("fl-ecg", "fl-lab-text", "fl-cxr", "fl-shapley", "fl-report"):
        pg.locator(f"#{name}").screenshot(path=str(ARTIFACTS / f"panel-{name}.png"))
    timings = {
        "model": server["model"],
        "serve_http_200_s": round(server["http_s"], 2),
        "prediction_visible_s": round(prediction_s, 2),
        "every_panel_s": round(panels_s, 2),
        "progress": pg.inner_text("#fl-progress"),
    }
    (ARTIFACTS / "browser_timings.json").write_text(json.dumps(timings, indent=2) + "\n")


def test_another_case_is_not_drawn_on_the_plots_of_the_last(page):
    """The opening response empties the plots (``views.opened_panels``), so each of the new
    case's figures goes to a new plot and is drawn once."""
    pg = page
    _open_case(pg, HF_CASE)
    _wait_done(pg)
    pg.evaluate(REDRAWS)
    title = "Clearly no heart failure"
    _open_case(pg, title)
    _wait_case_done(pg, title)
    drawn = pg.evaluate("window.__draws")
    assert [d for d in drawn if d[0] == "fl-ecg"], "the ECG print was drawn"
    assert [d for d in drawn if d[1]] == [], "no plot of the last case was redrawn"


def test_the_browser_keeps_no_run_history_of_a_case(server, page):
    """Gradio 6 records every call's inputs and outputs (lab text, figures) in the browser's
    localStorage and offers to copy them to a Hugging Face bucket: off, and its page gone."""
    kept = "Object.keys(localStorage).filter((k) => k.startsWith('gradio:run-history'))"
    assert page.evaluate(kept) == []
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server["url"] + "gradio_api/runs", timeout=30)
    assert err.value.code == 404


def test_changing_the_class_changes_the_highlights(page):
    pg = page
    before = _token_colours(pg)
    assert before
    pg.locator("#fl-target").get_by_role("radio", name="no").check()
    pg.wait_for_function(
        "document.querySelector('#fl-prediction-context').innerText.includes('why “no”')"
    )
    _wait_done(pg)
    pg.wait_for_function("document.querySelectorAll('#fl-lab-text .token.highlighted').length > 5")
    after = _token_colours(pg)
    assert after != before
    # yes/no log-odds are each other's negatives: every highlighted word swaps red and blue
    red_before = ["239, 68, 60" in c for c in before]
    red_after = ["239, 68, 60" in c for c in after]
    assert (
        len(red_before) == len(red_after)
        and any(red_before)
        and not any(a == b for a, b in zip(red_before, red_after, strict=True))
    )
    pg.locator("#fl-lab-text").screenshot(path=str(ARTIFACTS / "panel-fl-lab-text-no.png"))
    t0 = time.perf_counter()
    pg.locator("#fl-target").get_by_role("radio", name="yes").check()
    pg.wait_for_function(
        "document.querySelector('#fl-progress').innerText.includes('(from cache)')"
    )
    pg.wait_for_function(
        "c => JSON.stringify(Array.from(document.querySelectorAll("
        "'#fl-lab-text .token.highlighted')).map(e => e.style.backgroundColor)) == c",
        arg=json.dumps(before, separators=(",", ":")),
    )
    assert time.perf_counter() - t0 < 10.0


def test_choosing_a_sentence_marks_it(page):
    pg = page
    radios = pg.locator("#fl-sentences label")
    last = radios.count() - 1
    text = radios.nth(last).inner_text().split(". ", 1)[1].strip()
    radios.nth(last).click()
    pg.wait_for_function(
        "t => document.querySelector('#fl-evidence').innerText.includes(t.slice(0, 40))",
        arg=text,
    )
    marked = pg.eval_on_selector_all(
        "#fl-report .token.highlighted .text", "els => els.map(e => e.textContent)"
    )
    assert len(marked) == 1 and marked[0].strip().startswith(text[:40])


def test_html_export_downloads_a_self_contained_report(page, tmp_path):
    pg = page
    pg.click("#fl-export")
    pg.wait_for_selector("#fl-html a[download]")
    pg.wait_for_selector("#fl-zip a[download]")
    with pg.expect_download() as info:
        pg.locator("#fl-html a[download]").first.click()
    path = tmp_path / "report.html"
    info.value.save_as(path)
    html = path.read_text(encoding="utf-8")
    assert "not for clinical use" in html and "data:image/png;base64," in html
    assert "<script" not in html.lower()
    (ARTIFACTS / "export-report.html").write_text(html, encoding="utf-8")


def test_real_ecg_shows_no_identifying_fields(page):
    pg = page
    _open_case(pg, REAL_ECG_CASE)
    pg.wait_for_function(
        "document.querySelector('#fl-status').innerText.includes('waveform_ecg.dcm')"
    )
    _wait_done(pg)
    text = pg.inner_text("body")
    assert "1000 Hz" in text
    for secret in ("Anonymous", "642341", "Galliera", "19710123", "03028041970546"):
        assert secret not in text
    pg.screenshot(path=str(ARTIFACTS / "workstation-real-ecg.png"), full_page=True)


def test_uploaded_files_get_a_status_line_each(page, tmp_path):
    from pydicom.data import get_testdata_file

    pg = page
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"not a DICOM file")
    pg.click("text=Open your own files")
    pg.set_input_files("#fl-upload input[type=file]", [get_testdata_file("waveform_ecg.dcm"), bad])
    pg.wait_for_function(
        "['scan', 'waveform_ecg'].every(n => "
        "document.querySelector('#fl-upload').innerText.includes(n))"
    )
    pg.click("#fl-open")
    pg.wait_for_function("document.querySelector('#fl-status').innerText.includes('scan.dcm')")
    _wait_done(pg)
    status = pg.inner_text("#fl-status")
    assert "waveform_ecg.dcm" in status and "read" in status and "error" in status
    assert "Uploaded case" in pg.inner_text("#fl-story")
    pg.wait_for_function("document.querySelectorAll('#fl-ecg .scatterlayer .trace').length >= 14")
    assert "lab text SHAP (word pieces) (not applicable)" in pg.inner_text("#fl-progress")


def test_choosing_another_map_method_redraws_the_maps(page):
    pg = page
    pg.locator("#fl-method").get_by_role("radio", name="Occlusion").check()
    pg.wait_for_function("document.querySelector('#fl-progress').innerText.includes('✓ Occlusion')")
    _wait_done(pg)
    assert "Grad-CAM++" not in pg.inner_text("#fl-progress")
    pg.wait_for_function("document.querySelectorAll('#fl-ecg .scatterlayer .trace').length >= 14")
    assert pg.locator("#fl-ecg .heatmaplayer .hm").count() >= 4  # the occlusion map's shading


def _case_of(title: str, tmp_path):
    """The demo case behind ``title``, read on its own (the server's copy is the same)."""
    from fuselens.app.demo_cases import load_catalogue
    from fuselens.app.session import open_demo

    demo = next(d for d in load_catalogue() if d.title == title)
    return open_demo(demo, tmp_path).case


def test_switching_case_five_times_while_explaining_shows_only_the_last(server, page, tmp_path):
    """Issue 17, finding 1: every panel ends on the last case picked, never an older one."""
    from fuselens.app import views
    from fuselens.model_zoo.loading import load_explainable
    from fuselens.model_zoo.predict import predict_case

    pg = page
    picks = [
        HF_CASE,
        "Clearly no heart failure",
        "Kidney disease raising NT-proBNP, no heart failure",
        "Missing ECG and chest X-ray",
        HF_CASE,
        "Heart failure the model misses",
    ]
    _open_case(pg, picks[0])
    time.sleep(0.5)
    pg.click("#fl-task input")  # change the task while the first case explains
    model = load_explainable(server["model"], device="cpu")
    second_task = list(model.tasks)[1]
    pg.get_by_role("option", name=views.task_label(second_task)).click()
    for title in picks[1:]:  # five switches, each while the previous case explains
        time.sleep(0.4)
        _open_case(pg, title)
    last = picks[-1]
    _wait_case_done(pg, last)  # its own "done" (the one before, cached, says done too)
    time.sleep(1.0)  # anything stale would arrive now
    case = _case_of(last, tmp_path)
    identity = pg.inner_text("#fl-identity")
    assert last in identity and views.task_label(second_task) in identity
    assert last in pg.inner_text("#fl-story")
    assert _token_text(pg, "#fl-lab-text") == case.labs.textualise()
    table = pg.inner_text("#fl-lab-table")
    for item, value in views.lab_values(case).items():
        if item not in ("History", "Medications"):
            assert value.split(" (")[0] in table, item
    result = predict_case(model, case)["tasks"][second_task]
    answer = result["answer"]
    card = pg.inner_text("#fl-prediction")
    assert f"{result['probabilities'][answer]:.1%}" in card
    truth = views.truth_answer(case.truth, second_task)
    context = pg.inner_text("#fl-prediction-context").replace("*", "")
    assert f"Planted truth (synthetic case): {truth}" in context
    assert "done" in pg.inner_text("#fl-progress")
