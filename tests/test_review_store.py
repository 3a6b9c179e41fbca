"""Review storage: results, tags, notes and the taxonomy survive a new engine; edits audited."""

from __future__ import annotations

import csv
import os

import pytest
from sqlalchemy import select

from fuselens.app.review import store, views
from fuselens.app.review.cohort import CaseResult, outcome
from fuselens.app.review.table import for_display
from fuselens.app.storage.db import open_database
from fuselens.app.storage.models import AuditLog

DEFAULT_TAGS = {
    "missed reduced EF",
    "label noise",
    "modality missing",
    "spurious lab cue",
    "confounder",
}


ECHO_REFUSED = "us.dcm: echo: BodyPartExamined 'ABDOMEN' is not the chest (not loaded)"


def _result(i: int, truth: int, p: float, modalities=("labs", "ecg", "echo", "cxr")):
    pred = int(p >= 0.5)
    return CaseResult(f"P{i:05d}", truth, p, pred, outcome(truth, pred), tuple(modalities))


@pytest.fixture
def db(tmp_path):
    """A SQLite file with one run of four cases; yields (url, sessions, run id, tmp path)."""
    url = f"sqlite:///{tmp_path / 'review.db'}"
    engine, sessions = open_database(url)
    run_id = store.open_run(sessions, "run A", tmp_path, "tiny", "heart_failure")
    for r in (
        _result(0, 1, 0.91),
        _result(1, 1, 0.22, ("labs", "cxr")),  # FN, no echo
        _result(2, 0, 0.61),
        _result(3, 0, 0.08),
    ):
        problems = [ECHO_REFUSED] if r.case_id == "P00001" else []
        assert store.add_result(sessions, run_id, r, tmp_path / r.case_id, None, problems)
    yield url, sessions, run_id, tmp_path
    engine.dispose()


def test_default_taxonomy_is_seeded(db):
    _, sessions, _, _ = db
    assert set(store.tag_names(sessions)) == DEFAULT_TAGS


def test_a_case_is_stored_once(db):
    _, sessions, run_id, tmp_path = db
    assert not store.add_result(sessions, run_id, _result(0, 1, 0.5), tmp_path)
    assert len(store.run_rows(sessions, run_id)) == 4


def test_tags_and_notes_survive_a_new_engine(db):
    url, sessions, run_id, _ = db
    change = store.save_annotation(
        sessions, run_id, "P00001", ["missed reduced EF", "modality missing"], "no echo", "ana"
    )
    assert change == {
        "case": "P00001",
        "added": ["missed reduced EF", "modality missing"],
        "removed": [],
        "note": True,
    }
    change = store.save_annotation(
        sessions, run_id, "P00001", ["modality missing"], "  EF unknown  ", "ben"
    )
    assert change["removed"] == ["missed reduced EF"] and change["added"] == []

    engine, fresh = open_database(url)  # a new engine, as after a restart
    try:
        row = store.result(fresh, run_id, "P00001")
        assert row["tags"] == ["modality missing"]
        assert row["notes"] == ["no echo", "EF unknown"]
        assert row["outcome"] == "FN" and row["modalities"] == ["labs", "cxr"]
        with fresh() as s:
            audit = s.scalars(
                select(AuditLog).where(AuditLog.action == "case_annotated").order_by(AuditLog.id)
            ).all()
        assert [(a.actor, a.run_id, a.detail["case"]) for a in audit] == [
            ("ana", run_id, "P00001"),
            ("ben", run_id, "P00001"),
        ]
    finally:
        engine.dispose()


def test_unknown_tag_or_case_is_refused_and_nothing_is_saved(db):
    _, sessions, run_id, _ = db
    with pytest.raises(ValueError, match="no tag"):
        store.save_annotation(sessions, run_id, "P00000", ["label noise", "typo"], "x", "ana")
    with pytest.raises(KeyError):
        store.save_annotation(sessions, run_id, "P99999", [], "x", "ana")
    row = store.result(sessions, run_id, "P00000")
    assert row["tags"] == [] and row["notes"] == []  # the failed save rolled back whole


def test_taxonomy_add_rename_remove(db):
    _, sessions, run_id, _ = db
    assert store.add_tag(sessions, "  wrong  view  ", "ana") == "wrong view"
    with pytest.raises(ValueError, match="exists already"):
        store.add_tag(sessions, "Wrong View", "ana")
    with pytest.raises(ValueError, match="needs a name"):
        store.add_tag(sessions, "   ", "ana")
    store.save_annotation(sessions, run_id, "P00002", ["wrong view", "label noise"], "", "ana")
    store.rename_tag(sessions, "wrong view", "echo view mislabelled", "ben")
    assert store.result(sessions, run_id, "P00002")["tags"] == [
        "echo view mislabelled",
        "label noise",
    ]
    with pytest.raises(ValueError, match="exists already"):
        store.rename_tag(sessions, "label noise", "confounder", "ben")
    assert store.remove_tag(sessions, "label noise", "ben") == 1
    assert store.result(sessions, run_id, "P00002")["tags"] == ["echo view mislabelled"]
    assert "label noise" not in store.tag_names(sessions)
    with sessions() as s:
        actions = s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-3:] == ["case_annotated", "tag_renamed", "tag_removed"]


def test_views_filter_export_and_summarise_a_stored_run(db):
    _, sessions, run_id, tmp_path = db
    store.save_annotation(sessions, run_id, "P00001", ["modality missing"], "no echo", "ana")
    filters = views.make_filters(
        ["FN"], 0.5, 1.0, [], ["echo"], ["modality missing"], False, "case_id", 0
    )
    table, shown = views.tables(sessions, run_id, filters)
    assert list(shown["case_id"]) == ["P00001"]
    problems = views.make_filters([], 0, 1, [], [], [], True, "case_id", 0)
    assert list(views.tables(sessions, run_id, problems)[1]["case_id"]) == ["P00001"]
    row = store.result(sessions, run_id, "P00001")
    assert row["input_warnings"] == [ECHO_REFUSED]
    assert list(for_display(shown)["input_warnings"]) == ["1 file not loaded"]
    assert f"- {ECHO_REFUSED}" in views.case_markdown(row)
    assert "Input warnings" not in views.case_markdown(store.result(sessions, run_id, "P00000"))
    assert views.summary_markdown(table, shown).startswith("Showing **1** of 4 cases")
    path = views.export_path(shown, run_id, tmp_path / "out")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {
            "case_id": "P00001",
            "truth": "yes",
            "prediction": "no",
            "outcome": "FN",
            "probability": "0.22",
            "confidence": "0.78",
            "modalities": "labs, cxr",
            "input_warnings": ECHO_REFUSED,
            "tags": "modality missing",
            "notes": "no echo",
        }
    ]
    confusion, calibration = views.cohort_figures(table)
    assert [list(r) for r in confusion.data[0].z] == [[1, 1], [1, 1]]
    assert "Brier score 0.249" in calibration.layout.title.text  # (.09²+.78²+.61²+.08²)/4
    with pytest.raises(ValueError):
        views.make_filters([], 0.9, 0.6, [], [], [], False, "confidence", True)


def test_runs_are_listed_with_counts_and_a_clash_is_refused(db):
    _, sessions, run_id, tmp_path = db
    (info,) = store.list_runs(sessions)
    assert (info.id, info.name, info.n_results, info.status) == (run_id, "run A", 4, "running")
    assert views.run_choices(sessions) == [("run A (4 cases, running)", run_id)]
    assert store.open_run(sessions, "run A", tmp_path, "tiny", "heart_failure") == run_id
    with pytest.raises(ValueError, match="run A"):
        store.open_run(sessions, "run A", os.fspath(tmp_path / "other"), "tiny", "heart_failure")
