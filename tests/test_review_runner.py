"""fuselens review: the model over a small synthetic cohort, resumable, outcomes checked."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from test_model_support import tiny_explainable

from fuselens.app.cli import main
from fuselens.app.review import store, views
from fuselens.app.review.runner import run_review
from fuselens.app.storage.db import open_database
from fuselens.app.storage.models import CaseResult as ResultRow
from fuselens.model_zoo.predict import predict_case
from fuselens.model_zoo.registry import save_model
from fuselens.model_zoo.synth.cohort import write_cohort

N = 6


class Interrupted(RuntimeError):
    pass


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    write_cohort(out, n=N, seed=3, progress=False, workers=1)
    return out


@pytest.fixture(scope="module")
def model():
    return tiny_explainable(0)


@pytest.fixture(scope="module")
def reviewed(cohort, model, tmp_path_factory):
    """A run interrupted after 2 stored cases, then resumed to the end."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'review.db'}"
    engine, sessions = open_database(url)
    seen: list[str] = []

    def stop_after_two(result) -> None:
        seen.append(result.case_id)
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_review(sessions, cohort, model, "tiny", "r1", progress=False, on_stored=stop_after_two)
    after_interrupt = store.stored_case_keys(sessions, 1)
    resumed = run_review(sessions, cohort, model, "tiny", "r1", progress=False)
    yield {
        "url": url,
        "sessions": sessions,
        "first": list(seen),
        "after_interrupt": after_interrupt,
        "resumed": resumed,
    }
    engine.dispose()


def test_interrupted_run_resumes_with_every_case_once(reviewed):
    assert reviewed["after_interrupt"] == set(reviewed["first"]) and len(reviewed["first"]) == 2
    summary = reviewed["resumed"]
    assert (summary.stored_before, summary.added, summary.total) == (2, N - 2, N)
    assert summary.complete and not summary.failed
    with reviewed["sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(ResultRow)) == N
        keys = s.scalars(select(ResultRow.case_key)).all()
    assert sorted(keys) == [f"P{i:05d}" for i in range(N)]
    assert store.get_run(reviewed["sessions"], summary.run_id).status == "complete"


def test_stored_outcomes_match_truth_files_and_the_model(reviewed, cohort, model):
    from fuselens.app.ingest import load_case

    rows = {r["case_id"]: r for r in store.run_rows(reviewed["sessions"], 1)}
    for case_id, row in rows.items():
        truth = json.loads((cohort / case_id / "truth.json").read_text())
        assert row["truth"] == truth["labels"]["heart_failure"]
        assert sorted(row["modalities"]) == sorted(truth["modalities"])
        expected_pred = int(row["probability"] >= 0.5)
        assert row["prediction"] == expected_pred
        assert (
            row["outcome"]
            == {(1, 1): "TP", (0, 1): "FP", (0, 0): "TN", (1, 0): "FN"}[
                (row["truth"], expected_pred)
            ]
        )
    case, _ = load_case(cohort / "P00005")  # labs and CXR only
    p = predict_case(model, case)["tasks"]["heart_failure"]["probability"]
    assert rows["P00005"]["probability"] == pytest.approx(p, abs=1e-6)


def test_a_rerun_of_a_complete_run_adds_nothing(reviewed, cohort, model):
    summary = run_review(reviewed["sessions"], cohort, model, "tiny", "r1", progress=False)
    assert (summary.added, summary.stored_before, summary.stored_after) == (0, N, N)


def test_a_run_name_reused_for_another_model_is_refused(reviewed, cohort, model):
    with pytest.raises(ValueError, match="choose another --run-name"):
        run_review(reviewed["sessions"], cohort, model, "another model", "r1", progress=False)


def test_cli_review_threshold_limit_and_resume(reviewed, cohort, model, tmp_path, capsys):
    path = save_model(model.net, tmp_path / "m")
    args = ["review", "--cohort", str(cohort), "--model", str(path), "--db", reviewed["url"]]
    args += ["--run-name", "strict", "--threshold", "0.99", "--no-explain"]
    assert main([*args, "--limit", "1"]) == 0
    assert "1 new, 0 already stored, 1/6 cases stored; incomplete" in capsys.readouterr().out
    assert main([*args, "--limit", "1"]) == 0
    assert "1 new, 1 already stored, 2/6 cases stored" in capsys.readouterr().out
    rows = store.run_rows(reviewed["sessions"], 2)
    assert [r["case_id"] for r in rows] == ["P00000", "P00001"]
    assert all(r["prediction"] == 0 and r["outcome"] == "FN" for r in rows)  # both have HF


def test_cli_review_rejects_a_folder_without_cases(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["review", "--cohort", str(tmp_path), "--db", db]) == 2
    assert "no case folders with truth.json" in capsys.readouterr().err


def test_open_result_reads_the_case_folder_with_its_truth(reviewed):
    loaded = views.open_result(reviewed["sessions"], 1, "P00005")
    assert loaded.case.modalities() == ["labs", "cxr"]
    assert loaded.case.truth is not None and loaded.case.truth.labels["heart_failure"] == 1
    assert loaded.key == "review-1-P00005" and "P00005" in loaded.title
    assert "error review run 'r1'" in loaded.story
    with pytest.raises(KeyError):
        views.open_result(reviewed["sessions"], 1, "P99999")


def test_an_unreadable_case_is_reported_not_stored(cohort, model, tmp_path):
    import shutil

    bad = tmp_path / "cohort" / "P00099"
    bad.mkdir(parents=True)
    shutil.copy(cohort / "P00000" / "truth.json", bad / "truth.json")
    (bad / "labs.csv").write_text("this is not, a lab table\n\x00\x01")
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'bad.db'}")
    try:
        summary = run_review(sessions, tmp_path / "cohort", model, "tiny", "bad", progress=False)
        assert summary.added == 0 and not summary.complete
        assert "no readable modality" in summary.failed["P00099"]
        assert store.run_rows(sessions, summary.run_id) == []
    finally:
        engine.dispose()


def test_stored_input_warnings_never_hold_an_identifying_value():
    from fuselens.app.identifier_text import redacted_warnings
    from fuselens.model_zoo.case import PatientCase

    case = PatientCase(case_id="c1")
    case.identifiers.update({"PatientName": "Testperson^Alice", "PatientID": "ID-998877"})
    case.warnings = [
        "cxr.dcm: cxr: unreadable value 'Testperson^Alice' (not loaded)",
        "ecg.dcm: PatientID ID-998877 differs",
        "echo.dcm: no frame rate in the file: assumed 30 frames/s",
    ]
    assert redacted_warnings(case) == [
        "cxr.dcm: cxr: unreadable value '[PatientName]' (not loaded)",
        "ecg.dcm: PatientID [PatientID] differs",
        "echo.dcm: no frame rate in the file: assumed 30 frames/s",
    ]


def test_a_run_shows_the_caveat_of_the_model_that_made_it(cohort, tmp_path):
    from fuselens.app.review.views import caveat_markdown
    from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT

    own = tiny_explainable(0)
    own.caveat = "Untrained example model (random weights): its answers mean nothing."
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'caveat.db'}")
    try:
        summary = run_review(sessions, cohort, own, "mine", "mine", progress=False, limit=1)
        assert store.get_run(sessions, summary.run_id).model_caveat == own.caveat
        assert caveat_markdown(sessions, summary.run_id) == f"⚠️ **{own.caveat}**"
        # runs stored before the caveat was kept: the demo model's, or said to be unknown
        for name, expected in (("demo", DEMO_CAVEAT), ("my_model:build", "was not recorded")):
            run_id = store.open_run(sessions, f"old {name}", cohort, name, "heart_failure")
            assert expected in caveat_markdown(sessions, run_id)
    finally:
        engine.dispose()
