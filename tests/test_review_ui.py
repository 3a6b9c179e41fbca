"""The workstation with an Error review tab: components, the opener, bad input refused."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import pytest  # noqa: E402
from app_support import tiny_workstation  # noqa: E402

from fuselens.app.review import store  # noqa: E402
from fuselens.app.review.cohort import CaseResult  # noqa: E402
from fuselens.app.review.ui import declare_review_tab, wire_review_events  # noqa: E402
from fuselens.app.storage.db import open_database  # noqa: E402
from fuselens.app.workstation import build_app  # noqa: E402

REVIEW_IDS = [
    "fl-tab-case",
    "fl-tab-review",
    "fl-review-run",
    "fl-review-outcomes",
    "fl-review-low",
    "fl-review-high",
    "fl-review-present",
    "fl-review-missing",
    "fl-review-tag-filter",
    "fl-review-warnings",
    "fl-review-sort",
    "fl-review-table",
    "fl-review-confusion",
    "fl-review-calibration",
    "fl-review-tags",
    "fl-review-note",
    "fl-review-save",
    "fl-review-open",
    "fl-review-export",
    "fl-review-csv",
    "fl-review-tax-add",
    "fl-review-tax-rename",
    "fl-review-tax-remove",
]


@pytest.fixture
def sessions(tmp_path):
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    run = store.open_run(sessions, "ui run", tmp_path, "tiny", "heart_failure")
    result = CaseResult("P00000", 1, 0.3, 0, "FN", ("labs",))
    store.add_result(sessions, run, result, tmp_path / "missing-folder")
    yield sessions
    engine.dispose()


def test_app_has_case_and_error_review_tabs(sessions, tmp_path):
    ws = tiny_workstation(0, tmp_path)
    app = build_app(ws, sessions)
    ids = {b.elem_id for b in app.blocks.values() if getattr(b, "elem_id", None)}
    assert not [i for i in REVIEW_IDS if i not in ids]
    assert "fl-demo" in ids and "fl-ecg" in ids  # the Case view is all there
    run = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "fl-review-run")
    assert run.value == 1 and run.choices == [("ui run (1 cases, running)", 1)]
    tags = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "fl-review-tags")
    assert "missed reduced EF" in [value for _, value in tags.choices]


def test_no_event_updates_the_tabs(sessions, tmp_path):
    """Gradio's frontend walks every component under an event's output on each status
    message; the Case tab is shown in the browser instead (``show_case_tab``)."""
    app = build_app(tiny_workstation(0, tmp_path), sessions)
    tabs = {b._id for b in app.blocks.values() if isinstance(b, gr.Tabs)}
    assert tabs
    deps = app.get_config_file()["dependencies"]
    assert [d for d in deps if tabs & set(d["outputs"])] == []
    assert [d for d in deps if d["js"] and "fl-tab-case-button" in d["js"]]


def test_events_with_many_outputs_show_progress_on_few(sessions, tmp_path):
    """Gradio's frontend updates the loading status of every component that was ever an
    event's progress target, on every status message: opening and explaining a case (dozens
    of outputs) and the review tab's table and patterns name one component for it."""
    deps = build_app(tiny_workstation(0, tmp_path), sessions).get_config_file()["dependencies"]
    crowded = [
        d["api_name"]
        for d in deps
        if d["backend_fn"] and len(d["show_progress_on"] or d["outputs"]) > 5
    ]
    assert crowded == []
    assert max(len(d["outputs"]) for d in deps) > 30  # the opening's outputs


def test_opening_needs_a_selection_and_a_readable_folder(sessions):
    with gr.Blocks(), gr.Tabs():
        opener = wire_review_events(sessions, declare_review_tab(sessions))
    with pytest.raises(gr.Error, match="Select a case"):
        opener.load(1, None)
    with pytest.raises(gr.Error, match="cannot be read"):
        opener.load(1, "P00000")  # its folder is gone


def test_serve_takes_a_review_database():
    from fuselens.app.cli import build_parser

    assert build_parser().parse_args(["serve"]).review_db is None
    args = build_parser().parse_args(["serve", "--review-db", "sqlite:////tmp/r.db"])
    assert args.review_db == "sqlite:////tmp/r.db"
