"""A reader study in a real browser: Playwright driving Debian's chromium.

``fuselens study create`` builds a study of three synthetic cases (a tiny random model gives
the AI answers) in two arms, ``fuselens study serve`` runs it; one reader logs in and reads
all three cases in both arms (six readings), then the owner checks progress and downloads
the CSV and iMRMC exports. Screenshots and timings go to ``test-artifacts/``.
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
arms: [no_ai, ai_explained]
questions:
  diagnosis: Does this patient have heart failure?
readers:
  - {username: reader-one, password: reader-pass-1}
owner: {username: study-owner, password: owner-pass-1}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_chromium()
    import torch
    from test_model_support import tiny_config

    from fuselens.model_zoo.model import FusionModel
    from fuselens.model_zoo.registry import save_model
    from fuselens.model_zoo.synth.cohort import write_cohort

    tmp = tmp_path_factory.mktemp("study")
    torch.manual_seed(0)
    model = save_model(FusionModel(tiny_config()), tmp / "model")
    write_cohort(tmp / "cases", n=3, seed=6, progress=False)
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
            "--model",
            str(model),
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


def test_reader_reads_three_cases_in_two_arms_then_owner_exports(server, browser, tmp_path):
    srv, timings = server["server"], server["timings"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    _login(page, srv.base, "reader-one", "wrong-password")
    assert "Wrong username or password" in page.inner_text("body")
    _login(page, srv.base, "reader-one", "reader-pass-1")
    page.wait_for_url(f"{srv.base}/read")

    seen: list[tuple[str, str]] = []
    per_case = []
    for k in range(1, 7):
        t0 = time.perf_counter()
        assert page.inner_text("h1") == f"Case {k} of 6"
        # the case itself, whichever modalities it has: labs table, ECG print drawn by
        # plotly, echo loops, chest X-ray
        modalities = page.inner_text("#modalities").removeprefix("Modalities: ").split(", ")
        if "labs" in modalities:
            page.wait_for_selector("#labs table tr >> nth=2")
        if "ecg" in modalities:
            page.wait_for_selector("#ecg .main-svg")
        if "echo" in modalities:
            assert page.locator("video").count() >= 1
        if "cxr" in modalities:
            page.wait_for_function(
                "document.querySelector('img[alt=\"chest X-ray\"]').complete && "
                "document.querySelector('img[alt=\"chest X-ray\"]').naturalWidth > 0"
            )
        shown = {"labs": "#labs", "ecg": "#ecg", "echo": "video", "cxr": "img"}
        for modality, selector in shown.items():
            assert (page.locator(selector).count() > 0) == (modality in modalities), modality
        explained = page.locator("#ai-explanation").count() == 1
        if explained:
            assert "synthetic data" in page.inner_text("#ai-prediction")
            assert "probability" in page.inner_text("#ai-prediction")
            # one bar per modality the case has
            assert page.locator("#ai-explanation tr").count() == len(modalities)
            page.select_option("select[name=usefulness_prediction]", "4")
            page.select_option("select[name=usefulness_modality_contributions]", "3")
        else:
            assert page.locator("#ai-prediction").count() == 0
            assert page.locator("select").count() == 0
        arm = "ai_explained" if explained else "no_ai"
        seen.append((arm, page.inner_text("#modalities")))
        if k in (1, 4):
            page.screenshot(path=str(ARTIFACTS / f"study_reader_case{k}_{arm}.png"), full_page=True)
        page.check(
            "input[name=diagnosis][value='1']" if k % 2 else "input[name=diagnosis][value='0']"
        )
        page.fill("input[name=confidence]", str(40 + 10 * k))
        page.fill("textarea[name=free_text]", f"reading {k}")
        page.click("#answer button[type=submit]")
        page.wait_for_load_state("load")
        per_case.append(time.perf_counter() - t0)
    assert "All cases read" in page.inner_text("h1")
    arms = [a for a, _ in seen]
    assert sorted(set(arms[:3])) == [arms[0]] and sorted(set(arms[3:])) == [arms[3]]
    assert arms[0] != arms[3]  # two arms, one block each
    # the reader cannot open the owner's page
    assert page.goto(f"{srv.base}/owner").status == 403
    context.close()

    owner = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = owner.new_page()
    _login(page, srv.base, "study-owner", "owner-pass-1")
    page.wait_for_url(f"{srv.base}/owner")
    progress = page.inner_text("#progress")
    assert "R01" in progress and "6 / 6" in progress
    assert page.locator("#performance tr").count() == 3  # header + one row per arm
    page.screenshot(path=str(ARTIFACTS / "study_owner.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#export-csv")
    csv_path = tmp_path / "export.csv"
    dl.value.save_as(csv_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6 and all(r["answered"] == "True" for r in rows)
    assert {(r["case"], r["arm"]) for r in rows} == {
        (c, a) for c in {r["case"] for r in rows} for a in ("no_ai", "ai_explained")
    }
    text = csv_path.read_text()
    assert "reader-one" not in text and "study-owner" not in text
    assert sorted(float(r["seconds"]) > 0 for r in rows) == [True] * 6
    with page.expect_download() as dl:
        page.click("#export-imrmc")
    imrmc = tmp_path / "export.imrmc"
    dl.value.save_as(imrmc)
    assert "BEGIN DATA:" in imrmc.read_text() and "NR: 1" in imrmc.read_text()
    owner.close()
    timings.update(reader_seconds_per_case=[round(s, 2) for s in per_case])
    (ARTIFACTS / "study_browser_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
