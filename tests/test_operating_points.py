"""Operating points chosen on validation cases and read wherever an answer is given
(:mod:`fuselens.model_zoo.operating_points`)."""

from __future__ import annotations

import numpy as np

from fuselens.explain.report_facts import check_report
from fuselens.model_zoo.operating_points import (
    answer_index,
    card_points,
    choose_operating_points,
    choose_threshold,
    thresholds,
)
from fuselens.model_zoo.predict import task_result
from fuselens.model_zoo.report import join_words, split_words
from tests.test_report_facts import ANSWERS, LABS, MEASURED


def test_an_under_confident_head_gets_a_lower_threshold_that_raises_its_f1():
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.2).astype(int)
    # positives score 0.2-0.45: all missed at 0.5; negatives 0-0.3
    p = np.where(truth == 1, rng.uniform(0.2, 0.45, 400), rng.uniform(0.0, 0.3, 400))
    row = choose_threshold(truth, p)
    assert row["f1_at_0.5"] == 0.0
    assert 0.2 <= row["yes_at"] <= 0.31
    assert row["f1"] > 0.7
    assert row["positives"] == int(truth.sum())


def test_a_calibrated_head_keeps_a_threshold_near_half_and_too_few_positives_keep_half():
    truth = np.array([0] * 50 + [1] * 50)
    p = np.array([0.1] * 50 + [0.9] * 50)
    assert choose_threshold(truth, p)["yes_at"] == 0.5  # every threshold in (0.1, 0.9] ties
    few = choose_threshold(np.array([0] * 97 + [1] * 3), np.linspace(0, 1, 100))
    assert few["yes_at"] == 0.5 and "kept at 0.5" in few["why"]


def test_points_per_task_from_answers_and_back_from_a_card():
    points = choose_operating_points(
        {"a": ["yes", "no", "yes", "no"] * 5}, {"a": [0.4, 0.1, 0.35, 0.2] * 5}
    )
    assert points["a"]["yes_at"] <= 0.35 and points["a"]["f1"] == 1.0
    assert card_points({"operating_points": points}) == {"a": points["a"]["yes_at"]}
    assert card_points({}) == {}


def test_the_answer_follows_the_operating_point():
    assert answer_index(["no", "yes"], [0.62, 0.38], 0.31) == 1
    assert answer_index(["no", "yes"], [0.62, 0.38], 0.5) == 0
    assert answer_index(["a", "b", "c"], [0.2, 0.5, 0.3], 0.1) == 1  # not yes/no: argmax
    r = task_result(["no", "yes"], [0.62, 0.38], 0.31)
    assert r["answer"] == "yes" and r["yes_at"] == 0.31 and r["probability"] == 0.38


class _Model:
    tasks = {"heart_failure": ["no", "yes"], "cardiomegaly": ["no", "yes"], "view": ["a", "b"]}
    operating_points = {"cardiomegaly": 0.3}


def test_thresholds_of_a_model_default_to_half():
    assert thresholds(_Model()) == {"heart_failure": 0.5, "cardiomegaly": 0.3}


def test_the_report_states_a_finding_its_head_answers_yes_to_at_its_operating_point():
    words = split_words("Chest X-ray: no acute abnormality.")
    answers = {**ANSWERS, "cardiomegaly": 0.38}
    at_half = check_report(words, LABS, answers, MEASURED, ["cxr"])
    assert "cardiomegaly" not in join_words(at_half.words)
    at_point = check_report(words, LABS, answers, MEASURED, ["cxr"], {"cardiomegaly": 0.31})
    assert "cardiomegaly" in join_words(at_point.words)
    added = [c for c in at_point.checks if c["kind"] == "added"]
    assert "operating point 0.31" in added[0]["why"]
    # and a clause stating it present is no longer withheld as a contradiction
    said = split_words("Chest X-ray: cardiomegaly.")
    kept = check_report(said, LABS, answers, MEASURED, ["cxr"], {"cardiomegaly": 0.31})
    assert not [c for c in kept.checks if c["kind"] == "withheld"]
    dropped = check_report(said, LABS, answers, MEASURED, ["cxr"])
    assert [c["finding"] for c in dropped.checks if c["kind"] == "withheld"] == ["cardiomegaly"]
