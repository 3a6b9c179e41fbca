"""``fuselens review`` with explanations on Ray: every case explained and stored once, a
rerun served from the bundle store, a killed worker's cases rerun, the cohort patterns, and
a reviewed case opened in the Case view from its stored bundle."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from sqlalchemy import func, select
from test_model_support import tiny_config

from fuselens.app.cli import main
from fuselens.app.review import store, views
from fuselens.app.review.patterns import cohort_patterns
from fuselens.app.review.runner import Explained, review_cohort
from fuselens.app.session import (
    CACHED,
    PANELS,
    PREPARING,
    LoadedModel,
    Workstation,
    settings_variant,
)
from fuselens.app.storage.db import open_database
from fuselens.app.storage.models import CaseResult as ResultRow
from fuselens.app.views import bundle_panels
from fuselens.app.workstation import _review_request
from fuselens.explain.context import PREDICTED
from fuselens.explain.pipeline import explain_case
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import CARD_FILE, save_model
from fuselens.model_zoo.synth.cohort import write_cohort

pytestmark = pytest.mark.slow
N = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("explained")
    write_cohort(root / "cohort", n=N, seed=3, progress=False, workers=1)
    torch.manual_seed(0)
    model = save_model(FusionModel(tiny_config()).eval(), root / "model")
    # the model answers "no" everywhere: every case is explained for a class it did not give
    card = {"operating_points": {"heart_failure": {"yes_at": 0.999}}}
    (model / CARD_FILE).write_text(json.dumps(card))
    return {"root": root, "cohort": root / "cohort", "model": model,
            "url": f"sqlite:///{root / 'review.db'}"}  # fmt: skip


@pytest.fixture(scope="module")
def first_run(setup):
    bundles = setup["root"] / "bundles"
    killed: list[int] = []

    def kill_first_worker(out: dict) -> None:
        if not killed:
            killed.append(out["pid"])
            os.kill(out["pid"], signal.SIGKILL)

    explained = Explained(bundles, workers=2, on_output=kill_first_worker)
    summary = review_cohort(
        setup["cohort"], setup["model"], setup["url"], "run a", progress=False,
        explained=explained,
    )  # fmt: skip
    return summary, bundles, killed


def test_a_killed_worker_leaves_every_case_stored_once(setup, first_run):
    summary, bundles, killed = first_run
    assert summary.complete and summary.failed == {}
    assert (summary.added, summary.bundles_written, summary.cached) == (N, N, 0)
    assert killed and killed[0] not in {w["pid"] for w in summary.workers}
    engine, sessions = open_database(setup["url"])
    try:
        with sessions() as s:
            n_rows = s.scalar(select(func.count()).select_from(ResultRow))
        keys = store.bundle_keys(sessions, summary.run_id)
    finally:
        engine.dispose()
    assert n_rows == N and len(keys) == N and len(set(keys.values())) == N
    entries = [p for p in bundles.glob("*/*") if not p.name.startswith(".")]
    assert sorted(p.name for p in entries) == sorted(keys.values())
    assert not list(bundles.glob("*/.*"))  # no half-written entry left


def test_a_rerun_under_another_name_is_served_from_the_store_on_a_local_cluster(
    setup, first_run, capsys, monkeypatch
):
    """RAY_ADDRESS names a cluster that is not there: without ``--address`` the run starts its
    own (before, Ray joined the named one and refused the run's CPU count)."""
    _, bundles, _ = first_run
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    args = ["review", "--cohort", str(setup["cohort"]), "--model", str(setup["model"])]
    args += ["--db", setup["url"], "--run-name", "run b", "--store", str(bundles)]
    assert main([*args, "--workers", "1", "--summary"]) == 0
    out = capsys.readouterr().out
    assert f"0 bundles written, {N} found in {bundles}" in out
    assert f"review run 2: {N} explained cases" in out and "strategies (SpRAy" in out


def test_patterns_and_a_reviewed_case_opened_from_its_bundle(setup, first_run):
    summary, bundles, _ = first_run
    engine, sessions = open_database(setup["url"])
    try:
        patterns = cohort_patterns(sessions, summary.run_id)
        rows = {r["case_id"]: r for r in store.run_rows(sessions, summary.run_id)}
        opened = {c: views.open_result(sessions, summary.run_id, c) for c in rows}
    finally:
        engine.dispose()
    loaded = opened["P00002"]
    assert patterns.n_cases == N and not patterns.missing
    for m in ("ecg", "echo", "cxr"):
        p = patterns.modalities.get(m)
        if p is None:
            continue
        assert sum(len(c.cases) for c in p.clusters) == len(p.cases)
        for o, mean in p.outcome_means.items():
            assert mean.sum() == pytest.approx(1.0, abs=1e-5), (m, o)
    outcomes = {o for by in patterns.shapley.values() for o, v in by.items() if v}
    assert outcomes == {r["outcome"] for r in rows.values()}

    from fuselens.model_zoo.loading import load_explainable

    model = load_explainable(setup["model"], "cpu")
    ws = Workstation(LoadedModel(model, "tiny", "cpu"), [])
    try:
        request = _review_request(ws, loaded)
        stages = list(ws.explain(loaded, "heart_failure", "yes"))
        for case_id, other in opened.items():  # whatever the answer, the run's request is stored
            asked = _review_request(ws, other)
            got = list(ws.explain(other, *asked))
            assert [(s, cached) for s, _, cached in got] == [(CACHED, True)], case_id
            assert got[0][1].prediction["heart_failure"]["answer"] == "no"
            assert ws.stored_bundle(other, "heart_failure", PREDICTED, "gradcam_pp") is None
        panels = _prefetched_panels(ws, opened["P00003"])
        _picked_panels(ws, opened["P00003"])
    finally:
        ws.close()
    assert request == ("heart_failure", "yes", "gradcam_pp")
    assert [(s, cached) for s, _, cached in stages] == [(CACHED, True)]
    got = stages[0][1]
    direct = explain_case(model, loaded.case, "heart_failure", "yes")
    assert got.case_id == loaded.case.case_id
    assert got.probability == pytest.approx(direct.probability, abs=1e-6)
    # 8-bit storage (<= 1/510) plus a worker's one torch thread against this process's pool
    assert np.abs(got.shown_maps().cxr - direct.shown_maps().cxr).max() <= 0.01
    assert panels["prediction"] and panels["shapley"] is not None and panels["cxr"] is not None


def _prefetched_panels(ws: Workstation, loaded) -> dict:
    """Open ``loaded`` on its run's request: the worker builds the stored bundle's panels
    while the case opens, the opening takes them, and the Case view's request (same
    settings) takes that job; other settings start a job of their own."""
    request = _review_request(ws, loaded)
    settings = ws.settings([0.5, 0.5, 0.5], 0.4, request[2])
    ws.show("tab", loaded)
    ws.prefetch("tab", loaded, *request, settings=settings)
    shown = ws.opening_results("tab", loaded, 30.0, 30.0)
    assert [stage for stage, _, _ in shown] == [CACHED, PANELS]
    job = ws.submit("tab", loaded, *request, ws.settings([0.5, 0.5, 0.5], 0.4, request[2]))
    assert job is ws.worker.latest("tab") and job.variant == settings_variant(settings)
    assert job.delivered == 2
    results = list(job.results())
    assert [stage for stage, _, _ in results] == [CACHED, PANELS]
    panels = results[1][2]
    assert panels is shown[1][2], "the opening's panels are the job's, built once"
    assert set(panels) == set(bundle_panels(loaded.case, results[0][1], settings))
    again = ws.submit("tab", loaded, *request, ws.settings([0.5, 0.5, 0.5], 0.9, request[2]))
    assert again is not job and again.delivered == 0
    assert [s for s, _, _ in again.results()] == [CACHED, PANELS]
    return panels


def _picked_panels(ws: Workstation, loaded) -> None:
    """A case picked in the review table has its stored bundle's panels built before it is
    opened, beside the session's own explanation; opening it with the same settings takes
    them, and other settings build their own."""
    request = _review_request(ws, loaded)
    settings = ws.settings([0.5, 0.5, 0.5], 0.4, request[2])
    shown = ws.worker.latest("tab")
    ws.prepare("tab", loaded, request, settings)
    assert list(ws.worker.latest("tab" + PREPARING).results()) == [PANELS]
    assert ws.worker.latest("tab") is shown, "the session's own explanation is untouched"
    (built,) = ws._prepared.values()
    opened = list(ws.explain(loaded, *request, settings=settings))
    assert [stage for stage, _, _ in opened] == [CACHED, PANELS] and opened[1][2] is built
    assert not ws._prepared, "taken once"
    other = ws.settings([0.5, 0.5, 0.5], 0.9, request[2])
    ws.prepare("tab", loaded, request, settings)
    list(ws.worker.latest("tab" + PREPARING).results())
    list(ws.explain(loaded, *request, settings=other))
    assert len(ws._prepared) == 1, "panels built for other settings are not taken"
