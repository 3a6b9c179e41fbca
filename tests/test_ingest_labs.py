"""Labs readers: CSV (the synthetic cohort's format), JSON and plain text, with unit checks."""

from __future__ import annotations

import json

import pytest

from fuselens.app.ingest import (
    IngestError,
    read_file,
    read_labs_csv,
    read_labs_json,
    read_labs_text,
)

CSV = """name,value,unit,low,high
NT-proBNP,2400,pg/mL,,
na,131,mmol/L,,
Creatinine,1.9,mg/dL,0.7,1.3
History,"Hypertension, type 2 diabetes; ankle swelling",,,
medications,Furosemide 40 mg daily,,,
"""


def test_csv_with_history_and_medications(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text(CSV)
    reading = read_labs_csv(path)
    labs = reading.part
    names = [i.name for i in labs.items]
    assert names == ["NT-proBNP", "Sodium", "Creatinine"]  # alias "na" -> canonical name
    bnp, sodium, creat = labs.items
    assert (bnp.low, bnp.high, bnp.flag) == (0, 125, "H")  # default range from the table
    assert (sodium.low, sodium.high, sodium.flag) == (135, 145, "L")
    assert (creat.low, creat.high, creat.flag) == (0.7, 1.3, "H")  # the file's own range wins
    assert labs.history == "Hypertension, type 2 diabetes; ankle swelling"
    assert labs.medications == "Furosemide 40 mg daily"
    assert reading.warnings == []
    assert read_file(path)[0] == "labs"


def test_json(tmp_path):
    path = tmp_path / "labs.json"
    data = {
        "items": [
            {"name": "NT-proBNP", "value": 90, "unit": "ng/L"},
            {"name": "Ferritin", "value": 30, "unit": "ng/mL", "low": 20, "high": 250},
        ],
        "history": "COPD",
        "medications": "",
    }
    path.write_text(json.dumps(data))
    reading = read_labs_json(path)
    assert [i.name for i in reading.part.items] == ["NT-proBNP", "Ferritin"]
    assert reading.part.items[0].unit == "ng/L" and reading.part.items[0].flag == "N"
    assert reading.part.items[1].flag == "N"
    assert any("unknown lab 'Ferritin'" in w for w in reading.warnings)
    assert reading.part.history == "COPD"
    assert read_file(path)[0] == "labs"


def test_text_both_forms(tmp_path):
    path = tmp_path / "labs.txt"
    path.write_text(
        "NT-proBNP: 1234 pg/mL\n"
        "Sodium of the patient is 138 mmol/L.\n"
        "eGFR of the patient is 42 mL/min/1.73m2.\n"
        "\n"
        "History: Chronic kidney disease.\n"
        "Medications: Lisinopril\n"
    )
    labs = read_labs_text(path).part
    assert [(i.name, i.value, i.unit) for i in labs.items] == [
        ("NT-proBNP", 1234.0, "pg/mL"),
        ("Sodium", 138.0, "mmol/L"),
        ("eGFR", 42.0, "mL/min/1.73m2"),
    ]
    assert labs.items[2].flag == "L"
    assert labs.history == "Chronic kidney disease." and labs.medications == "Lisinopril"
    assert read_file(path)[0] == "labs"


def test_text_round_trips_the_model_text(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text(CSV)
    labs = read_labs_csv(path).part
    text_path = tmp_path / "labs.txt"
    text_path.write_text(labs.textualise())
    again = read_labs_text(text_path).part
    assert again.textualise() == labs.textualise()


def test_model_text_names_out_of_range_flags_only(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text(CSV)
    lines = read_labs_csv(path).part.lines()
    assert lines[:3] == [
        "NT-proBNP of the patient is 2400 pg/mL (high).",
        "Sodium of the patient is 131 mmol/L (low).",
        "Creatinine of the patient is 1.9 mg/dL (high).",
    ]
    path.write_text("name,value,unit\nSodium,140,mmol/L\n")
    assert read_labs_csv(path).part.lines() == ["Sodium of the patient is 140 mmol/L."]


def test_text_flag_is_read_again_from_the_range_not_the_text(tmp_path):
    path = tmp_path / "labs.txt"
    path.write_text("Sodium of the patient is 140 mmol/L (low).\nPotassium: 5.9 mmol/L (normal)\n")
    items = read_labs_text(path).part.items
    assert [(i.name, i.value, i.unit, i.flag) for i in items] == [
        ("Sodium", 140.0, "mmol/L", "N"),
        ("Potassium", 5.9, "mmol/L", "H"),
    ]


def test_unit_not_accepted_names_item_and_unit(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("name,value,unit\nSodium,140,mmol/L\nCreatinine,150,umol/L\n")
    with pytest.raises(IngestError, match=r"Creatinine: 'umol/L' is not an accepted unit") as info:
        read_labs_csv(path)
    assert info.value.modality == "labs" and "mg/dL" in info.value.problem


def test_missing_unit_for_known_lab(tmp_path):
    path = tmp_path / "labs.json"
    path.write_text(json.dumps({"items": [{"name": "Potassium", "value": 4.1}]}))
    with pytest.raises(IngestError, match="Potassium: no unit is not an accepted unit"):
        read_labs_json(path)


def test_empty_csv(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("")
    with pytest.raises(IngestError, match="empty file"):
        read_labs_csv(path)
    modality, part, report = read_file(path)
    assert modality == "labs" and part is None and "empty file" in report.error


def test_header_only_csv(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("name,value,unit\n")
    with pytest.raises(IngestError, match="no lab rows"):
        read_labs_csv(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("name,value,unit\nSodium,140,mmol/L,135,145,extra\n", "line 2: 6 fields"),
        ("name,value\nSodium,140\n", "lacks column"),
        ("name,value,unit\nSodium,high,mmol/L\n", "value 'high' is not a number"),
        ("name,value,unit\nSodium,140,mmol/L\nna,141,mmol/L\n", "duplicate lab items: sodium"),
    ],
)
def test_malformed_csv(tmp_path, content, problem):
    path = tmp_path / "labs.csv"
    path.write_text(content)
    with pytest.raises(IngestError, match=problem):
        read_labs_csv(path)


def test_malformed_json_and_text(tmp_path):
    bad_json = tmp_path / "labs.json"
    bad_json.write_text('{"items": [{"name": "Sodium"')
    with pytest.raises(IngestError, match="not valid JSON"):
        read_labs_json(bad_json)
    bad_text = tmp_path / "labs.txt"
    bad_text.write_text("Sodium: 140 mmol/L\nthe patient looks unwell\n")
    with pytest.raises(IngestError, match="line 2 not understood"):
        read_labs_text(bad_text)
