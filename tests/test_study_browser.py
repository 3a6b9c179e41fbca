"""A reader study of explanations in a real browser: Playwright driving Debian's chromium.

``fuselens study create`` builds a study of three synthetic cases (every modality; the
bundled demo model gives the answers and explanations) in three arms (no AI, AI answer, AI
answer + every explanation panel), ``fuselens study serve`` runs it; one reader reads all
three cases in each arm (nine readings), using the reading tools and marking what convinced
them, then the owner checks progress, results and the exports. Blinding: on a no-AI page
neither the DOM nor any response the browser received holds a model output, and direct
requests for another arm's or an unserved case's media are refused. Screenshots of one case
in each arm and timings go to ``test-artifacts/``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest
from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, require_chromium
from study_support import StudyServer

pytestmark = pytest.mark.slow

STUDY_YAML = """name: Browser study
seed: 5
arms: [no_ai, ai, ai_explained]
questions:
  marks: true
readers:
  - {username: reader-one, password: reader-pass-1}
owner: {username: study-owner, password: owner-pass-1}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_chromium()
    from fuselens.model_zoo.synth.cohort import write_cohort

    tmp = tmp_path_factory.mktemp("study")
    write_cohort(tmp / "cases", n=3, seed=8, progress=False)  # every case has every modality
    (tmp / "study.yaml").write_text(STUDY_YAML)
    url = f"sqlite:///{tmp / 'study.db'}"
    env = {**os.environ, "FUSELENS_DATA_DIR": str(tmp / "data")}
    t0 = time.perf_counter()
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuselens.app.cli",
            "study",
            "create",
            "--cases",
            str(tmp / "cases"),
            "--config",
            str(tmp / "study.yaml"),
            "--db",
            url,
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert created.returncode == 0, created.stderr
    create_s = time.perf_counter() - t0
    srv = StudyServer(int(created.stdout.strip()), url, tmp / "data")
    start_s = srv.start()
    yield {"server": srv, "timings": {"create_s": create_s, "server_start_s": start_s}}
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _login(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


PANEL_FILES = (
    "cxr_heat_gradcam_pp.png",
    "ecg_heat_gradcam_pp.json",
    "lab_text.json",
    "contributions.json",
    "attention_0.json",
    "report.json",
)
MODEL_OUTPUT = ("probability", "modality_shapley", "The model answers", "_heat_", "Shapley")


def _arm(page) -> str:
    if page.locator("#ai-explanation").count():
        return "ai_explained"
    return "ai" if page.locator("#ai-prediction").count() else "no_ai"


def _canvas_mean(page) -> list[float]:
    """Mean R, G, B of the X-ray canvas as drawn."""
    return page.evaluate(
        """() => { const c = document.getElementById('cxr-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const s = [0, 0, 0]; for (let i = 0; i < d.length; i += 4) {
          s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; }
        return s.map((v) => v / (d.length / 4)); }"""
    )


def _wait_drawn(page) -> None:
    """Until the explanation arm's ECG shading and echo overlays are drawn."""
    page.wait_for_function(
        "() => { const e = document.getElementById('ecg'); return e.data && e.data.some("
        "(t) => (t.meta || {}).kind === 'shading' && t.visible !== false); }"
    )
    page.wait_for_function(
        "[...document.querySelectorAll('video.heat')].every((v) => v.readyState >= 2)"
    )


def _explained_panels(page) -> dict:
    """Check the explanation arm's overlays, shading, highlights and reading tools."""
    page.wait_for_function("document.getElementById('cxr-canvas').dataset.zoom === '1.000'")
    seen = {
        "lab_highlights": page.locator("#lab-text span.shap").count(),
        "echo_overlays": page.locator("video.heat:visible").count(),
        "report_sentences": page.locator("#report-text li").count(),
    }
    with_overlay = _canvas_mean(page)
    page.locator('.overlay-toggle[data-target="cxr"]').uncheck()
    without = _canvas_mean(page)
    page.locator('.overlay-toggle[data-target="cxr"]').check()
    # the JET overlay adds colour: red and blue differ only while it is drawn
    seen["cxr_overlay_colour"] = abs(with_overlay[0] - with_overlay[2])
    seen["cxr_plain_colour"] = abs(without[0] - without[2])
    page.click("#cxr-canvas + p")  # blur
    page.click(".tools .zoom[data-zoom='1.25']")
    page.focus("#cxr-canvas")
    page.keyboard.press("+")
    seen["zoom"] = float(page.get_attribute("#cxr-canvas", "data-zoom"))
    before = _canvas_mean(page)
    page.evaluate(
        "() => { const w = document.querySelector('.ww'); w.value = 60;"
        " w.dispatchEvent(new Event('input')); }"
    )
    seen["window_changes_pixels"] = before != _canvas_mean(page)
    first = page.locator(".echo-view").first
    frames = []
    for _ in range(2):
        first.locator(".step[data-step='1']").click()
        frames.append(int(first.locator(".frame-no").inner_text().removeprefix("frame ")))
    seen["echo_step"] = frames[1] - frames[0]
    seen["echo_paused"] = page.evaluate("document.querySelector('video.plain').paused")
    page.click("#mark-mode")
    box = page.locator("#cxr-canvas").bounding_box()
    page.locator("#cxr-canvas").click(position={"x": box["width"] / 2, "y": box["height"] / 3})
    first.locator(".stack").click()
    page.click("#mark-mode")
    seen["marks"] = page.inner_text("#mark-count")
    lab_text = page.locator("details[data-panel=lab_text] > summary")
    lab_text.click()  # close, then open again: two reading events
    lab_text.click()
    return seen


def test_reader_reads_three_cases_in_three_arms_blinded_then_owner_exports(
    server, browser, tmp_path
):
    srv, timings = server["server"], server["timings"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    _login(page, srv.base, "reader-one", "wrong-password")
    assert "Wrong username or password" in page.inner_text("body")
    received: list = []
    page.on("response", lambda r: received.append(r))
    _login(page, srv.base, "reader-one", "reader-pass-1")
    page.wait_for_url(f"{srv.base}/read")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    arms, explained, refused, per_case = [], {}, {}, []
    for k in range(1, 10):
        t0 = time.perf_counter()
        assert page.inner_text("h1") == f"Case {k} of 9"
        page.wait_for_selector("#labs table tr >> nth=2")
        page.wait_for_selector("#ecg .main-svg")
        page.wait_for_function("document.getElementById('cxr-canvas').dataset.zoom")
        assert page.locator("video.plain").count() >= 1
        arm = _arm(page)
        if arm == "ai_explained":
            _wait_drawn(page)
        if arm not in arms:
            page.screenshot(path=str(ARTIFACTS / f"study_arm_{arm}.png"), full_page=True)
        arms.append(arm)
        case = page.get_attribute("#cxr-canvas", "data-src").split("/")[2]
        api = page.request.get(f"{srv.base}/api/next").json()
        views = [v.get_attribute("data-view") for v in page.locator(".echo-view").all()]
        names = [*PANEL_FILES, *(f"echo_{v}_heat_gradcam_pp.mp4" for v in views)]
        tried = {
            f"/media/{case}/{name}": page.request.get(f"{srv.base}/media/{case}/{name}").status
            for name in names
        }
        if arm == "no_ai":
            dom = page.content()
            assert not [w for w in MODEL_OUTPUT if w in dom], "model output in the no-AI DOM"
            assert "prediction" not in api and "explanation" not in api
            bodies = [
                r.text()
                for r in received
                if r.url.startswith(srv.base) and "json" in r.headers.get("content-type", "")
            ]
            assert not [b for b in bodies if any(w in b for w in MODEL_OUTPUT)]
            assert not [r.url for r in received if "_heat_" in r.url or "report.json" in r.url]
            assert set(tried.values()) == {404}, tried
            refused.setdefault("no_ai", tried)
        elif arm == "ai":
            assert "synthetic data" in page.inner_text("#ai-prediction")
            assert set(tried.values()) == {404}, tried  # another arm's panels
            refused.setdefault("ai", tried)
        else:
            assert set(tried.values()) == {200}, tried
            explained = explained or _explained_panels(page)
        if k == 1:
            served = {case}
            others = [c for c in ("P00000", "P00001", "P00002") if c not in served]
            unserved = {
                f"/media/{c}/cxr.png": page.request.get(f"{srv.base}/media/{c}/cxr.png").status
                for c in others
            }
            assert set(unserved.values()) == {404}, unserved
            refused["unserved"] = unserved
        for select in page.locator("select").all():
            select.select_option("4")
        page.check(
            "input[name=diagnosis][value='1']" if k % 2 else "input[name=diagnosis][value='0']"
        )
        page.fill("input[name=confidence]", str(40 + 5 * k))
        page.fill("textarea[name=free_text]", f"reading {k}")
        received.clear()
        page.click("#answer button[type=submit]")
        page.wait_for_load_state("load")
        per_case.append(time.perf_counter() - t0)
    assert "All cases read" in page.inner_text("h1")
    assert not errors, errors
    assert [arms[i] for i in (0, 3, 6)] == ["no_ai", "ai", "ai_explained"]  # blocks of three
    assert len(set(arms[:3])) == len(set(arms[3:6])) == len(set(arms[6:])) == 1
    assert explained["lab_highlights"] > 0 and explained["echo_overlays"] >= 1
    assert explained["report_sentences"] > 0
    assert explained["cxr_overlay_colour"] > 5 * max(explained["cxr_plain_colour"], 0.2)
    assert abs(explained["zoom"] - 1.25**2) < 1e-3 and explained["window_changes_pixels"]
    assert explained["echo_step"] == 1 and explained["echo_paused"]
    assert explained["marks"] == "2 marks"
    for path in ("/owner", "/api/results", "/api/progress", "/api/export.csv"):
        assert page.request.get(f"{srv.base}{path}").status == 403, path
    context.close()

    owner = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = owner.new_page()
    _login(page, srv.base, "study-owner", "owner-pass-1")
    page.wait_for_url(f"{srv.base}/owner")
    assert "9 / 9" in page.inner_text("#progress")
    assert page.locator("#performance tr").count() == 4  # header + one row per arm
    assert page.locator("#mark_agreement tr").count() == 5  # header + the marked arm's 4
    page.screenshot(path=str(ARTIFACTS / "study_owner.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#export-csv")
    csv_path = tmp_path / "export.csv"
    dl.value.save_as(csv_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 9 and all(r["answered"] == "True" for r in rows)
    text = csv_path.read_text()
    assert "reader-one" not in text and "study-owner" not in text
    marked = [r for r in rows if r["marks"]]
    assert [r["arm"] for r in marked] == ["ai_explained"]
    assert {m["modality"] for m in json.loads(marked[0]["marks"])} == {"cxr", "echo"}
    assert float(marked[0]["seconds_open_lab_text"]) > 0
    assert float(marked[0]["seconds_open_heatmaps:cxr"]) > 0
    assert all(r["seconds_open_heatmaps:cxr"] == "" for r in rows if r["arm"] != "ai_explained")
    with page.expect_download() as dl:
        page.click("#export-imrmc")
    imrmc = tmp_path / "export.imrmc"
    dl.value.save_as(imrmc)
    assert "BEGIN DATA:" in imrmc.read_text() and "NM: 3" in imrmc.read_text()
    owner.close()
    timings.update(
        reader_seconds_per_case=[round(s, 2) for s in per_case],
        explained_panels=explained,
        refused=refused,
    )
    (ARTIFACTS / "study_browser_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
