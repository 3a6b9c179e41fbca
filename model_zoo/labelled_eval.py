"""Held-out figures of any model on a labelled cohort: per task, accuracy and (yes/no) AUC,
sensitivity and specificity, or (several answers) one-vs-rest macro AUC, each with a 95%
percentile-bootstrap interval over cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from fuselens.model_zoo.metrics import bootstrap_ci


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """AUC of ``y`` (answer indices) against ``p`` (``(n, A)`` probabilities): binary on the
    last answer, one-vs-rest macro over answers otherwise; NaN when a class is missing."""
    classes = p.shape[1]
    if len(np.unique(y)) < (2 if classes == 2 else classes):
        return float("nan")
    if classes == 2:
        return float(roc_auc_score(y, p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", labels=list(range(classes))))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p.argmax(1) == y))


def task_metrics(
    truth: Sequence[str], probabilities: np.ndarray, answers: Sequence[str], n_boot: int = 1000
) -> dict[str, Any]:
    """Metrics of one task: ``truth`` answers, ``probabilities`` ``(n, A)`` over ``answers``."""
    y = np.array([list(answers).index(t) for t in truth])
    p = np.asarray(probabilities, dtype=np.float64)
    out: dict[str, Any] = {
        "cases": int(len(y)),
        "cases_per_answer": {a: int((y == i).sum()) for i, a in enumerate(answers)},
        "accuracy": _accuracy(y, p),
        "accuracy_ci": bootstrap_ci(_accuracy, y, p, n_boot),
        "auc": _auc(y, p),
        "auc_ci": bootstrap_ci(_auc, y, p, n_boot),
    }
    if list(answers) == ["no", "yes"]:
        pred = p[:, 1] >= 0.5
        pos, neg = y == 1, y == 0
        out["sensitivity"] = float(pred[pos].mean()) if pos.any() else float("nan")
        out["specificity"] = float((~pred[neg]).mean()) if neg.any() else float("nan")
    return out


def format_labelled(result: dict[str, Any]) -> str:
    """A plain-text table, a row per task."""
    lines = [f"{'task':<24}{'cases':>7}{'accuracy':>10}{'95% CI':>16}{'AUC':>8}{'95% CI':>16}"]
    for task, r in result["tasks"].items():
        acc_lo, acc_hi = r["accuracy_ci"]
        auc_lo, auc_hi = r["auc_ci"]
        lines.append(
            f"{task:<24}{r['cases']:>7}{r['accuracy']:>10.3f}  [{acc_lo:.3f}, {acc_hi:.3f}]"
            f"{r['auc']:>8.3f}  [{auc_lo:.3f}, {auc_hi:.3f}]"
        )
    lines.append(f"model {result['model']}: {result['caveat']}")
    return "\n".join(lines)
