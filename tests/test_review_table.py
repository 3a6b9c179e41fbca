"""The review table: filters, sorting, confusion matrix, calibration, Brier score, CSV."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from fuselens.app.review.cohort import outcome
from fuselens.app.review.figures import calibration_figure, confusion_figure
from fuselens.app.review.metrics import calibration, confusion_counts
from fuselens.app.review.table import Filters, cohort_table, export_csv, filter_table, for_display


def _rows(n: int = 40, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    mods = [("labs", "ecg", "echo", "cxr"), ("labs", "cxr"), ("ecg", "echo"), ("labs", "echo")]
    rows = []
    for i in range(n):
        truth = int(rng.random() < 0.5)
        p = float(np.clip(rng.normal(0.65 if truth else 0.35, 0.2), 0.0, 1.0))
        pred = int(p >= 0.5)
        rows.append(
            {
                "case_id": f"P{i:05d}",
                "truth": truth,
                "probability": p,
                "prediction": pred,
                "outcome": outcome(truth, pred),
                "modalities": list(mods[i % len(mods)]),
                "tags": ["label noise"] if i % 5 == 0 else (["modality missing"] if i % 7 else []),
                "notes": ["looks mislabelled", "second look: agreed"] if i == 10 else [],
            }
        )
    return rows


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return cohort_table(_rows())


def test_outcome_of_every_truth_and_prediction():
    assert [outcome(t, p) for t, p in ((1, 1), (0, 1), (0, 0), (1, 0))] == ["TP", "FP", "TN", "FN"]
    with pytest.raises(ValueError):
        outcome(2, 1)


def test_table_columns_and_confidence(table):
    rows = _rows()
    assert len(table) == len(rows)
    for r, (_, t) in zip(rows, table.iterrows(), strict=True):
        assert t["truth"] == ("yes" if r["truth"] else "no")
        expected = r["probability"] if r["prediction"] else 1 - r["probability"]
        assert t["confidence"] == pytest.approx(expected)
        assert t["confidence"] >= 0.5
    assert table.loc[10, "notes"] == "looks mislabelled | second look: agreed"


def test_filter_by_outcome_confidence_modalities_and_tags(table):
    rows = _rows()
    fn = filter_table(table, Filters(outcomes=["FN"]))
    assert set(fn["case_id"]) == {r["case_id"] for r in rows if r["outcome"] == "FN"}
    assert len(fn) > 0

    sure = filter_table(table, Filters(outcomes=["TP", "FP"], confidence=(0.7, 0.9)))
    assert set(sure["case_id"]) == {
        r["case_id"] for r in rows if r["prediction"] == 1 and 0.7 <= r["probability"] <= 0.9
    }

    with_echo = filter_table(table, Filters(present=["echo", "labs"]))
    assert set(with_echo["case_id"]) == {
        r["case_id"] for r in rows if {"echo", "labs"} <= set(r["modalities"])
    }
    no_cxr = filter_table(table, Filters(missing=["cxr"]))
    assert set(no_cxr["case_id"]) == {r["case_id"] for r in rows if "cxr" not in r["modalities"]}

    tagged = filter_table(table, Filters(tags=["label noise"]))
    assert set(tagged["case_id"]) == {r["case_id"] for r in rows if "label noise" in r["tags"]}
    assert filter_table(table, Filters(tags=["spurious lab cue"])).empty


def test_sorting_by_probability_both_ways(table):
    up = filter_table(table, Filters(sort_by="probability", descending=False))
    down = filter_table(table, Filters(sort_by="probability", descending=True))
    assert up["probability"].is_monotonic_increasing
    assert down["probability"].is_monotonic_decreasing
    assert list(filter_table(table, Filters(sort_by="case_id", descending=False))["case_id"]) == [
        f"P{i:05d}" for i in range(40)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outcomes": ["XX"]},
        {"present": ["mri"]},
        {"confidence": (0.9, 0.6)},
        {"sort_by": "truth; drop table"},
    ],
)
def test_bad_filters_are_refused_with_a_message(kwargs):
    with pytest.raises(ValueError):
        Filters(**kwargs)


def test_confusion_matrix_matches_sklearn(table):
    rows = _rows()
    y = [r["truth"] for r in rows]
    pred = [r["prediction"] for r in rows]
    expected = confusion_matrix(y, pred, labels=[0, 1])
    assert (confusion_counts(table["outcome"]) == expected).all()
    fig = confusion_figure(confusion_counts(table["outcome"]))
    assert np.array_equal(np.asarray(fig.data[0].z), expected)
    assert f"n = {len(rows)}" in fig.layout.title.text


def test_calibration_and_brier_match_a_direct_computation(table):
    rows = _rows()
    y = np.array([r["truth"] for r in rows])
    p = table["probability"].to_numpy()
    cal = calibration((table["truth"] == "yes").astype(int), table["probability"], n_bins=5)
    bins = np.minimum((p * 5 - 1e-12).astype(int).clip(0), 4)  # (k/5, (k+1)/5], 0 in bin 0
    used = [k for k in range(5) if (bins == k).any()]
    assert np.allclose(cal.mean_predicted, [p[bins == k].mean() for k in used])
    assert np.allclose(cal.fraction_positive, [y[bins == k].mean() for k in used])
    assert list(cal.counts) == [int((bins == k).sum()) for k in used]
    assert cal.brier == pytest.approx(float(np.mean((p - y) ** 2)))
    fig = calibration_figure(cal)
    assert "Brier score" in fig.layout.title.text and len(fig.data) == 2


def test_csv_export_has_every_row_tag_and_note(table, tmp_path):
    path = export_csv(
        filter_table(table, Filters(sort_by="case_id", descending=False)), tmp_path / "t.csv"
    )
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40
    assert list(rows[0]) == [
        "case_id",
        "truth",
        "prediction",
        "outcome",
        "probability",
        "confidence",
        "modalities",
        "input_warnings",
        "tags",
        "notes",
    ]
    assert rows[0]["tags"] == "label noise" and rows[1]["tags"] == "modality missing"
    assert rows[10]["notes"] == "looks mislabelled | second look: agreed"
    assert rows[2]["modalities"] == "ecg, echo"
    assert float(rows[3]["probability"]) == _rows()[3]["probability"]  # full precision


def test_input_warnings_are_counted_on_screen_and_exported_whole(tmp_path):
    refused = "us.dcm: echo: BodyPartExamined 'ABDOMEN' is not the chest (not loaded)"
    spacing = "cr.dcm: PixelSpacing [0.000, 0.000] not a usable pixel spacing:\nignored"
    rows = [dict(_rows()[0], input_warnings=[refused, spacing, "ecg.dcm: is this one patient?"])]
    rows.append(dict(_rows()[1], case_id="clean", input_warnings=[]))
    table = cohort_table(rows)
    shown = for_display(table)
    assert list(shown["input_warnings"]) == ["1 file not loaded · 2 warnings", ""]
    only = filter_table(table, Filters(input_warnings=True))
    assert list(only["case_id"]) == [rows[0]["case_id"]]
    with export_csv(table, tmp_path / "w.csv").open(newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert exported[0]["input_warnings"].splitlines() == [
        refused,
        spacing.replace("\n", " "),
        "ecg.dcm: is this one patient?",
    ]
