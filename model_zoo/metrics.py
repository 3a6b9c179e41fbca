"""Evaluation metrics: bootstrap intervals, BLEU-4, ROUGE-L and finding-level F1."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    p: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y, p)`` over resampled cases."""
    rng = np.random.default_rng(seed)
    n = len(y)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = metric(y[idx], p[idx])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))


def bleu4(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU-4 in [0, 1] (sacrebleu, 13a tokenisation, lower-cased)."""
    return float(sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score) / 100.0


def rouge_l(hypotheses: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F-measure (rouge-score)."""
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [
        scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references, strict=True)
    ]
    return float(np.mean(scores)) if scores else float("nan")


def finding_f1(truth: list[set[str]], predicted: list[set[str]], findings: list[str]) -> dict:
    """Micro precision/recall/F1 over (case, finding) pairs, plus F1 per finding."""
    per = {}
    tp_all = fp_all = fn_all = 0
    for f in findings:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if f in t and f in p)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if f not in t and f in p)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if f in t and f not in p)
        per[f] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
    precision = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    recall = tp_all / (tp_all + fn_all) if tp_all + fn_all else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": f1,
        "per_finding": per,
    }
