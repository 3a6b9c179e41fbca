"""ORH multi-reader multi-case analysis: the Van Dyke (1993) worked example and checks of the
covariance estimators against direct leave-one-out and DeLong computations.

Reference values are those printed by Chakraborty's RJafroc book (repository
dpc10ster/RJafrocBook, docs/10C-OR-AnalysisApplications.md, "Hand calculation" and
"RJafroc: dataset02" sections), which runs RJafroc's StSignificanceTesting(dataset02,
FOM = "Wilcoxon", method = "OR") with jackknife covariances. Each value is checked to the
number of digits printed there.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fuselens.app.study.orh import fom_covariance, orh_analysis, orh_from_table

VAN_DYKE = Path(__file__).parent / "data" / "VanDyke.lrc"


def read_lrc(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ratings (modality x reader x case), truth per case and reader names of an LRC file."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    ratings: dict[tuple[int, str, int], float] = {}
    truth: dict[int, int] = {}
    readers: list[str] = []
    i = 1
    while lines[i] != "#":
        readers.append(lines[i])
        i += 1
        if len(readers) == 1:
            i += 2  # modality names, then one "L" per modality
        for label in (0, 1):
            while lines[i] != "*":
                first, second, case = lines[i].split("\t")
                ratings[(0, readers[-1], int(case))] = float(first)
                ratings[(1, readers[-1], int(case))] = float(second)
                truth[int(case)] = label
                i += 1
            i += 1
    cases = sorted(truth)
    cube = np.array(
        [[[ratings[(m, r, c)] for c in cases] for r in readers] for m in (0, 1)], dtype=float
    )
    return cube, np.array([truth[c] for c in cases]), readers


@pytest.fixture(scope="module")
def van_dyke() -> tuple[np.ndarray, np.ndarray, list[str]]:
    return read_lrc(VAN_DYKE)


def assert_reported(value: float, reported: str) -> None:
    """``value`` rounds to ``reported`` (the tolerance is half a unit in its last digit)."""
    exponent = Decimal(reported).as_tuple().exponent
    assert isinstance(exponent, int)
    tolerance = 0.5 * 10.0**exponent
    assert abs(value - float(reported)) <= tolerance * (1 + 1e-9), (value, reported)


def test_van_dyke_file_is_the_published_design(van_dyke):
    ratings, truth, readers = van_dyke
    assert ratings.shape == (2, 5, 114)
    assert (truth == 0).sum() == 69 and (truth == 1).sum() == 45
    assert readers == ["0", "1", "2", "3", "4"]
    assert set(np.unique(ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_van_dyke_reader_aucs_and_variance_components(van_dyke):
    ratings, truth, _ = van_dyke
    res = orh_analysis(ratings, truth, modalities=["0", "1"])
    published_foms = [
        ["0.9196", "0.8588", "0.9039", "0.9731", "0.8298"],
        ["0.9478", "0.9053", "0.9217", "0.9994", "0.9300"],
    ]
    for i, j in itertools.product(range(2), range(5)):
        assert_reported(res.foms[i, j], published_foms[i][j])
    assert_reported(res.foms[0, 1], "0.8587762")  # quoted in the book's text
    assert_reported(res.modality_foms["0"], "0.8970")
    assert_reported(res.modality_foms["1"], "0.9408")
    vc = res.components
    assert_reported(vc.ms_t, "0.0047962")
    assert_reported(vc.ms_r, "0.003836")
    assert_reported(vc.ms_tr, "0.00055103062")
    assert_reported(vc.var, "0.00080228827")
    assert_reported(vc.cov1, "0.00034661371")
    assert_reported(vc.cov2, "0.00034407483")
    assert_reported(vc.cov3, "0.00023902837")


def test_van_dyke_random_readers_random_cases(van_dyke):
    ratings, truth, _ = van_dyke
    rrrc = orh_analysis(ratings, truth).random_readers_random_cases
    assert_reported(rrrc.statistic, "4.456")
    assert rrrc.ndf == 1
    assert_reported(rrrc.ddf, "15.26")
    assert_reported(rrrc.p_value, "0.05167")
    (diff,) = rrrc.differences
    assert_reported(diff.estimate, "-0.043800322")
    assert_reported(diff.std_err, "0.0207")
    assert_reported(diff.statistic, "-2.11")
    assert_reported(diff.ci_low, "-0.0879595")
    assert_reported(diff.ci_high, "0.0003589")
    assert diff.p_value == pytest.approx(rrrc.p_value)  # t^2 = F for two modalities
    assert diff.statistic**2 == pytest.approx(rrrc.statistic)


def test_van_dyke_modality_intervals(van_dyke):
    ratings, truth, _ = van_dyke
    first, second = orh_analysis(ratings, truth).modality_estimates
    for est, reported in (
        (first, ("0.8970", "0.03317", "12.74", "0.8252", "0.9689")),
        (second, ("0.9408", "0.02157", "12.71", "0.8941", "0.9875")),
    ):
        for value, text in zip(
            (est.estimate, est.std_err, est.df, est.ci_low, est.ci_high), reported, strict=True
        ):
            assert_reported(value, text)


def test_van_dyke_fixed_readers_and_fixed_cases(van_dyke):
    ratings, truth, _ = van_dyke
    res = orh_analysis(ratings, truth)
    frrc = res.fixed_readers_random_cases
    assert_reported(frrc.statistic, "5.47595324")
    assert_reported(frrc.p_value, "0.01928")
    (d,) = frrc.differences
    assert_reported(d.std_err, "0.018717483")  # the book's z = -0.043800322 / 0.018717483
    assert_reported(d.statistic, "-2.34")
    assert_reported(d.ci_low, "-0.08049")
    assert_reported(d.ci_high, "-0.007115")
    rrfc = res.random_readers_fixed_cases
    assert_reported(rrfc.statistic, "8.704")
    assert rrfc.ddf == 4
    assert_reported(rrfc.p_value, "0.04196")
    (d,) = rrfc.differences
    assert_reported(d.std_err, "0.01485")
    assert_reported(d.ci_low, "-0.08502")
    assert_reported(d.ci_high, "-0.00258")


def test_long_table_gives_the_same_analysis(van_dyke):
    ratings, truth, readers = van_dyke
    rows = [
        {
            "modality": ["cine", "spin-echo"][m],
            "reader": f"r{readers[r]}",
            "case": f"case{k:03d}",
            "score": ratings[m, r, k],
            "truth": truth[k],
        }
        for m, r, k in itertools.product(range(2), range(5), range(114))
    ]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=3)
    res = orh_from_table(table)
    assert res.modalities == ["cine", "spin-echo"]
    assert res.n_normal == 69 and res.n_disease == 45
    direct = orh_analysis(ratings, truth)
    np.testing.assert_allclose(res.foms, direct.foms)
    assert res.random_readers_random_cases.statistic == pytest.approx(
        direct.random_readers_random_cases.statistic
    )
    summary = res.summary()
    assert list(summary["comparison"]) == ["cine - spin-echo"] * 3
    assert summary.loc[0, "p_value"] == pytest.approx(0.05167, abs=5e-6)

    with pytest.raises(ValueError, match="not fully crossed"):
        orh_from_table(table.iloc[1:])
    with pytest.raises(ValueError, match="more than one score"):
        orh_from_table(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(ValueError, match="lacks column"):
        orh_from_table(table.drop(columns="score"))


def _small_study(seed: int, n_mod: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.array([0] * 9 + [1] * 7)
    signal = rng.normal(size=(n_mod, 3, truth.size)) + 1.2 * truth
    return np.round(signal * 2) / 2, truth  # rounding makes ties


def test_jackknife_covariance_matches_explicit_leave_one_out():
    ratings, truth = _small_study(0)
    theta, cov = fom_covariance(ratings, truth, "auc", "jackknife")
    n_mod, n_rdr, n_case = ratings.shape
    loo = np.array(
        [
            [roc_auc_score(np.delete(truth, k), np.delete(ratings[m, r], k)) for k in range(n_case)]
            for m in range(n_mod)
            for r in range(n_rdr)
        ]
    )
    dev = loo - loo.mean(axis=1, keepdims=True)
    expected = (n_case - 1) / n_case * dev @ dev.T
    np.testing.assert_allclose(cov, expected, atol=1e-14)
    expected_theta = [[roc_auc_score(truth, ratings[m, r]) for r in range(3)] for m in range(2)]
    np.testing.assert_allclose(theta, expected_theta)


def test_delong_covariance_matches_its_definition():
    ratings, truth = _small_study(1)
    _, cov = fom_covariance(ratings, truth, "auc", "delong")
    flat = ratings.reshape(-1, truth.size)
    pos, neg = flat[:, truth == 1], flat[:, truth == 0]

    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    pairs = list(zip(pos, neg, strict=True))
    v10 = np.array([[np.mean([psi(x, y) for y in n]) for x in p] for p, n in pairs])
    v01 = np.array([[np.mean([psi(x, y) for x in p]) for y in n] for p, n in pairs])
    m, n = pos.shape[1], neg.shape[1]
    expected = np.empty((flat.shape[0], flat.shape[0]))
    for a, b in itertools.product(range(flat.shape[0]), repeat=2):
        s10 = np.sum((v10[a] - v10[a].mean()) * (v10[b] - v10[b].mean())) / (m - 1)
        s01 = np.sum((v01[a] - v01[a].mean()) * (v01[b] - v01[b].mean())) / (n - 1)
        expected[a, b] = s10 / m + s01 / n
    np.testing.assert_allclose(cov, expected, atol=1e-14)


def test_accuracy_fom_and_three_modalities():
    ratings, truth = _small_study(2, n_mod=3)
    answers = (ratings > 0.6).astype(float)
    res = orh_analysis(answers, truth, fom="accuracy", modalities=["a", "b", "c"])
    expected = (answers == truth).mean(axis=2)
    np.testing.assert_allclose(res.foms, expected)
    rrrc = res.random_readers_random_cases
    assert rrrc.ndf == 2
    assert [(d.modality_a, d.modality_b) for d in rrrc.differences] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    means = expected.mean(axis=1)
    assert rrrc.differences[1].estimate == pytest.approx(means[0] - means[2])
    for d in rrrc.differences:
        assert d.ci_low < d.estimate < d.ci_high
        assert 0 <= d.p_value <= 1
    # Leave-one-out accuracies by hand give the same jackknife covariance.
    _, cov = fom_covariance(answers, truth, "accuracy")
    correct = (answers == truth).reshape(-1, truth.size).astype(float)
    loo = np.array([[np.delete(c, k).mean() for k in range(truth.size)] for c in correct])
    dev = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(cov, (truth.size - 1) / truth.size * dev @ dev.T, atol=1e-14)


def test_bad_inputs_are_refused():
    ratings, truth = _small_study(3)
    with pytest.raises(ValueError, match="at least two"):
        orh_analysis(ratings[:1], truth)
    with pytest.raises(ValueError, match="one 0/1 value per case"):
        orh_analysis(ratings, truth[:-1])
    with pytest.raises(ValueError, match="unknown figure of merit"):
        orh_analysis(ratings, truth, fom="sensitivity")
    with pytest.raises(ValueError, match="binary"):
        orh_analysis(ratings, truth, fom="accuracy")
    with pytest.raises(ValueError, match="DeLong"):
        orh_analysis((ratings > 0).astype(float), truth, fom="accuracy", cov="delong")
    with pytest.raises(ValueError, match="finite"):
        bad = ratings.copy()
        bad[0, 0, 0] = np.nan
        orh_analysis(bad, truth)
    with pytest.raises(ValueError, match="no reader or case variability"):
        orh_analysis(np.broadcast_to(truth, (2, 3, truth.size)), truth)
