"""Mark agreement and over-reliance differences against counts and intervals worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from fuselens.app.study.marks import (
    heat_region,
    mark_agreement,
    mark_hits,
    newcombe_difference,
    over_reliance_differences,
)

Z95 = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval by scipy, independent of fuselens.app.study.metrics."""
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def regions() -> dict[str, dict]:
    """c1: a 10x10 cxr; c2: a 3-frame 8x8 echo view (no true region); c3: a 2-lead ECG."""
    cxr_model, cxr_truth = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    cxr_model[2, 3] = True  # covers x in [3, 4], y in [2, 3]
    cxr_truth[7, 7] = True
    echo = np.zeros((3, 8, 8), bool)
    echo[1, 4, 4] = True
    echo[2, 0, 0] = True
    ecg_model, ecg_truth = np.zeros((2, 100), bool), np.zeros((2, 100), bool)
    ecg_model[1, 50:53] = True  # V5, 0.50-0.52 s
    ecg_truth[0, 10:13] = True  # II, 0.10-0.12 s
    leads = ["II", "V5"]
    return {
        "c1": {"model": {"cxr": cxr_model}, "truth": {"cxr": cxr_truth}},
        "c2": {"model": {"echo": {"A4C": echo}}, "truth": {}},
        "c3": {
            "model": {"ecg": {"mask": ecg_model, "leads": leads, "rate": 100}},
            "truth": {"ecg": {"mask": ecg_truth, "leads": leads, "rate": 100}},
        },
    }


def cxr(x: float, y: float) -> dict:
    return {"modality": "cxr", "x": x, "y": y}


def echo(view: str, frame: int, x: float, y: float) -> dict:
    return {"modality": "echo", "view": view, "frame": frame, "x": x, "y": y}


def ecg(lead: str, t: float) -> dict:
    return {"modality": "ecg", "lead": lead, "t": t}


# cxr radius = 0.03 * hypot(10, 10) = 0.4243 px; echo radius = 0.03 * hypot(8, 8) = 0.3394 px;
# ECG tolerance 0.04 s = 4 samples at 100 Hz. (model, truth) outcome after each mark.
MARKS = {
    ("R1", "c1", "heatmap"): [cxr(4.4, 2.5), cxr(7.5, 7.5)],  # (hit, miss), (miss, hit)
    ("R1", "c2", "heatmap"): [echo("A4C", 1, 4.5, 4.5), echo("PLAX", 0, 1, 1)],  # (hit, -), (-, -)
    ("R1", "c3", "heatmap"): [ecg("V5", 0.555)],  # 3.5 samples from 52: (hit, miss)
    ("R2", "c1", "heatmap"): [cxr(4.45, 2.5)],  # 0.45 px > 0.4243: (miss, miss)
    ("R2", "c2", "heatmap"): None,
    ("R2", "c3", "heatmap"): [ecg("II", 0.51), ecg("II", 0.15), ecg("aVR", 0.1)],
    # II 0.51: wrong lead for the model, far from truth: (miss, miss); II 0.15: (miss, hit)
    ("R1", "c1", "answer"): [],
    ("R1", "c2", "answer"): [echo("A4C", 7, 0.5, 0.5), echo("A4C", 0, 4.5, 4.5)],
    # frame 7 clips to 2: (hit, -); frame 0 is empty: (miss, -)
    ("R1", "c3", "answer"): [ecg("V5", 0.565)],  # 4.5 samples from 52: (miss, miss)
    ("R2", "c1", "answer"): [cxr(3.5, 2.5)],  # inside the pixel: (hit, miss)
    ("R2", "c2", "answer"): [],
    ("R2", "c3", "answer"): float("nan"),
}

# arm, modality, n_marks, (model n, no region, hits), (truth n, no region, hits)
EXPECTED = [
    ("heatmap", "cxr", 3, (3, 0, 1), (3, 0, 1)),
    ("heatmap", "echo", 2, (1, 1, 1), (0, 2, 0)),
    ("heatmap", "ecg", 4, (3, 1, 1), (3, 1, 1)),
    ("heatmap", "all", 9, (7, 2, 3), (6, 3, 2)),
    ("answer", "cxr", 1, (1, 0, 1), (1, 0, 0)),
    ("answer", "echo", 2, (2, 0, 1), (0, 2, 0)),
    ("answer", "ecg", 1, (1, 0, 0), (1, 0, 0)),
    ("answer", "all", 4, (4, 0, 2), (2, 2, 0)),
]


def mark_rows() -> list[dict]:
    return [{"reader": r, "case": c, "arm": a, "marks": m} for (r, c, a), m in MARKS.items()]


def test_heat_region_thresholds_at_a_fraction_of_the_maximum():
    heat = np.array([[0.0, 1.0], [2.0, 4.0]])
    assert heat_region(heat).tolist() == [[False, False], [True, True]]
    assert heat_region(heat, 0.25).tolist() == [[False, True], [True, True]]
    for flat in (np.zeros((2, 2)), -heat, np.array([[1.0, np.nan]])):
        assert not heat_region(flat).any()
    with pytest.raises(ValueError, match="fraction"):
        heat_region(heat, 0)


def test_cxr_mark_just_inside_and_just_outside_the_radius():
    model = regions()["c1"]["model"]
    assert mark_hits(cxr(4.4, 2.5), model) is True  # 0.40 px from the pixel's edge
    assert mark_hits(cxr(4.45, 2.5), model) is False  # 0.45 px
    assert mark_hits(cxr(4.29, 3.29), model) is True  # hypot(0.29, 0.29) = 0.410
    assert mark_hits(cxr(4.31, 3.31), model) is False  # hypot(0.31, 0.31) = 0.438
    assert mark_hits(cxr(4.45, 2.5), model, radius_fraction=0.04) is True  # radius 0.566


def test_echo_mark_counts_on_its_own_frame_and_clips_the_frame():
    model = regions()["c2"]["model"]
    assert mark_hits(echo("A4C", 1, 4.5, 4.5), model) is True
    assert mark_hits(echo("A4C", 0, 4.5, 4.5), model) is False
    assert mark_hits(echo("A4C", 7, 0.5, 0.5), model) is True
    assert mark_hits(echo("A4C", -1, 0.5, 0.5), model) is False  # clips to frame 0, not 2
    assert mark_hits(echo("PLAX", 1, 4.5, 4.5), model) is None


def test_ecg_mark_tolerance_wrong_lead_and_unknown_lead():
    model = regions()["c3"]["model"]
    assert mark_hits(ecg("V5", 0.46), model) is True  # exactly 4 samples before 50
    assert mark_hits(ecg("V5", 0.455), model) is False
    assert mark_hits(ecg("V5", 0.565), model) is False
    assert mark_hits(ecg("V5", 0.565), model, ecg_tolerance_s=0.05) is True
    assert mark_hits(ecg("II", 0.51), model) is False  # right time, wrong lead
    assert mark_hits(ecg("aVR", 0.51), model) is None
    assert mark_hits(cxr(4.4, 2.5), model) is None  # no cxr region for this case


def test_mark_agreement_counts_and_shares_match_the_hand_tally():
    table = mark_agreement(mark_rows(), regions())
    assert list(table[["arm", "modality"]].itertuples(index=False, name=None)) == [
        (arm, modality) for arm, modality, *_ in EXPECTED
    ]
    for (_, row), (arm, modality, n_marks, model, truth) in zip(
        table.iterrows(), EXPECTED, strict=True
    ):
        assert row["n_marks"] == n_marks, (arm, modality)
        for target, (n, no_region, hits) in (("model", model), ("truth", truth)):
            got = (row[f"{target}_n"], row[f"{target}_no_region"], row[f"{target}_hits"])
            assert got == (n, no_region, hits), (arm, modality, target)
            if n:
                assert row[f"{target}_share"] == pytest.approx(hits / n)
                low, high = wilson(hits, n)
                assert row[f"{target}_low"] == pytest.approx(low)
                assert row[f"{target}_high"] == pytest.approx(high)
            else:
                assert math.isnan(row[f"{target}_share"]) and math.isnan(row[f"{target}_low"])


def test_mark_share_wilson_interval_by_the_formula():
    row = mark_agreement(pd.DataFrame(mark_rows()), regions()).iloc[0]  # heatmap cxr, 1 of 3
    p, n = 1 / 3, 3
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2))
    assert (centre - half, centre + half) == pytest.approx((0.061492, 0.792340), abs=1e-6)
    assert row["model_low"] == pytest.approx(centre - half)
    assert row["model_high"] == pytest.approx(centre + half)


@pytest.mark.parametrize(
    ("mark", "problem"),
    [
        ({"modality": "cxr", "x": 1.0}, "cxr mark lacks 'y'"),
        ({"modality": "mri", "x": 1.0, "y": 1.0}, "unknown modality 'mri'"),
        (echo("A4C", 1.5, 1.0, 1.0), "'frame' must be a whole number"),
        (cxr(float("nan"), 1.0), "'x' must be a finite number"),
        (ecg("V5", "soon"), "'t' must be a finite number"),
        ({"modality": "ecg", "lead": "", "t": 0.1}, "'lead' must be a non-empty string"),
        ("here", "a mark must be a mapping"),
    ],
)
def test_malformed_mark_names_reader_case_and_problem(mark, problem):
    rows = mark_rows() + [{"reader": "R3", "case": "c3", "arm": "answer", "marks": [mark]}]
    with pytest.raises(ValueError) as err:
        mark_agreement(rows, regions())
    assert str(err.value).startswith("reader 'R3', case 'c3', mark 0: ")
    assert problem in str(err.value)


def test_marks_not_a_list_and_regions_not_bool_are_refused():
    rows = [{"reader": "R1", "case": "c1", "arm": "a", "marks": cxr(1, 1)}]
    with pytest.raises(ValueError, match="reader 'R1', case 'c1': marks must be a list"):
        mark_agreement(rows, regions())
    heat = {"c1": {"model": {"cxr": np.ones((10, 10))}}}
    rows[0]["marks"] = [cxr(1, 1)]
    with pytest.raises(ValueError, match="case 'c1', model regions: cxr region must be a 2-D bool"):
        mark_agreement(rows, heat)


def over_reliance_study() -> list[dict]:
    """Two readers x three cases x four arms; the AI is wrong on c1 and c2, right on c3."""
    truth = {"c1": 1, "c2": 0, "c3": 1}
    ai = {"c1": 0, "c2": 1, "c3": 1}
    # diagnoses of (R1, R2) on (c1, c2, c3); followed = diagnosis == AI on c1 and c2
    diagnoses = {
        "heatmap": {"R1": (1, 1, 1), "R2": (1, 0, 0)},  # followed 1 of 4
        "unaided": {"R1": (0, 1, 0), "R2": (0, 1, 0)},  # no AI shown: left out
        "answer": {"R1": (0, 1, 1), "R2": (1, 1, 0)},  # followed 3 of 4
        "text": {"R1": (0, 1, 1), "R2": (0, 1, 1)},  # followed 4 of 4
    }
    rows = []
    for arm, by_reader in diagnoses.items():
        for reader, diagnosis in by_reader.items():
            for case, d in zip(truth, diagnosis, strict=True):
                rows.append(
                    {
                        "reader": reader,
                        "case": case,
                        "arm": arm,
                        "truth": truth[case],
                        "diagnosis": d,
                        "confidence": 50,
                        "seconds": 10,
                        "ai_answer": None if arm == "unaided" else ai[case],
                    }
                )
    return rows


def test_newcombe_matches_newcombe_1998_table_ii_method_10():
    for counts, low, high in (
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((5, 56, 0, 29), -0.0381, 0.1926),
    ):
        diff, got_low, got_high = newcombe_difference(*counts)
        assert diff == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
        assert (got_low, got_high) == pytest.approx((low, high), abs=5e-5)
    assert all(math.isnan(v) for v in newcombe_difference(1, 4, 0, 0))


def test_over_reliance_differences_pairs_ai_arms_in_table_order():
    table = over_reliance_differences(over_reliance_study())
    pairs = list(zip(table["arm_a"], table["arm_b"], strict=True))
    assert pairs == [("heatmap", "answer"), ("heatmap", "text"), ("answer", "text")]
    followed = {"heatmap": 1, "answer": 3, "text": 4}
    for _, row in table.iterrows():
        k_a, k_b = followed[row["arm_a"]], followed[row["arm_b"]]
        assert (row["n_wrong_ai_a"], row["n_followed_a"]) == (4, k_a)
        assert (row["n_wrong_ai_b"], row["n_followed_b"]) == (4, k_b)
        p_a, p_b = k_a / 4, k_b / 4
        (l_a, u_a), (l_b, u_b) = wilson(k_a, 4), wilson(k_b, 4)
        assert row["difference"] == pytest.approx(p_a - p_b)
        assert row["difference_low"] == pytest.approx(p_a - p_b - math.hypot(p_a - l_a, u_b - p_b))
        assert row["difference_high"] == pytest.approx(p_a - p_b + math.hypot(u_a - p_a, p_b - l_b))
    first = table.iloc[0]  # 1/4 - 3/4, Wilson (0.04559, 0.69936) and (0.30064, 0.95441)
    assert (first["difference_low"], first["difference_high"]) == pytest.approx(
        (-0.78908, 0.13549), abs=1e-5
    )


def test_over_reliance_differences_needs_two_ai_arms():
    rows = [r for r in over_reliance_study() if r["arm"] in ("heatmap", "unaided")]
    table = over_reliance_differences(rows)
    assert table.empty and "difference_low" in table.columns
