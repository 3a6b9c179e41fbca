"""Labelled cohorts: real DICOM case folders with a labels.csv, reviewed with any contract
model and any of its tasks; the synthetic cohort's labels from truth.json."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from torch import nn

from fuselens.app.cli import main
from fuselens.app.cohort import (
    CohortError,
    LabelledCohort,
    SyntheticCohort,
    open_cohort,
)
from fuselens.app.review import store, views
from fuselens.app.review.runner import review_cohort
from fuselens.app.storage.db import open_database
from fuselens.model_zoo.contract import Batch, check_model
from fuselens.model_zoo.predict import predict_case, predict_cases
from fuselens.model_zoo.standard_inputs import standard_batch

BRIGHT_FROM = 0.72  # mean CXR intensity in [0, 1] from which the image is "bright"
EXPOSURE = {"dark": 0.60, "mid": 0.70, "bright": 0.76}  # nearest centre wins
SHARPNESS = 50.0
CXR_SIZE = 64


class CxrBrightness(nn.Module):
    """A contract model that reads only the chest X-ray: its mean intensity (FuseLens's
    standard CXR input, [0, 1]) decides both tasks, so every output is known by hand."""

    name = "cxr-brightness"
    modalities = ("cxr",)
    caveat = "Test model: mean CXR intensity, nothing clinical."
    tasks = {"bright": ["no", "yes"], "exposure": list(EXPOSURE)}

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def prepare(self, cases) -> Batch:
        return standard_batch(cases, self.modalities, cxr_size=CXR_SIZE, device=self.device)

    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        present = batch.present[:, 0]
        mean = torch.where(present, batch.tensors["cxr"].mean(dim=(1, 2, 3)), BRIGHT_FROM)
        yes = SHARPNESS * (mean - BRIGHT_FROM)
        centres = torch.tensor(list(EXPOSURE.values()), device=mean.device)
        return {
            "bright": torch.stack([torch.zeros_like(yes), yes], dim=-1),
            "exposure": -SHARPNESS * (mean[:, None] - centres).abs(),
        }


def make_model() -> CxrBrightness:
    """``--model test_cohort_labels:make_model``."""
    return CxrBrightness().eval()


def _mean(cohort, case_id: str) -> float:
    """The model's input by hand: the case's standard CXR tensor, averaged."""
    batch = standard_batch([cohort.load(case_id)], ["cxr"], cxr_size=CXR_SIZE)
    return float(batch.tensors["cxr"].mean())


LABELS = (
    "case_id,bright,exposure\n"
    "a-bright,yes,bright\n"  # RG1 (mean ~0.75): TP, correct
    "b-dim,yes,mid\n"  # RG1 in a lower window (mean ~0.69): FN, correct
    "c-bright-no,no,mid\n"  # RG1: FP, wrong (predicted bright)
    "d-dim-no,no,\n"  # RG1 in a lower window: TN; unlabelled for exposure
)
DIM_WINDOW_CENTRE = 13000  # RG1's own window is centred at 15000 (width 30000, MONOCHROME1)
CXR = {"a-bright": None, "b-dim": DIM_WINDOW_CENTRE, "c-bright-no": None}
CXR["d-dim-no"] = DIM_WINDOW_CENTRE


def _copy(name: str, to: Path) -> None:
    path = get_testdata_file(name)
    assert path is not None, f"{name} not installed (pip install pydicom-data)"
    shutil.copy(path, to)


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    """Four case folders of real DICOM files (pydicom-data's chest CR, two in a lower window;
    one case with the 12-lead ECG)."""
    root = tmp_path_factory.mktemp("labelled")
    for case_id, window_centre in CXR.items():
        (root / case_id).mkdir()
        chest = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))  # a real chest CR
        if window_centre is not None:
            chest.WindowCenter = window_centre
        chest.save_as(root / case_id / "cxr.dcm")
    _copy("waveform_ecg.dcm", root / "a-bright" / "ecg.dcm")
    (root / "labels.csv").write_text(LABELS, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model() -> CxrBrightness:
    m = make_model()
    check_model(m)
    return m


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    engine, sessions = open_database(url)
    yield url, sessions
    engine.dispose()


def test_labelled_cohort_reads_labels_and_cases(cohort_dir):
    cohort = open_cohort(cohort_dir)
    assert isinstance(cohort, LabelledCohort) and cohort.tasks == ["bright", "exposure"]
    assert cohort.case_ids == ["a-bright", "b-dim", "c-bright-no", "d-dim-no"]
    assert cohort.label("b-dim", "bright") == "yes" and cohort.label("d-dim-no", "exposure") is None
    assert cohort.labelled("exposure") == ["a-bright", "b-dim", "c-bright-no"]
    assert cohort.folder("a-bright") == cohort_dir / "a-bright"
    case = cohort.load("a-bright")
    assert case.case_id == "a-bright" and case.modalities() == ["ecg", "cxr"]
    assert case.truth is None
    assert (
        _mean(cohort, "a-bright") > BRIGHT_FROM + 0.02 > BRIGHT_FROM - 0.02 > _mean(cohort, "b-dim")
    )


def test_predict_case_is_contract_generic(cohort_dir, model):
    cohort = open_cohort(cohort_dir)
    case = cohort.load("a-bright")
    out = predict_case(model, case)
    assert out["modalities_used"] == ["cxr"] and out["modalities_ignored"] == ["ecg"]
    assert "modality_attention" not in out and out["caveat"] == model.caveat
    m = _mean(cohort, "a-bright")
    p_yes = 1 / (1 + math.exp(-SHARPNESS * (m - BRIGHT_FROM)))
    assert out["tasks"]["bright"]["probability"] == pytest.approx(p_yes, abs=1e-5)
    exposure = out["tasks"]["exposure"]
    assert exposure["answer"] == "bright"  # no "yes" answer: the top answer's probability
    assert exposure["probability"] == pytest.approx(max(exposure["probabilities"].values()))
    both = predict_cases(model, [case, cohort.load("b-dim")], batch_size=8)
    assert [b["case_id"] for b in both] == ["a-bright", "b-dim"]
    for task, result in out["tasks"].items():
        assert both[0]["tasks"][task]["answer"] == result["answer"]
        assert both[0]["tasks"][task]["probabilities"] == pytest.approx(result["probabilities"])
    assert both[1]["tasks"]["bright"]["answer"] == "no"


def test_review_of_a_yes_no_task_stores_every_case_with_its_outcome(cohort_dir, model, db):
    url, sessions = db
    summary = review_cohort(cohort_dir, model, url, "bright run", 0.5, progress=False)
    assert summary.complete and not summary.failed and summary.task == "bright"
    assert (summary.total, summary.added, summary.unlabelled) == (4, 4, [])
    run = store.get_run(sessions, summary.run_id)
    assert run.task == "bright" and run.labels_file == str((cohort_dir / "labels.csv").resolve())
    rows = {r["case_id"]: r for r in store.run_rows(sessions, summary.run_id)}
    assert sorted(rows) == sorted(CXR)
    cohort = open_cohort(cohort_dir)
    expected = {"a-bright": "TP", "b-dim": "FN", "c-bright-no": "FP", "d-dim-no": "TN"}
    for case_id, row in rows.items():
        label = cohort.label(case_id, "bright")
        called = _mean(cohort, case_id) >= BRIGHT_FROM
        assert row["truth_answer"] == label and row["truth"] == int(label == "yes")
        assert row["predicted_answer"] == ("yes" if called else "no")
        assert row["outcome"] == expected[case_id]
        p = 1 / (1 + math.exp(-SHARPNESS * (_mean(cohort, case_id) - BRIGHT_FROM)))
        assert row["probability"] == pytest.approx(p, abs=1e-5)
    assert rows["a-bright"]["modalities"] == ["ecg", "cxr"]
    table = views.run_table(sessions, summary.run_id)
    assert views.summary_markdown(table, table).endswith("TP 1, FP 1, TN 1, FN 1")
    confusion, _ = views.cohort_figures(table, "bright")
    assert [list(r) for r in confusion.data[0].z] == [[1, 1], [1, 1]]
    again = review_cohort(cohort_dir, model, url, "bright run", 0.5, progress=False)
    assert (again.added, again.stored_before) == (0, 4)


def test_cli_review_of_a_task_with_several_answers(cohort_dir, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["review", "--cohort", str(cohort_dir), "--model", "test_cohort_labels:make_model"]
    args.append("--no-explain")
    assert main([*args, "--task", "exposure", "--db", url, "--run-name", "exp"]) == 0
    out, err = capsys.readouterr()
    assert "task exposure" in out and "3 new, 0 already stored, 3/3 cases stored" in out
    assert "1 case(s) unlabelled for exposure, left out: d-dim-no" in err
    engine, sessions = open_database(url)
    try:
        rows = {r["case_id"]: r for r in store.run_rows(sessions, 1)}
        assert store.get_run(sessions, 1).task == "exposure"
    finally:
        engine.dispose()
    assert sorted(rows) == ["a-bright", "b-dim", "c-bright-no"]
    cohort = open_cohort(cohort_dir)
    answers = list(EXPOSURE)
    for case_id, row in rows.items():
        m = _mean(cohort, case_id)
        predicted = min(EXPOSURE, key=lambda a: abs(m - EXPOSURE[a]))
        label = cohort.label(case_id, "exposure")
        assert (row["truth_answer"], row["predicted_answer"]) == (label, predicted)
        assert (row["truth"], row["prediction"]) == (answers.index(label), answers.index(predicted))
        assert row["outcome"] == ("correct" if predicted == label else "wrong")
    assert [rows[c]["outcome"] for c in sorted(rows)] == ["correct", "correct", "wrong"]
    table = views.cohort_table(rows.values())
    assert list(table["prediction"]) == ["bright", "mid", "bright"]
    assert (table["confidence"] == table["probability"]).all()
    assert views.summary_markdown(table, table).endswith("correct 2, wrong 1")
    confusion, calibration = views.cohort_figures(table, "exposure", answers)
    assert [list(r) for r in confusion.data[0].z] == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert "fraction correct" in calibration.layout.yaxis.title.text


def test_a_case_the_model_cannot_read_is_reported_and_the_rest_run(cohort_dir, model, db, tmp_path):
    url, sessions = db
    root = tmp_path / "cohort"
    shutil.copytree(cohort_dir, root)
    (root / "e-ecg-only").mkdir()
    _copy("waveform_ecg.dcm", root / "e-ecg-only" / "ecg.dcm")
    (root / "f-empty").mkdir()
    with (root / "labels.csv").open("a", encoding="utf-8") as f:
        f.write("e-ecg-only,no,dark\nf-empty,yes,\n")
    summary = review_cohort(root, model, url, "partial", progress=False)
    assert sorted(summary.failed) == ["e-ecg-only", "f-empty"]
    assert "none of the modalities the model reads (cxr)" in summary.failed["e-ecg-only"]
    assert "no readable modality" in summary.failed["f-empty"]
    assert summary.added == 4 and summary.total == 6 and not summary.complete
    assert len(store.run_rows(sessions, summary.run_id)) == 4


def _labels(tmp_path: Path, text: str, folders=("a", "b")) -> Path:
    for name in folders:
        (tmp_path / name).mkdir(exist_ok=True)
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_answer_not_among_the_models_is_refused_naming_the_file(tmp_path, model, capsys):
    path = _labels(tmp_path, "case_id,bright\na,yes\nb,maybe\n")
    cohort = open_cohort(tmp_path)
    with pytest.raises(CohortError, match=r"labels\.csv: case 'b', task 'bright': 'maybe'") as e:
        cohort.check_labels(model.tasks, "bright")
    assert str(path) in str(e.value) and "(no, yes)" in str(e.value)
    with pytest.raises(CohortError, match="no task 'heart_failure'"):
        cohort.check_labels(model.tasks, "heart_failure")
    with pytest.raises(CohortError, match="no labels for task 'exposure'"):
        cohort.check_labels(model.tasks, "exposure")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    args = ["review", "--cohort", str(tmp_path), "--model", "test_cohort_labels:make_model"]
    args.append("--no-explain")
    assert main([*args, "--db", db]) == 2
    assert "'maybe' is not one of the model's answers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,bright\na,yes\n", r"no 'case_id' column \(columns: id, bright\)"),
        (
            "case_id,bright\na,yes\nzzz,no\n",
            r"no case folder under .* for case_id 'zzz' \(1 of 2\)",
        ),
        ("case_id,bright\na,yes\nb,no\na,no\n", "duplicate case_id 'a' \\(lines 2 and 4\\)"),
        ("case_id,bright\n,yes\n", "line 2 has no case_id"),
        ("case_id,bright\n../a,yes\n", "'../a' is not a case folder name"),
        ("case_id\na\n", "no task columns"),
        ("", "empty"),
    ],
)
def test_bad_labels_files_are_refused_naming_the_file(tmp_path, text, message):
    path = _labels(tmp_path, text)
    with pytest.raises(CohortError, match=message) as e:
        open_cohort(tmp_path)
    assert str(path) in str(e.value)


def test_labels_elsewhere_and_blank_cells(tmp_path):
    (tmp_path / "cases" / "a").mkdir(parents=True)
    (tmp_path / "cases" / "b").mkdir()
    labels = tmp_path / "my labels.csv"
    labels.write_text("\ufeffcase_id , size\n a , large \nb,\n\n", encoding="utf-8")
    cohort = open_cohort(tmp_path / "cases", labels)
    assert isinstance(cohort, LabelledCohort) and cohort.source == labels
    assert cohort.case_ids == ["a", "b"] and cohort.tasks == ["size"]
    assert cohort.label("a", "size") == "large" and cohort.label("b", "size") is None
    cohort.check_labels({"size": ["small", "large"]}, "size")
    with pytest.raises(FileNotFoundError, match="no such labels file"):
        open_cohort(tmp_path / "cases", tmp_path / "nowhere.csv")
    with pytest.raises(FileNotFoundError, match="no labels.csv and no case folders"):
        open_cohort(tmp_path / "cases" / "a")


def test_synthetic_cohort_labels_follow_truth_json(tmp_path):
    from fuselens.model_zoo.synth.cohort import write_case
    from fuselens.model_zoo.tasks import TASK_MODALITY

    metas = [write_case(tmp_path, 3, i) for i in (0, 5)]  # P00005: labs and CXR only
    cohort = open_cohort(tmp_path)
    assert isinstance(cohort, SyntheticCohort)
    assert cohort.case_ids == ["P00000", "P00005"] and "heart_failure" in cohort.tasks
    assert set(TASK_MODALITY) <= set(cohort.tasks)
    for meta in metas:
        truth = json.loads((tmp_path / meta["case_id"] / "truth.json").read_text())
        case_id = truth["case_id"]
        hf = cohort.label(case_id, "heart_failure")
        assert hf == ("yes" if truth["labels"]["heart_failure"] else "no")
        for task, modality in TASK_MODALITY.items():
            if modality is None:
                continue
            if modality not in truth["modalities"]:
                assert cohort.label(case_id, task) is None
            else:
                found = task in truth["findings"].get(modality, [])
                assert cohort.label(case_id, task) == ("yes" if found else "no")
    assert cohort.label("P00005", "reduced_ef") is None  # no echo
    assert "P00005" not in cohort.labelled("reduced_ef")
    cohort.check_labels({"heart_failure": ["no", "yes"]}, "heart_failure")
    with pytest.raises(CohortError, match=r"truth\.json files.*'yes' is not one of"):
        cohort.check_labels({"heart_failure": ["absent", "present"]}, "heart_failure")
    case = cohort.load("P00005")
    assert case.truth is not None and case.modalities() == ["labs", "cxr"]
    assert case.truth.labels["heart_failure"] == metas[1]["labels"]["heart_failure"]
    (tmp_path / "labels.csv").write_text("case_id,heart_failure\nP00000,no\n")
    labelled = open_cohort(tmp_path)  # a labels.csv overrides truth.json
    assert isinstance(labelled, LabelledCohort) and labelled.case_ids == ["P00000"]
    assert labelled.label("P00000", "heart_failure") == "no"
    assert labelled.load("P00000").truth is not None  # still a synthetic case folder


def test_study_cases_from_a_labelled_cohort(cohort_dir, model, tmp_path):
    from fuselens.app.study.cases import ModelPredictor, load_study_cases

    predictor = ModelPredictor(model, "bright")
    specs = load_study_cases(cohort_dir, "bright", predictor, tmp_path / "media", progress=False)
    cohort = open_cohort(cohort_dir)
    assert [s.case_key for s in specs] == cohort.case_ids
    assert [s.truth for s in specs] == [1, 1, 0, 0]
    assert [s.prediction for s in specs] == [1, 0, 1, 0]
    assert set(specs[0].explanation["modality_shapley"]) == {"cxr"}
    assert {p.name for p in (tmp_path / "media" / "a-bright").iterdir()} == {"ecg.json", "cxr.png"}
    with pytest.raises(ValueError, match="yes/no question; task 'exposure'"):
        ModelPredictor(model, "exposure")
    with pytest.raises(CohortError, match="'bright' is not one of"):
        load_study_cases(cohort_dir, "exposure", None, tmp_path / "m2", progress=False)


def test_rows_stored_before_answers_were_kept_still_read(tmp_path):
    """Migration 0004 on a database holding a 0003-era result: the row reads as yes/no."""
    from sqlalchemy import text

    from fuselens.app.storage.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO review_runs (name, cohort_dir, model_name, task, threshold, status,"
                " created_at) VALUES ('old', '/c', 'demo', 'heart_failure', 0.5, 'complete',"
                " '2026-01-01 00:00:00')"
            )
        )
        c.execute(
            text(
                "INSERT INTO case_results (run_id, case_key, folder, truth, probability,"
                " prediction, outcome, modalities, created_at) VALUES (1, 'P1', '/c/P1', 1,"
                " 0.3, 0, 'FN', '[\"cxr\"]', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    engine, sessions = open_database(url)
    try:
        (row,) = store.run_rows(sessions, 1)
        assert (row["truth_answer"], row["predicted_answer"], row["outcome"]) == ("yes", "no", "FN")
        assert store.get_run(sessions, 1).labels_file is None
        assert "P(heart_failure = yes) 0.300" in views.case_markdown(row)
    finally:
        engine.dispose()


def test_cli_study_create_from_a_labelled_cohort(cohort_dir, tmp_path, monkeypatch, capsys, caplog):
    from fuselens.app.study.service import get_study

    config = tmp_path / "study.yaml"
    config.write_text(
        "name: Bright or not\narms: [no_ai, ai_explained]\n"
        "readers:\n  - {username: alice, password: alice-pass}\n"
        "owner: {username: boss, password: boss-pass-1}\n"
    )
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["study", "create", "--cases", str(cohort_dir), "--config", str(config), "--db", url]
    model = ["--model", "test_cohort_labels:make_model", "--quiet"]
    assert main([*args, *model]) == 2  # the config's task, heart_failure, is not labelled
    assert "no labels for task 'heart_failure'" in capsys.readouterr().err
    assert main([*args, *model, "--task", "bright"]) == 0
    study_id = int(capsys.readouterr().out.strip())
    # the owner is told what was not read cleanly (RG1's spacing is 0\0), even with --quiet
    assert "a-bright: input warnings: cxr.dcm: PixelSpacing" in caplog.text
    engine, sessions = open_database(url)
    try:
        with sessions() as s:
            study = get_study(s, study_id)
            truth = {c.case_key: (c.truth, c.prediction) for c in study.cases}
            assert study.task == "bright" and study.model_name == "test_cohort_labels:make_model"
            assert study.config["caveat"] == CxrBrightness.caveat  # shown to its readers
            media = Path(study.config["media_dir"]) / "a-bright"
    finally:
        engine.dispose()
    assert truth == {"a-bright": (1, 1), "b-dim": (1, 0), "c-bright-no": (0, 1), "d-dim-no": (0, 0)}
    # the explanation arm's panels, drawn for a labelled cohort and a MODULE:FACTORY model;
    # this toy model's bundles hold no Grad-CAM++ maps, so it gets no heat-map files
    drawn = {p.name for p in media.iterdir()}
    assert {"cxr.png", "ecg.json", "contributions.json"} <= drawn, drawn
    assert not [n for n in drawn if "_heat_" in n]
    assert main([*args, "--task", "exposure", "--quiet"]) == 2
    assert "'bright' is not one of" in capsys.readouterr().err
