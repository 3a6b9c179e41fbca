"""The Error review tab in a real browser: filter to FN, tag a case, open it in the Case view.

A tiny model reviews a five-case synthetic cohort with a 0.99 threshold (every case is
called "no": four false negatives, one true negative) into a SQLite file; ``fuselens serve
--review-db`` serves it, and Playwright drives Debian's chromium through the tab.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from browser_support import (
    ARTIFACTS,
    PUSHED_MARGINS,
    REDRAWS,
    require_chromium,
    serve_workstation,
    workstation_page,
)
from sqlalchemy import create_engine, text
from test_model_support import tiny_config

from fuselens.app.cli import main
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import save_model
from fuselens.model_zoo.synth.cohort import write_cohort

pytestmark = pytest.mark.slow

TAG = "missed reduced EF"
NEW_TAG = "wrong echo view"
NOTE = "EF 29% on echo; model ignored it"


@pytest.fixture(scope="module")
def review_db(tmp_path_factory):
    """The reviewed cohort: (database file, model folder)."""
    root = tmp_path_factory.mktemp("review")
    write_cohort(root / "cohort", n=5, seed=3, progress=False, workers=1)
    torch.manual_seed(0)
    model = save_model(FusionModel(tiny_config()), root / "model")
    db = root / "review.db"
    args = ["review", "--cohort", str(root / "cohort"), "--model", str(model)]
    assert main([*args, "--db", f"sqlite:///{db}", "--threshold", "0.99", "--run-name", "e2e"]) == 0
    return db, model


@pytest.fixture(scope="module")
def server(review_db, tmp_path_factory):
    require_chromium()
    db, model = review_db
    args = ["--model", str(model), "--cases", str(tmp_path_factory.mktemp("cases"))]
    args += ["--device", "cpu", "--review-db", f"sqlite:///{db}"]
    with serve_workstation(args, "serve-review.log") as served:
        yield served


@pytest.fixture(scope="module")
def page(server):
    with workstation_page(server["url"]) as pg:
        yield pg


def _table_case_ids(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#fl-review-table [role=gridcell][data-col='0']",
        "cells => cells.map(c => c.innerText.trim())",
    )


def _wait_rows(pg, n: int) -> list[str]:
    """The case ids of the table once the summary says ``n`` rows and the table shows them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        pg.wait_for_function(
            f"document.querySelector('#fl-review-summary').innerText.startsWith('Showing {n} of')"
        )
        pg.locator("#fl-review-table").scroll_into_view_if_needed()
        pg.wait_for_function(
            "document.querySelectorAll(\"#fl-review-table [role=gridcell][data-col='0']\")"
            f".length == {n}",
            timeout=30_000,
        )
    except PlaywrightTimeout as exc:
        summary = pg.inner_text("#fl-review-summary")
        raise AssertionError(
            f"wanted {n} rows; summary {summary!r}, ids {_table_case_ids(pg)}"
        ) from exc
    return _table_case_ids(pg)


def _stored(db: Path, case_id: str) -> tuple[list[str], list[str]]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            tags = c.execute(
                text(
                    "SELECT t.name FROM case_tags ct JOIN tags t ON t.id = ct.tag_id "
                    "JOIN case_results r ON r.id = ct.result_id WHERE r.case_key = :k "
                    "ORDER BY t.name"
                ),
                {"k": case_id},
            ).scalars()
            tags = list(tags)
            notes = c.execute(
                text(
                    "SELECT n.text FROM notes n JOIN case_results r ON r.id = n.result_id "
                    "WHERE r.case_key = :k"
                ),
                {"k": case_id},
            ).scalars()
            return tags, list(notes)
    finally:
        engine.dispose()


def test_filter_tag_export_and_open_in_case_view(page, server, review_db, tmp_path):
    pg = page
    db, _ = review_db
    pg.get_by_role("tab", name="Error review").click()
    pg.wait_for_function(
        "document.querySelector('#fl-review-summary').innerText.includes('of 5 cases')"
    )
    assert len(_wait_rows(pg, 5)) == 5
    pg.wait_for_selector("#fl-review-confusion .heatmaplayer")
    pg.wait_for_selector("#fl-review-calibration .scatterlayer")

    pg.click("#fl-review-open")  # nothing picked yet: the tab stays and says why
    pg.get_by_text("Select a case in the table first.").first.wait_for()
    assert pg.locator("#fl-review-table").is_visible() and not pg.locator("#fl-demo").is_visible()
    assert not any("Traceback" in line for line in server["log"])  # a user's slip, not a crash

    pg.locator("#fl-review-outcomes").get_by_label("FN").check()
    pg.wait_for_function(
        "document.querySelector('#fl-review-summary').innerText.startsWith('Showing 4 of 5')"
    )
    ids = _wait_rows(pg, 4)
    assert sorted(ids) == ["P00000", "P00001", "P00002", "P00003"]  # P00004 has no HF: a TN
    outcomes = pg.eval_on_selector_all(
        "#fl-review-table [role=gridcell][data-col='3']", "cells => cells.map(c => c.innerText)"
    )
    assert [o.strip() for o in outcomes] == ["FN"] * 4

    case_id = ids[0]
    pg.click("#fl-review-table [data-testid='cell-0-0']")
    pg.wait_for_function(
        f"document.querySelector('#fl-review-case').innerText.includes('{case_id} · FN')"
    )
    pg.locator("#fl-review-tags").get_by_label(TAG).check()
    pg.get_by_text("Edit the error taxonomy").click()
    pg.locator("#fl-review-tax-name textarea").fill(NEW_TAG)
    pg.click("#fl-review-tax-add")
    pg.wait_for_function(
        "document.querySelector('#fl-review-tax-status').innerText.includes('Added')"
    )
    pg.locator("#fl-review-tags").get_by_label(NEW_TAG).check()
    assert pg.locator("#fl-review-tags").get_by_label(TAG).is_checked()  # kept through the edit
    pg.locator("#fl-review-note textarea").fill(NOTE)
    pg.click("#fl-review-save")
    pg.wait_for_function("document.querySelector('#fl-review-status').innerText.includes('Saved')")
    assert f"tagged {TAG}, {NEW_TAG}" in pg.inner_text("#fl-review-status")
    assert _stored(db, case_id) == ([TAG, NEW_TAG], [NOTE])  # committed on submit
    pg.wait_for_function(f"document.querySelector('#fl-review-table').innerText.includes('{TAG}')")
    assert NOTE in pg.inner_text("#fl-review-case")

    pg.click("#fl-review-export")
    pg.wait_for_selector("#fl-review-csv a[download]")
    with pg.expect_download() as info:
        pg.locator("#fl-review-csv a[download]").first.click()
    path = tmp_path / "review.csv"
    info.value.save_as(path)
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["outcome"] for r in rows} == {"FN"}
    tagged = [r for r in rows if r["case_id"] == case_id]
    assert tagged[0]["tags"] == f"{TAG}; {NEW_TAG}" and tagged[0]["notes"] == NOTE
    pg.screenshot(path=str(ARTIFACTS / "review-tab.png"), full_page=True)

    pg.click("#fl-review-open")
    pg.wait_for_function(
        f"document.querySelector('#fl-story').innerText.includes('Cohort case {case_id}')"
    )
    assert pg.locator("#fl-demo").is_visible()  # the Case tab is showing
    pg.wait_for_function(
        "document.querySelector('#fl-progress').innerText.includes('done')", timeout=180_000
    )
    story = pg.inner_text("#fl-story")
    assert "FN at threshold 0.99" in story and TAG in story
    status = pg.inner_text("#fl-status")
    for name in ("labs.csv", "ecg.dcm", "echo_A4C.dcm", "cxr.dcm"):
        assert name in status
    assert "probability" in pg.inner_text("#fl-prediction")
    assert "Planted truth" in pg.inner_text("#fl-prediction-context")
    pg.wait_for_function("document.querySelectorAll('#fl-ecg .scatterlayer .trace').length >= 14")
    pg.wait_for_function("document.querySelectorAll('#fl-shapley .barlayer .point').length == 4")
    kept = "Object.keys(localStorage).filter((k) => k.startsWith('gradio:run-history'))"
    assert pg.evaluate(kept) == [], "no call's inputs or outputs are kept in the browser"
    pg.screenshot(path=str(ARTIFACTS / "review-opened-case.png"), full_page=True)

    # another case: its figures go to new plots; the first case's plots are not redrawn first
    pg.get_by_role("tab", name="Error review").click()
    other = _wait_rows(pg, 4)[1]
    pg.click("#fl-review-table [data-testid='cell-1-0']")
    pg.wait_for_function(
        f"document.querySelector('#fl-review-case').innerText.includes('{other} · FN')"
    )
    pg.evaluate(REDRAWS)
    pg.click("#fl-review-open")
    pg.wait_for_function(
        f"document.querySelector('#fl-story').innerText.includes('Cohort case {other}')"
    )
    pg.wait_for_function("document.querySelectorAll('#fl-ecg .scatterlayer .trace').length >= 14")
    drawn = pg.evaluate("window.__draws")
    assert [d for d in drawn if d[0] == "fl-ecg"], "the ECG print was drawn"
    assert [d for d in drawn if d[1]] == [], "no plot of the previous case was redrawn"


def test_cohort_view_shows_patterns_and_a_cluster_filters_the_table(page, review_db):
    from fuselens.app.review.patterns import cohort_patterns
    from fuselens.app.storage.db import open_database

    db, _ = review_db
    engine, sessions = open_database(f"sqlite:///{db}")
    try:
        patterns = cohort_patterns(sessions, 1)
    finally:
        engine.dispose()
    pg = page
    pg.get_by_role("tab", name="Error review").click()
    pg.wait_for_function(  # the tab's refresh chain has run to its end
        "document.querySelector('#fl-review-patterns-md').innerText"
        ".includes('Explanations of 5 cases')"
    )
    if pg.locator("#fl-review-outcomes").get_by_label("FN").is_checked():
        pg.locator("#fl-review-outcomes").get_by_label("FN").uncheck()
    _wait_rows(pg, 5)
    pg.wait_for_function(
        "document.querySelector('#fl-review-patterns-md').innerText"
        ".includes('Explanations of 5 cases')"
    )
    pg.wait_for_selector("#fl-review-outcome-maps .heatmaplayer")
    pg.wait_for_selector("#fl-review-cluster-maps .heatmaplayer")
    pg.wait_for_selector("#fl-review-shapley .boxlayer")
    titles = pg.inner_text("#fl-review-cluster-maps")
    cxr = patterns.modalities["cxr"]
    for c in cxr.clusters:
        assert f"cluster {c.index}: {len(c.cases)}" in titles
    assert "FN (n 4)" in pg.inner_text("#fl-review-outcome-maps")
    pg.locator("#fl-review-pattern-modality").get_by_label("ECG").check()
    pg.wait_for_function(
        "document.querySelector('#fl-review-outcome-maps').innerText.includes('ECG: mean')"
    )
    pg.wait_for_selector("#fl-review-embedding .legend .traces")
    drawn = pg.evaluate(PUSHED_MARGINS)  # each figure's margins hold its labels and legend
    assert drawn["plots"] >= 6 and drawn["pushed"] == [], drawn
    pg.screenshot(path=str(ARTIFACTS / "review-cohort-view.png"), full_page=True)

    cluster = cxr.clusters[-1]
    mix = ", ".join(f"{o} {n}" for o, n in cluster.outcomes.items() if n)
    label = f"cxr cluster {cluster.index}: {len(cluster.cases)} cases ({mix})"
    pg.click("#fl-review-cluster input")
    pg.get_by_role("option", name=label).click()
    assert sorted(_wait_rows(pg, len(cluster.cases))) == sorted(cluster.cases)
    pg.click("#fl-review-cluster input")
    pg.get_by_role("option", name="All cases").click()
    _wait_rows(pg, 5)

    # the reviewer asks for another number of ECG strategies than the eigengap's: the
    # clusters and the filter follow that split
    k = 3 if patterns.modalities["ecg"].clustering.eigengap_k == 2 else 2
    engine, sessions = open_database(f"sqlite:///{db}")
    try:
        asked = cohort_patterns(sessions, 1, strategies={"ecg": k}).modalities["ecg"]
    finally:
        engine.dispose()
    pg.click("#fl-review-strategies input")
    pg.get_by_role("option", name=str(k), exact=True).click()
    pg.wait_for_function(
        "document.querySelector('#fl-review-patterns-md').innerText"
        f".includes('shown: {k}, as asked')"
    )
    picked = asked.clusters[-1]
    mix = ", ".join(f"{o} {n}" for o, n in picked.outcomes.items() if n)
    pg.click("#fl-review-cluster input")
    pg.get_by_role(
        "option", name=f"ecg cluster {picked.index}: {len(picked.cases)} cases ({mix})"
    ).click()
    assert sorted(_wait_rows(pg, len(picked.cases))) == sorted(picked.cases)
