"""Operating points: the P(yes) at which a yes/no task's answer turns yes, chosen per task
on a validation cohort (the F1-best threshold) instead of taking 0.5 for every head.

A finding head trained on a rare finding is rarely calibrated at 0.5 (the demo model's
seed 2 pleural-effusion head answered yes to 38% of the held-out effusions at 0.5). The
threshold is chosen on the validation split only and stored in the checkpoint's card, so
the held-out cohort measures it once. Every place that turns a P(yes) into an answer
(the prediction panel, the explained class, the report's findings and its checks) reads
the same threshold through :func:`yes_at`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_YES_AT = 0.5
CANDIDATES = np.round(np.arange(0.05, 0.951, 0.01), 2)
MIN_POSITIVES = 5
"""Fewer validation positives than this keep the task at 0.5 (too few to choose on)."""


def is_yes_no(answers: Sequence[str]) -> bool:
    """Whether a task is a yes/no question (its answer turns on a threshold on P(yes))."""
    return "yes" in answers and "no" in answers and len(answers) == 2


def f1_at(truth: np.ndarray, p_yes: np.ndarray, threshold: float) -> float:
    """F1 of answering yes when ``p_yes >= threshold`` (truth 1 = yes)."""
    pred = p_yes >= threshold
    tp = int(np.sum(pred & (truth == 1)))
    fp = int(np.sum(pred & (truth == 0)))
    fn = int(np.sum(~pred & (truth == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def choose_threshold(truth: np.ndarray, p_yes: np.ndarray) -> dict[str, Any]:
    """The F1-best threshold on ``CANDIDATES`` (ties: the one nearest 0.5), with the F1 it
    gives and the F1 at 0.5 on the same cases."""
    truth, p_yes = np.asarray(truth, dtype=int), np.asarray(p_yes, dtype=float)
    n_pos = int(truth.sum())
    row: dict[str, Any] = {"n": int(len(truth)), "positives": n_pos}
    at_half = f1_at(truth, p_yes, DEFAULT_YES_AT)
    if n_pos < MIN_POSITIVES or n_pos == len(truth):
        return row | {
            "yes_at": DEFAULT_YES_AT,
            "f1": at_half,
            "f1_at_0.5": at_half,
            "why": f"{n_pos} positives of {len(truth)}: kept at 0.5",
        }
    scores = np.array([f1_at(truth, p_yes, t) for t in CANDIDATES])
    best = np.flatnonzero(scores == scores.max())
    pick = float(CANDIDATES[best[np.argmin(np.abs(CANDIDATES[best] - DEFAULT_YES_AT))]])
    return row | {"yes_at": pick, "f1": float(scores.max()), "f1_at_0.5": at_half}


def choose_operating_points(
    truth: Mapping[str, Sequence[str]], p_yes: Mapping[str, Sequence[float]]
) -> dict[str, dict[str, Any]]:
    """Per task: the threshold :func:`choose_threshold` picks from its labelled cases
    (``truth[task]`` the answers "yes"/"no", ``p_yes[task]`` the model's P(yes) on them)."""
    out = {}
    for task, answers in truth.items():
        y = np.array([a == "yes" for a in answers], dtype=int)
        out[task] = choose_threshold(y, np.asarray(p_yes[task], dtype=float))
    return out


def card_points(card: Mapping[str, Any]) -> dict[str, float]:
    """Task -> threshold from a checkpoint card's ``operating_points`` (empty without one)."""
    return {t: float(r["yes_at"]) for t, r in (card.get("operating_points") or {}).items()}


def yes_at(model: Any, task: str) -> float:
    """The P(yes) at which ``model`` answers yes to ``task``: its ``operating_points``
    attribute where it has one for the task, else 0.5."""
    points = getattr(model, "operating_points", None) or {}
    return float(points.get(task, DEFAULT_YES_AT))


def thresholds(model: Any) -> dict[str, float]:
    """:func:`yes_at` of every yes/no task of ``model``."""
    return {t: yes_at(model, t) for t, a in model.tasks.items() if is_yes_no(a)}


def answer_index(answers: Sequence[str], probs: Sequence[float], threshold: float) -> int:
    """The answer given: for a yes/no task, yes when P(yes) >= ``threshold``; for any other,
    the most probable."""
    answers = [str(a) for a in answers]
    if is_yes_no(answers):
        yes = answers.index("yes")
        return yes if float(probs[yes]) >= threshold else 1 - yes
    return max(range(len(probs)), key=lambda i: float(probs[i]))


def format_points(result: Mapping[str, Any]) -> str:
    """The chosen thresholds as a table: task, cases, positives, threshold, F1 there and at 0.5."""
    lines = [
        f"operating points of {result['model']} on {result['chosen_on']}",
        f"{'task':<22} {'n':>5} {'pos':>5} {'yes at':>7} {'F1':>6} {'F1 @0.5':>8}",
    ]
    for task, r in result["operating_points"].items():
        lines.append(
            f"{task:<22} {r['n']:>5} {r['positives']:>5} {r['yes_at']:>7.2f} "
            f"{r['f1']:>6.3f} {r['f1_at_0.5']:>8.3f}" + (f"  ({r['why']})" if "why" in r else "")
        )
    return "\n".join(lines)
