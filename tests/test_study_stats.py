"""Reader-study statistics against numbers worked by hand and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from fuselens.app.study.metrics import (
    answers_table,
    auc_with_ci,
    cohen_kappas,
    compare_arms,
    disease_score,
    fleiss_kappa,
    fleiss_kappas,
    reader_arm_performance,
    study_summary,
    time_per_case,
    wilson_interval,
    wrong_ai_followed,
)

Z95 = 1.959963984540054
TRUTH = [1, 1, 1, 0, 0, 0]


def small_study() -> list[dict]:
    """Two readers, six cases (three diseased), an AI arm and a no-AI arm."""
    ai_answer = [1, 1, 0, 0, 0, 1]  # wrong on the third (missed) and sixth (false alarm)
    readers = {
        "R1": {
            "diagnosis": [1, 1, 0, 0, 0, 1],
            "confidence": [90, 60, 70, 80, 50, 40],
            "seconds": [10, 20, 30, 40, 50, 100],
        },
        "R2": {
            "diagnosis": [1, 0, 0, 0, 0, 0],
            "confidence": [80, 20, 30, 90, 90, 60],
            "seconds": [5, 5, 5, 5, 5, 5],
        },
    }
    rows = []
    for reader, answers in readers.items():
        for k, truth in enumerate(TRUTH):
            rows.append(
                {
                    "reader": reader,
                    "case": f"c{k}",
                    "arm": "ai",
                    "truth": truth,
                    "diagnosis": answers["diagnosis"][k],
                    "confidence": answers["confidence"][k],
                    "seconds": answers["seconds"][k],
                    "ai_answer": ai_answer[k],
                }
            )
            rows.append(
                {
                    "reader": reader,
                    "case": f"c{k}",
                    "arm": "no_ai",
                    "truth": truth,
                    "diagnosis": truth,
                    "confidence": 100,
                    "seconds": 60,
                    "ai_answer": None,
                }
            )
    return rows


def row(table: pd.DataFrame, **keys) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for key, value in keys.items():
        mask &= table[key] == value
    (index,) = np.flatnonzero(mask)
    return table.iloc[index]


def test_wilson_interval_by_hand_and_against_scipy():
    # 8 of 10: centre (0.8 + z^2/20) / (1 + z^2/10), half-width z/(1 + z^2/10) sqrt(...)
    z2 = Z95**2
    centre = (0.8 + z2 / 20) / (1 + z2 / 10)
    half = Z95 / (1 + z2 / 10) * math.sqrt(0.8 * 0.2 / 10 + z2 / 400)
    assert wilson_interval(8, 10) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    for k, n in [(0, 7), (3, 7), (7, 7), (45, 114)]:
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_disease_score_orients_confidence():
    scores = disease_score([1, 1, 0, 0], [100, 0, 0, 100])
    np.testing.assert_allclose(scores, [100, 50, 50, 0])


def test_accuracy_sensitivity_specificity_and_auc_by_hand():
    perf = reader_arm_performance(small_study())
    r1 = row(perf, reader="R1", arm="ai")
    # R1: TP 2, FN 1, TN 2, FP 1.
    assert (r1.accuracy, r1.sensitivity, r1.specificity) == pytest.approx((4 / 6, 2 / 3, 2 / 3))
    assert (r1.sensitivity_low, r1.sensitivity_high) == pytest.approx(wilson_interval(2, 3))
    # Disease scores: diseased 95, 80, 15; normal 10, 25, 70 -> 7 of 9 pairs ordered.
    assert r1.auc == pytest.approx(7 / 9)
    # DeLong: V10 = (1, 1, 1/3), V01 = (1, 2/3, 2/3); var 12/81 and 3/81, each over 3 cases.
    se = math.sqrt((12 / 81) / 3 + (3 / 81) / 3)
    assert r1.auc_low == pytest.approx(7 / 9 - Z95 * se)
    assert r1.auc_high == 1.0  # 7/9 + 0.487 clipped
    r2 = row(perf, reader="R2", arm="ai")
    assert (r2.accuracy, r2.sensitivity, r2.specificity) == pytest.approx((4 / 6, 1 / 3, 1.0))
    assert r2.specificity_high == 1.0
    # R2 scores: diseased 90, 40, 35; normal 5, 5, 20 -> every pair ordered.
    assert r2.auc == pytest.approx(1.0)
    perfect = row(perf, reader="R1", arm="no_ai")
    assert (perfect.accuracy, perfect.auc, perfect.n_cases) == (1.0, 1.0, 6)


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 40)
    score = np.round(rng.normal(size=40) + truth, 1)
    auc, low, high = auc_with_ci(truth, score)
    assert auc == pytest.approx(roc_auc_score(truth, score))
    assert low < auc < high
    assert all(math.isnan(v) for v in auc_with_ci([1, 0, 0], [3, 2, 1]))


def test_kappas_by_hand():
    cohen = cohen_kappas(small_study())
    ai = row(cohen, arm="ai", reader_a="R1", reader_b="R2")
    # Agreement 4/6; R1 says yes 3/6, R2 1/6: chance 0.5*1/6 + 0.5*5/6 = 1/2.
    assert ai.kappa == pytest.approx((4 / 6 - 1 / 2) / (1 - 1 / 2))
    assert ai.n_cases == 6
    assert row(cohen, arm="no_ai").kappa == pytest.approx(1.0)

    fleiss = fleiss_kappas(small_study())
    # Counts (no, yes) per case: (0,2) (1,1) (2,0) (2,0) (2,0) (1,1): mean agreement 4/6;
    # yes share 4/12, chance 1/9 + 4/9 = 5/9; kappa (2/3 - 5/9) / (4/9) = 1/4.
    assert row(fleiss, arm="ai").kappa == pytest.approx(0.25)
    assert row(fleiss, arm="ai").n_readers == 2
    assert row(fleiss, arm="no_ai").kappa == pytest.approx(1.0)


def test_fleiss_kappa_wikipedia_example():
    # en.wikipedia.org/wiki/Fleiss'_kappa worked example: 10 subjects, 14 raters, 5 categories;
    # P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210. (0.430 is the 1971 paper's own example.)
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert round(fleiss_kappa(counts), 3) == 0.210
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [2, 1]])
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))


def test_time_per_case_median_and_iqr():
    times = time_per_case(small_study())
    r1 = row(times, reader="R1", arm="ai")
    # 10 20 30 40 50 100: median 35; quartiles at positions 1.25 and 3.75 -> 22.5 and 47.5.
    assert (r1.median_seconds, r1.q1_seconds, r1.q3_seconds) == (35.0, 22.5, 47.5)
    assert row(times, reader="R2", arm="ai").median_seconds == 5.0


def test_following_a_wrong_ai_answer():
    table = wrong_ai_followed(small_study())
    assert set(table["arm"]) == {"ai"}  # the no-AI arm showed no answer
    # Wrong AI on c2 (said 0, diseased) and c5 (said 1, normal).
    r1 = row(table, reader="R1", arm="ai")
    assert (r1.n_wrong_ai, r1.n_followed, r1.rate) == (2, 2, 1.0)  # R1: 0 on c2, 1 on c5
    r2 = row(table, reader="R2", arm="ai")
    assert (r2.n_wrong_ai, r2.n_followed, r2.rate) == (2, 1, 0.5)  # R2: 0 on c2, 0 on c5
    pooled = row(table, reader="all", arm="ai")
    assert (pooled.n_wrong_ai, pooled.rate) == (4, 0.75)
    assert (pooled.rate_low, pooled.rate_high) == pytest.approx(wilson_interval(3, 4))


def simulated_study(seed: int = 7) -> pd.DataFrame:
    """Four readers, 20 cases, two arms, fully crossed; readers agree with the AI more often."""
    rng = np.random.default_rng(seed)
    truth = np.array([1] * 8 + [0] * 12)
    ai = np.where(rng.random(20) < 0.8, truth, 1 - truth)
    rows = []
    for reader in ("A", "B", "C", "D"):
        skill = rng.uniform(0.65, 0.85)
        for arm in ("no_ai", "ai"):
            for k in range(20):
                correct = rng.random() < skill
                diagnosis = truth[k] if correct else 1 - truth[k]
                if arm == "ai" and rng.random() < 0.4:
                    diagnosis = ai[k]
                rows.append(
                    {
                        "reader": reader,
                        "case": f"case{k:02d}",
                        "arm": arm,
                        "truth": int(truth[k]),
                        "diagnosis": int(diagnosis),
                        "confidence": float(rng.integers(0, 101)),
                        "seconds": float(rng.uniform(10, 90)),
                        "ai_answer": int(ai[k]) if arm == "ai" else None,
                    }
                )
    return pd.DataFrame(rows)


def test_simulated_study_matches_plain_loops():
    study = simulated_study()
    summary = study_summary(study)
    records = study.to_dict("records")
    for perf in summary["performance"].itertuples():
        mine = [r for r in records if r["reader"] == perf.reader and r["arm"] == perf.arm]
        hits = sum(r["truth"] == r["diagnosis"] for r in mine)
        assert perf.accuracy == pytest.approx(hits / len(mine))
    for kappa in summary["cohen_kappa"].itertuples():
        a = {
            r["case"]: r["diagnosis"]
            for r in records
            if (r["reader"], r["arm"]) == (kappa.reader_a, kappa.arm)
        }
        b = {
            r["case"]: r["diagnosis"]
            for r in records
            if (r["reader"], r["arm"]) == (kappa.reader_b, kappa.arm)
        }
        n = len(a)
        observed = sum(a[c] == b[c] for c in a) / n
        pa, pb = sum(a.values()) / n, sum(b.values()) / n
        chance = pa * pb + (1 - pa) * (1 - pb)
        assert kappa.kappa == pytest.approx((observed - chance) / (1 - chance))
    assert len(summary["cohen_kappa"]) == 2 * 6  # two arms, C(4, 2) pairs
    assert list(summary["fleiss_kappa"]["n_readers"]) == [4, 4]


def test_compare_arms_runs_orh_on_the_study():
    study = simulated_study()
    perf = reader_arm_performance(study)
    by_auc = compare_arms(study, fom="auc")
    assert by_auc.modalities == ["ai", "no_ai"] and by_auc.readers == ["A", "B", "C", "D"]
    for i, arm in enumerate(by_auc.modalities):
        for j, reader in enumerate(by_auc.readers):
            assert by_auc.foms[i, j] == pytest.approx(row(perf, reader=reader, arm=arm).auc)
    by_accuracy = compare_arms(study, fom="accuracy")
    diff = by_accuracy.random_readers_random_cases.differences[0]
    acc = perf.groupby("arm")["accuracy"].mean()
    assert diff.estimate == pytest.approx(acc["ai"] - acc["no_ai"])
    assert diff.ci_low < diff.estimate < diff.ci_high
    with pytest.raises(ValueError, match="not fully crossed"):
        compare_arms(study.iloc[1:])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="seconds"), "lack column"),
        (lambda t: t.assign(truth=2), "truth must be 0 or 1"),
        (lambda t: t.assign(confidence=150.0), "confidence must be a number"),
        (lambda t: t.assign(seconds=-1.0), "seconds must be a number"),
        (lambda t: t.assign(ai_answer=3), "ai_answer"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "more than one answer"),
        (lambda t: t.iloc[:0], "no answers"),
    ],
)
def test_bad_tables_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        answers_table(change(pd.DataFrame(small_study())))


def test_conflicting_truth_is_refused():
    table = pd.DataFrame(small_study())
    table.loc[0, "truth"] = 1 - table.loc[0, "truth"]
    with pytest.raises(ValueError, match="conflicting truth"):
        answers_table(table)
