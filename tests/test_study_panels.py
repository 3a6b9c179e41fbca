"""Reader studies of explanations without a browser: which file is which panel, panel
events timed by the server and refused outside the arm, marks checked and scored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from study_support import fake_cases, study_config

from fuselens.app.storage.models import Reader, ReadingEvent
from fuselens.app.study.config import parse_config, resolve_passwords
from fuselens.app.study.panels import file_panel, load_regions, save_regions
from fuselens.app.study.results import study_results
from fuselens.app.study.service import (
    AnswerIn,
    Forbidden,
    InvalidAnswer,
    check_marks,
    create_study,
    next_assignment,
    panel_seconds,
    record_event,
    submit_answer,
)


def test_each_file_belongs_to_its_panel_and_method():
    assert file_panel("cxr.png") == (None, None) and file_panel("echo_A4C.mp4") == (None, None)
    assert file_panel("cxr_heat_gradcam_pp.png") == ("heatmaps", "gradcam_pp")
    assert file_panel("echo_A2C_heat_integrated_gradients.mp4") == (
        "heatmaps",
        "integrated_gradients",
    )
    assert file_panel("ecg_heat_gradcam_pp.json") == ("heatmaps", "gradcam_pp")
    assert file_panel("report.json") == ("report", None)
    assert file_panel("attention_1.json") == ("attention", None)
    for name in ("regions.npz", "../cxr.png", "cxr.PNG", "attention_2.json", "report.json.bak"):
        assert file_panel(name) is None, name


def test_panel_seconds_sum_each_open_spell_until_close_or_the_answer():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def ev(i, panel, action, s):
        return ReadingEvent(id=i, panel=panel, action=action, at=t0 + timedelta(seconds=s))

    events = [
        ev(1, "report", "open", 0),
        ev(2, "report", "close", 4),
        ev(3, "report", "open", 10),  # open until the answer at 15 s: 4 + 5
        ev(4, "heatmaps:cxr", "open", 2),
        ev(5, "heatmaps:cxr", "open", 3),  # a second open does not restart the spell
        ev(6, "heatmaps:cxr", "close", 9.5),
        ev(7, "labs", "close", 1),  # a close without an open counts nothing
    ]
    assert panel_seconds(events, t0 + timedelta(seconds=15)) == {
        "heatmaps:cxr": 7.5,
        "report": 9.0,
    }


def test_marks_are_checked_against_the_case():
    ok = check_marks(
        [{"modality": "ecg", "lead": "V5", "t": 1.5}, {"modality": "labs_not", "x": 1}][:1],
        ["labs", "ecg"],
    )
    assert ok == [{"modality": "ecg", "lead": "V5", "t": 1.5}]
    for marks, why in [
        ([{"modality": "cxr", "x": 1, "y": 2}], "does not have"),
        ([{"modality": "ecg", "t": 1.0}], "lacks 'lead'"),
        ([{"modality": "ecg", "lead": "I", "t": float("nan")}], "finite"),
        ([{"modality": "ecg", "lead": "I", "t": -1}], "negative"),
        ([{"modality": "ecg", "lead": "I", "t": 1}] * 21, "at most 20"),
        ("V5", "list"),
    ]:
        with pytest.raises(InvalidAnswer, match=why):
            check_marks(marks, ["labs", "ecg"])


def _study(session, tmp_path):
    raw = study_config(1, ["no_ai", "ai_explained"], seed=3)
    raw["questions"] = {"marks": True}
    config, _ = resolve_passwords(parse_config(raw))
    extra = {"regions_dir": str(tmp_path / "regions")}
    study = create_study(session, config, fake_cases(2, seed=3), extra=extra)
    reader = session.scalars(
        select(Reader).where(Reader.study_id == study.id, Reader.role == "reader")
    ).one()
    return study, reader


def test_events_outside_the_arm_are_refused_and_marks_scored_against_regions(db, tmp_path):
    study, reader = _study(db, tmp_path)
    # an ECG region per case: leads I and V5 at 100 Hz; the model marks V5 0.50-0.60 s,
    # the truth V5 0.50-0.55 s and I 2.00-2.10 s
    for case in ("C000", "C001"):
        model, truth = np.zeros((2, 300), bool), np.zeros((2, 300), bool)
        model[1, 50:61] = True
        truth[1, 50:56] = True
        truth[0, 200:211] = True
        ecg = {"leads": ["I", "V5"], "rate": 100.0}
        save_regions(
            tmp_path / "regions" / case / "gradcam_pp.npz",
            {"model": {"ecg": {"mask": model, **ecg}}, "truth": {"ecg": {"mask": truth, **ecg}}},
        )
    loaded = load_regions(tmp_path / "regions" / "C000" / "gradcam_pp.npz")
    assert loaded["model"]["ecg"]["leads"] == ["I", "V5"] and loaded["truth"]["ecg"]["rate"] == 100
    marks_by_arm = {
        # hits model and truth; hits model only (0.60 s; truth ends 0.55 + 0.04 tolerance);
        # truth only (lead I at 2.05 s)
        "ai_explained": [
            {"modality": "ecg", "lead": "V5", "t": 0.52},
            {"modality": "ecg", "lead": "V5", "t": 0.60},
            {"modality": "ecg", "lead": "I", "t": 2.05},
        ],
        "no_ai": [{"modality": "ecg", "lead": "V5", "t": 1.5}],  # misses both
    }
    while (a := next_assignment(db, reader)) is not None:
        arm = a.arm.name
        record_event(db, reader, a.id, "labs", "open")
        if arm == "no_ai":
            with pytest.raises(Forbidden):
                record_event(db, reader, a.id, "heatmaps:cxr", "open")
            with pytest.raises(Forbidden):
                record_event(db, reader, a.id, "report", "open")
        else:
            record_event(db, reader, a.id, "report", "open")
        with pytest.raises(InvalidAnswer):
            record_event(db, reader, a.id, "labs", "toggle")
        marks = marks_by_arm[arm] if a.case.case_key == "C000" else []
        rated = {p: 3 for p in a.arm.panels}
        answer = submit_answer(db, reader, a.id, AnswerIn(1, 70, rated, "", marks))
        assert set(answer.panel_seconds) == ({"labs"} if arm == "no_ai" else {"labs", "report"})
        assert answer.marks == marks
    results = study_results(db, study.id)
    rows = {(r["arm"], r["modality"]): r for r in results["mark_agreement"]}
    explained = rows[("ai_explained", "ecg")]
    assert (explained["n_marks"], explained["model_hits"], explained["truth_hits"]) == (3, 2, 2)
    assert rows[("no_ai", "ecg")]["model_hits"] == rows[("no_ai", "ecg")]["truth_hits"] == 0
    assert "over_reliance_differences" in results


def test_the_question_follows_the_study_task_and_arms_list_their_panels():
    raw = study_config(1, ["no_ai", {"name": "maps", "panels": ["heatmaps", "prediction"]}])
    config = parse_config({**raw, "task": "lbbb"})
    assert config.questions.diagnosis == "Does this patient have left bundle branch block?"
    assert parse_config({**raw, "task": "raised_ntprobnp"}).questions.diagnosis.endswith(
        "raised NT-proBNP?"
    )
    maps = config.arms[1]
    assert maps.panels == ("prediction", "heatmaps") and maps.method == "gradcam_pp"
    assert maps.show_prediction and maps.show_explanations
    assert config.arms[0].panels == () and not config.arms[0].show_prediction
