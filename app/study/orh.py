"""Obuchowski–Rockette–Hillis (ORH) comparison of modalities in a fully crossed reader study.

Every reader reads every case in every modality (arm). The figure of merit (FOM) per
modality x reader is the empirical (Wilcoxon) AUC of a rating, or the accuracy of a binary
answer. Its case-sampling covariance comes from the jackknife over cases (the default of
RJafroc and OR-DBM MRMC) or, for the AUC, from DeLong's structural components. The tests
follow Obuchowski & Rockette (1995) with Hillis's (2007) denominator degrees of freedom:

- random readers, random cases: F = MS(T) / (MS(TR) + J max(Cov2 - Cov3, 0));
- fixed readers, random cases: chi-square on I - 1 df,
  (I - 1) MS(T) / (Var - Cov1 + (J - 1) max(Cov2 - Cov3, 0));
- random readers, fixed cases: F = MS(T) / MS(TR) on (I - 1, (I - 1)(J - 1)) df.

I = modalities, J = readers, K = cases; differences are modality ``a`` minus modality ``b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

Fom = Literal["auc", "accuracy"]
CovMethod = Literal["jackknife", "delong"]


@dataclass(frozen=True)
class Difference:
    """One modality-pair difference of reader-averaged FOMs with its test and interval."""

    modality_a: str
    modality_b: str
    estimate: float
    std_err: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ModalityEstimate:
    """A modality's reader-averaged FOM with its random-reader, random-case interval."""

    modality: str
    estimate: float
    std_err: float
    df: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Test:
    """The global test of equal modality FOMs under one generalisation."""

    statistic: float
    ndf: float
    ddf: float
    p_value: float
    differences: list[Difference]


@dataclass(frozen=True)
class VarianceComponents:
    """Obuchowski–Rockette error variance and covariances, and the treatment-reader ANOVA."""

    var: float
    cov1: float
    cov2: float
    cov3: float
    ms_t: float
    ms_r: float
    ms_tr: float


@dataclass(frozen=True)
class ORHResult:
    """FOMs, variance components and the three ORH generalisations of one analysis."""

    fom: str
    cov_method: str
    alpha: float
    modalities: list[str]
    readers: list[str]
    n_normal: int
    n_disease: int
    foms: np.ndarray  # modality x reader
    modality_foms: dict[str, float]
    modality_estimates: list[ModalityEstimate]
    components: VarianceComponents
    random_readers_random_cases: Test
    fixed_readers_random_cases: Test
    random_readers_fixed_cases: Test

    def summary(self) -> pd.DataFrame:
        """One row per modality pair and generalisation: estimate, CI, statistic, df and p."""
        rows = []
        for name, test in (
            ("random readers, random cases", self.random_readers_random_cases),
            ("fixed readers, random cases", self.fixed_readers_random_cases),
            ("random readers, fixed cases", self.random_readers_fixed_cases),
        ):
            for d in test.differences:
                rows.append(
                    {
                        "analysis": name,
                        "comparison": f"{d.modality_a} - {d.modality_b}",
                        "difference": d.estimate,
                        "ci_low": d.ci_low,
                        "ci_high": d.ci_high,
                        "std_err": d.std_err,
                        "df": d.df,
                        "p_value": d.p_value,
                        "global_statistic": test.statistic,
                        "global_ddf": test.ddf,
                        "global_p": test.p_value,
                    }
                )
        return pd.DataFrame(rows)


def _check_inputs(ratings: np.ndarray, truth: np.ndarray, fom: Fom) -> None:
    if fom not in ("auc", "accuracy"):
        raise ValueError(f"unknown figure of merit {fom!r}; use 'auc' or 'accuracy'")
    if ratings.ndim != 3:
        raise ValueError(f"ratings must be modality x reader x case, got shape {ratings.shape}")
    n_mod, n_rdr, n_case = ratings.shape
    if n_mod < 2:
        raise ValueError("ORH compares modalities: at least two are needed")
    if n_rdr < 2:
        raise ValueError("ORH with random readers needs at least two readers")
    if truth.shape != (n_case,):
        raise ValueError(f"truth must have one 0/1 value per case ({n_case}), got {truth.shape}")
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("truth must be 0 (normal) or 1 (disease)")
    if not np.isfinite(ratings).all():
        raise ValueError("ratings must be finite numbers for every modality, reader and case")
    if fom == "auc" and (truth.sum() < 2 or (1 - truth).sum() < 2):
        raise ValueError("the AUC needs at least two normal and two diseased cases")
    if fom == "accuracy" and not np.isin(ratings, (0, 1)).all():
        raise ValueError("accuracy needs binary (0/1) answers as ratings")


def auc_components(
    ratings: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilcoxon AUC over the last axis of ``ratings`` and its structural components.

    Returns (auc, v10, v01): v10 [..., diseased] is the fraction of normals each diseased
    case outranks (ties count 1/2), v01 [..., normal] the fraction of diseased cases that
    outrank each normal case.
    """
    pos = ratings[..., truth == 1]
    neg = ratings[..., truth == 0]
    diff = pos[..., :, None] - neg[..., None, :]
    psi = (diff > 0) + 0.5 * (diff == 0)
    v10 = psi.mean(axis=-1)
    v01 = psi.mean(axis=-2)
    return v10.mean(axis=-1), v10, v01


def _foms_and_jackknife(ratings: np.ndarray, truth: np.ndarray, fom: Fom) -> tuple:
    """FOM per modality x reader and the leave-one-case-out FOMs (modality x reader x case)."""
    n_case = truth.size
    if fom == "accuracy":
        correct = (ratings == truth).astype(float)
        theta = correct.mean(axis=-1)
        loo = (n_case * theta[..., None] - correct) / (n_case - 1)
        return theta, loo
    theta, v10, v01 = auc_components(ratings, truth)
    m, n = v10.shape[-1], v01.shape[-1]
    loo = np.empty(ratings.shape)
    # Removing a diseased case drops its row of comparisons; a normal case, its column.
    loo[..., truth == 1] = (m * theta[..., None] - v10) / (m - 1)
    loo[..., truth == 0] = (n * theta[..., None] - v01) / (n - 1)
    return theta, loo


def fom_covariance(
    ratings: np.ndarray, truth: np.ndarray, fom: Fom = "auc", cov: CovMethod = "jackknife"
) -> tuple[np.ndarray, np.ndarray]:
    """FOMs (modality x reader) and their case-sampling covariance (flattened, IJ x IJ)."""
    if cov == "jackknife":
        theta, loo = _foms_and_jackknife(ratings, truth, fom)
        n_case = truth.size
        flat = loo.reshape(-1, n_case)
        centred = flat - flat.mean(axis=1, keepdims=True)
        return theta, centred @ centred.T * (n_case - 1) / n_case
    if cov == "delong":
        if fom != "auc":
            raise ValueError("DeLong covariance applies to the AUC only; use the jackknife")
        theta, v10, v01 = auc_components(ratings, truth)
        s10 = np.atleast_2d(np.cov(v10.reshape(-1, v10.shape[-1])))
        s01 = np.atleast_2d(np.cov(v01.reshape(-1, v01.shape[-1])))
        return theta, s10 / v10.shape[-1] + s01 / v01.shape[-1]
    raise ValueError(f"unknown covariance method {cov!r}; use 'jackknife' or 'delong'")


def variance_components(theta: np.ndarray, covariance: np.ndarray) -> VarianceComponents:
    """Average Var, Cov1 (same reader), Cov2 (same modality), Cov3 (neither) and mean squares."""
    n_mod, n_rdr = theta.shape
    mod = np.repeat(np.arange(n_mod), n_rdr)
    rdr = np.tile(np.arange(n_rdr), n_mod)
    same_mod = mod[:, None] == mod[None, :]
    same_rdr = rdr[:, None] == rdr[None, :]

    def mean_where(mask: np.ndarray) -> float:
        return float(covariance[mask].mean())

    grand = theta.mean()
    mod_means = theta.mean(axis=1)
    rdr_means = theta.mean(axis=0)
    resid = theta - mod_means[:, None] - rdr_means[None, :] + grand
    return VarianceComponents(
        var=mean_where(same_mod & same_rdr),
        cov1=mean_where(~same_mod & same_rdr),
        cov2=mean_where(same_mod & ~same_rdr),
        cov3=mean_where(~same_mod & ~same_rdr),
        ms_t=float(n_rdr * ((mod_means - grand) ** 2).sum() / (n_mod - 1)),
        ms_r=float(n_mod * ((rdr_means - grand) ** 2).sum() / (n_rdr - 1)),
        ms_tr=float((resid**2).sum() / ((n_mod - 1) * (n_rdr - 1))),
    )


def _modality_estimates(
    theta: np.ndarray, covariance: np.ndarray, modalities: Sequence[str], alpha: float
) -> list[ModalityEstimate]:
    """Per modality: MS(R) and Cov2 of that modality alone give a Hillis-df t interval."""
    n_mod, n_rdr = theta.shape
    out = []
    for i, name in enumerate(modalities):
        block = covariance[i * n_rdr : (i + 1) * n_rdr, i * n_rdr : (i + 1) * n_rdr]
        cov2 = float(block[~np.eye(n_rdr, dtype=bool)].mean())
        ms_r = float(((theta[i] - theta[i].mean()) ** 2).sum() / (n_rdr - 1))
        den = ms_r + n_rdr * max(cov2, 0.0)
        df = den**2 / ms_r**2 * (n_rdr - 1) if ms_r > 0 else np.inf
        std_err = float(np.sqrt(den / n_rdr))
        dist = stats.t(df) if np.isfinite(df) else stats.norm()
        crit = float(dist.ppf(1 - alpha / 2))
        est = float(theta[i].mean())
        out.append(
            ModalityEstimate(
                modality=str(name),
                estimate=est,
                std_err=std_err,
                df=float(df),
                ci_low=est - crit * std_err,
                ci_high=est + crit * std_err,
            )
        )
    return out


def _differences(
    mod_means: np.ndarray,
    modalities: Sequence[str],
    std_err: float,
    df: float,
    alpha: float,
) -> list[Difference]:
    """Pairwise differences with t (finite df) or normal (df = inf) intervals."""
    dist = stats.t(df) if np.isfinite(df) else stats.norm()
    crit = float(dist.ppf(1 - alpha / 2))
    out = []
    for a, b in combinations(range(len(modalities)), 2):
        est = float(mod_means[a] - mod_means[b])
        stat = est / std_err if std_err > 0 else np.copysign(np.inf, est) if est else np.nan
        out.append(
            Difference(
                modality_a=str(modalities[a]),
                modality_b=str(modalities[b]),
                estimate=est,
                std_err=float(std_err),
                df=float(df),
                statistic=float(stat),
                p_value=float(2 * dist.sf(abs(stat))),
                ci_low=float(est - crit * std_err),
                ci_high=float(est + crit * std_err),
            )
        )
    return out


def orh_analysis(
    ratings: np.ndarray,
    truth: np.ndarray,
    *,
    fom: Fom = "auc",
    cov: CovMethod = "jackknife",
    alpha: float = 0.05,
    modalities: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
) -> ORHResult:
    """ORH analysis of ``ratings`` (modality x reader x case; higher = more likely disease)."""
    ratings = np.asarray(ratings, dtype=float)
    truth = np.asarray(truth).astype(int)
    _check_inputs(ratings, truth, fom)
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie between 0 and 1")
    n_mod, n_rdr, _ = ratings.shape
    modalities = [str(m) for m in (modalities if modalities is not None else range(n_mod))]
    readers = [str(r) for r in (readers if readers is not None else range(n_rdr))]
    if len(modalities) != n_mod or len(readers) != n_rdr:
        raise ValueError("one name per modality and per reader is needed")

    theta, covariance = fom_covariance(ratings, truth, fom, cov)
    vc = variance_components(theta, covariance)
    mod_means = theta.mean(axis=1)
    ndf = n_mod - 1
    cov_excess = max(vc.cov2 - vc.cov3, 0.0)

    # Random readers and cases: Hillis (2007) denominator degrees of freedom.
    den = vc.ms_tr + n_rdr * cov_excess
    if den <= 0:
        raise ValueError("no reader or case variability: every reader gave the same FOMs")
    f_rrrc = vc.ms_t / den
    ddf = den**2 / (vc.ms_tr**2 / (ndf * (n_rdr - 1))) if vc.ms_tr > 0 else np.inf
    rrrc = Test(
        statistic=f_rrrc,
        ndf=ndf,
        ddf=ddf,
        p_value=float(stats.f.sf(f_rrrc, ndf, ddf)),
        differences=_differences(mod_means, modalities, np.sqrt(2 * den / n_rdr), ddf, alpha),
    )

    # Fixed readers, random cases: chi-square on I - 1 df, normal intervals.
    den_fr = vc.var - vc.cov1 + (n_rdr - 1) * cov_excess
    chisq = ndf * vc.ms_t / den_fr if den_fr > 0 else np.inf
    frrc = Test(
        statistic=float(chisq),
        ndf=ndf,
        ddf=np.inf,
        p_value=float(stats.chi2.sf(chisq, ndf)),
        differences=_differences(
            mod_means, modalities, np.sqrt(2 * max(den_fr, 0.0) / n_rdr), np.inf, alpha
        ),
    )

    # Random readers, fixed cases: Obuchowski–Rockette F on (I - 1, (I - 1)(J - 1)) df.
    ddf_rf = ndf * (n_rdr - 1)
    f_rrfc = vc.ms_t / vc.ms_tr if vc.ms_tr > 0 else np.inf
    rrfc = Test(
        statistic=float(f_rrfc),
        ndf=ndf,
        ddf=ddf_rf,
        p_value=float(stats.f.sf(f_rrfc, ndf, ddf_rf)),
        differences=_differences(
            mod_means, modalities, np.sqrt(2 * vc.ms_tr / n_rdr), ddf_rf, alpha
        ),
    )
    return ORHResult(
        fom=fom,
        cov_method=cov,
        alpha=alpha,
        modalities=modalities,
        readers=readers,
        n_normal=int((truth == 0).sum()),
        n_disease=int((truth == 1).sum()),
        foms=theta,
        modality_foms={m: float(v) for m, v in zip(modalities, mod_means, strict=True)},
        modality_estimates=_modality_estimates(theta, covariance, modalities, alpha),
        components=vc,
        random_readers_random_cases=rrrc,
        fixed_readers_random_cases=frrc,
        random_readers_fixed_cases=rrfc,
    )


def orh_from_table(
    table: pd.DataFrame,
    *,
    reader: str = "reader",
    case: str = "case",
    modality: str = "modality",
    score: str = "score",
    truth: str = "truth",
    fom: Fom = "auc",
    cov: CovMethod = "jackknife",
    alpha: float = 0.05,
) -> ORHResult:
    """ORH analysis of a long table with one row per reader x case x modality.

    The design must be fully crossed: every reader scored every case in every modality,
    once. Modalities and readers are taken in sorted order.
    """
    missing = {reader, case, modality, score, truth} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s): {', '.join(sorted(missing))}")
    keys = [modality, reader, case]
    if table.duplicated(keys).any():
        raise ValueError("more than one score for the same reader, case and modality")
    truths = table.groupby(case)[truth].nunique()
    if (truths > 1).any():
        raise ValueError(f"case(s) with conflicting truth: {list(truths[truths > 1].index)[:5]}")
    mods = sorted(table[modality].unique(), key=str)
    rdrs = sorted(table[reader].unique(), key=str)
    cases = sorted(table[case].unique(), key=str)
    expected = len(mods) * len(rdrs) * len(cases)
    if len(table) != expected:
        raise ValueError(
            f"not fully crossed: {len(table)} scores for {len(mods)} modalities x "
            f"{len(rdrs)} readers x {len(cases)} cases ({expected} expected)"
        )
    index = pd.MultiIndex.from_product([mods, rdrs, cases], names=keys)
    cube = table.set_index(keys)[score].reindex(index).to_numpy(dtype=float)
    case_truth = table.groupby(case)[truth].first().reindex(cases).to_numpy()
    return orh_analysis(
        cube.reshape(len(mods), len(rdrs), len(cases)),
        case_truth,
        fom=fom,
        cov=cov,
        alpha=alpha,
        modalities=[str(m) for m in mods],
        readers=[str(r) for r in rdrs],
    )
