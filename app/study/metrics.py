"""Reader-study results from a long table of answers: one row per reader x case x arm.

Columns: ``reader``, ``case``, ``arm``, ``truth`` (0/1), ``diagnosis`` (0/1), ``confidence``
(0-100), ``seconds`` (time on the case, measured by the server) and ``ai_answer`` (0/1, or
missing in an arm that shows no AI answer).

``confidence`` is the reader's confidence in their own diagnosis (0 = a guess, 100 =
certain). For ROC analysis it becomes a disease score on 0-100: 50 + confidence/2 for a
positive diagnosis, 50 - confidence/2 for a negative one, so higher always means disease.

Intervals are 95% by default: Wilson score intervals for proportions, DeLong's
structural-components variance (normal approximation, clipped to [0, 1]) for the AUC.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score

from fuselens.app.study.orh import Fom, ORHResult, auc_components, orh_from_table

COLUMNS = ("reader", "case", "arm", "truth", "diagnosis", "confidence", "seconds", "ai_answer")
BINARY_COLUMNS = ("truth", "diagnosis")


def answers_table(answers: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The answers as a checked DataFrame; a clear ValueError names what is wrong."""
    table = answers.copy() if isinstance(answers, pd.DataFrame) else pd.DataFrame(list(answers))
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"answers lack column(s): {', '.join(missing)}")
    if table.empty:
        raise ValueError("no answers")
    for col in BINARY_COLUMNS:
        if not table[col].isin((0, 1)).all():
            raise ValueError(f"{col} must be 0 or 1 in every row")
        table[col] = table[col].astype(int)
    ai = table["ai_answer"]
    if not (ai.isna() | ai.isin((0, 1))).all():
        raise ValueError("ai_answer must be 0, 1 or missing")
    table["ai_answer"] = ai.astype("Int64")
    for col, low, high in (("confidence", 0, 100), ("seconds", 0, np.inf)):
        values = pd.to_numeric(table[col], errors="coerce")
        if values.isna().any() or (values < low).any() or (values > high).any():
            raise ValueError(f"{col} must be a number from {low} to {high} in every row")
        table[col] = values.astype(float)
    if table.duplicated(["reader", "case", "arm"]).any():
        raise ValueError("more than one answer for the same reader, case and arm")
    truths = table.groupby("case")["truth"].nunique()
    if (truths > 1).any():
        raise ValueError(f"case(s) with conflicting truth: {list(truths[truths > 1].index)[:5]}")
    return table


def disease_score(diagnosis: Any, confidence: Any) -> np.ndarray:
    """Confidence in a diagnosis as a 0-100 disease score (higher = more likely disease)."""
    diagnosis = np.asarray(diagnosis, dtype=float)
    half = np.asarray(confidence, dtype=float) / 2
    return np.where(diagnosis == 1, 50 + half, 50 - half)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion; (nan, nan) when n is 0."""
    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def auc_with_ci(truth: Any, score: Any, alpha: float = 0.05) -> tuple[float, float, float]:
    """Empirical (Wilcoxon) AUC with a DeLong interval; nan when a class has < 2 cases."""
    truth = np.asarray(truth, dtype=int)
    score = np.asarray(score, dtype=float)
    n_pos, n_neg = int((truth == 1).sum()), int((truth == 0).sum())
    if n_pos < 2 or n_neg < 2:
        return float("nan"), float("nan"), float("nan")
    auc, v10, v01 = auc_components(score, truth)
    se = np.sqrt(v10.var(ddof=1) / n_pos + v01.var(ddof=1) / n_neg)
    z = float(stats.norm.ppf(1 - alpha / 2))
    return float(auc), float(max(auc - z * se, 0.0)), float(min(auc + z * se, 1.0))


def reader_arm_performance(answers: Any, alpha: float = 0.05) -> pd.DataFrame:
    """Accuracy, sensitivity, specificity (Wilson CIs) and AUC (DeLong CI) per reader x arm."""
    table = answers_table(answers)
    rows = []
    for (reader, arm), g in table.groupby(["reader", "arm"], sort=True):
        truth, diag = g["truth"].to_numpy(), g["diagnosis"].to_numpy()
        row: dict[str, Any] = {"reader": reader, "arm": arm, "n_cases": len(g)}
        for name, mask in (
            ("accuracy", np.ones_like(truth, dtype=bool)),
            ("sensitivity", truth == 1),
            ("specificity", truth == 0),
        ):
            n = int(mask.sum())
            hits = int((diag[mask] == truth[mask]).sum())
            row[name] = hits / n if n else float("nan")
            row[f"{name}_low"], row[f"{name}_high"] = wilson_interval(hits, n, alpha)
        auc, low, high = auc_with_ci(truth, disease_score(diag, g["confidence"]), alpha)
        row.update(auc=auc, auc_low=low, auc_high=high)
        rows.append(row)
    return pd.DataFrame(rows)


def cohen_kappas(answers: Any) -> pd.DataFrame:
    """Cohen's kappa of the diagnoses for every reader pair in each arm (shared cases only)."""
    table = answers_table(answers)
    rows = []
    for arm, g in table.groupby("arm", sort=True):
        wide = g.pivot(index="case", columns="reader", values="diagnosis")
        for a, b in combinations(sorted(wide.columns, key=str), 2):
            both = wide[[a, b]].dropna()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                kappa = (
                    cohen_kappa_score(both[a], both[b], labels=[0, 1])
                    if len(both)
                    else float("nan")
                )
            rows.append(
                {
                    "arm": arm,
                    "reader_a": a,
                    "reader_b": b,
                    "n_cases": len(both),
                    "kappa": float(kappa),
                }
            )
    return pd.DataFrame(rows, columns=["arm", "reader_a", "reader_b", "n_cases", "kappa"])


def fleiss_kappa(counts: Any) -> float:
    """Fleiss' (1971) kappa of a subjects x categories table of rater counts.

    Every subject must be rated by the same number (>= 2) of raters; nan when chance
    agreement is perfect (every rating in one category).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("counts must be a non-empty subjects x categories table")
    if (counts < 0).any():
        raise ValueError("counts must not be negative")
    raters = counts.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("every subject needs the same number (at least 2) of raters")
    n = raters[0]
    p_cat = counts.sum(axis=0) / counts.sum()
    agreement = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    chance = float((p_cat**2).sum())
    if chance == 1.0:
        return float("nan")
    return float((agreement.mean() - chance) / (1 - chance))


def fleiss_kappas(answers: Any) -> pd.DataFrame:
    """Fleiss' kappa of the diagnoses per arm, over cases that every reader of the arm read."""
    table = answers_table(answers)
    rows = []
    for arm, g in table.groupby("arm", sort=True):
        wide = g.pivot(index="case", columns="reader", values="diagnosis").dropna()
        n_readers = wide.shape[1]
        if n_readers < 2 or wide.empty:
            kappa = float("nan")
        else:
            positives = wide.sum(axis=1).to_numpy()
            kappa = fleiss_kappa(np.column_stack([n_readers - positives, positives]))
        rows.append({"arm": arm, "n_readers": n_readers, "n_cases": len(wide), "kappa": kappa})
    return pd.DataFrame(rows, columns=["arm", "n_readers", "n_cases", "kappa"])


def time_per_case(answers: Any) -> pd.DataFrame:
    """Seconds per case per reader x arm: median and interquartile range."""
    table = answers_table(answers)
    grouped = table.groupby(["reader", "arm"], sort=True)["seconds"]
    out = grouped.agg(
        n_cases="size",
        median_seconds="median",
        q1_seconds=lambda s: s.quantile(0.25),
        q3_seconds=lambda s: s.quantile(0.75),
    )
    return out.reset_index()


def wrong_ai_followed(answers: Any, alpha: float = 0.05) -> pd.DataFrame:
    """How often readers gave the AI's answer when it was wrong, per reader x arm and per arm.

    Only rows where an AI answer was shown and differs from the truth count; rows with
    ``reader`` "all" pool the readers of an arm.
    """
    table = answers_table(answers)
    wrong = table[table["ai_answer"].notna()]
    wrong = wrong[wrong["ai_answer"].astype(int) != wrong["truth"]]
    wrong = wrong.assign(followed=wrong["diagnosis"] == wrong["ai_answer"].astype(int))
    rows = []
    groups = [(k, g) for k, g in wrong.groupby(["reader", "arm"], sort=True)]
    groups += [(("all", arm), g) for arm, g in wrong.groupby("arm", sort=True)]
    for (reader, arm), g in groups:
        n, followed = len(g), int(g["followed"].sum())
        low, high = wilson_interval(followed, n, alpha)
        rows.append(
            {
                "reader": reader,
                "arm": arm,
                "n_wrong_ai": n,
                "n_followed": followed,
                "rate": followed / n,
                "rate_low": low,
                "rate_high": high,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["reader", "arm", "n_wrong_ai", "n_followed", "rate", "rate_low", "rate_high"],
    )


def compare_arms(answers: Any, fom: Fom = "auc", alpha: float = 0.05) -> ORHResult:
    """ORH comparison of the arms: AUC of the disease score, or accuracy of the diagnosis.

    Needs a fully crossed design: every reader answered every case in every arm.
    """
    table = answers_table(answers)
    if fom == "auc":
        score = disease_score(table["diagnosis"], table["confidence"])
    elif fom == "accuracy":
        score = table["diagnosis"].to_numpy(dtype=float)
    else:
        raise ValueError(f"unknown figure of merit {fom!r}; use 'auc' or 'accuracy'")
    return orh_from_table(
        table.assign(score=score), modality="arm", fom=fom, cov="jackknife", alpha=alpha
    )


def study_summary(answers: Any, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """Every per-reader, agreement, timing and AI-reliance table of a study."""
    table = answers_table(answers)
    return {
        "performance": reader_arm_performance(table, alpha),
        "cohen_kappa": cohen_kappas(table),
        "fleiss_kappa": fleiss_kappas(table),
        "time_per_case": time_per_case(table),
        "wrong_ai_followed": wrong_ai_followed(table, alpha),
    }
