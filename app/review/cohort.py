"""One cohort case through the model: truth, probability, prediction and outcome.

A yes/no task (answers with "yes" and "no") is scored TP/FP/TN/FN with a threshold on
P(yes); a task with other answers is scored "correct"/"wrong" on the top answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fuselens.model_zoo.operating_points import is_yes_no

BINARY_OUTCOMES = ("TP", "FP", "TN", "FN")
ANSWER_OUTCOMES = ("correct", "wrong")


def outcome(truth: int, prediction: int) -> str:
    """TP, FP, TN or FN of a binary prediction against the truth (both 0 or 1)."""
    if truth not in (0, 1) or prediction not in (0, 1):
        raise ValueError(f"truth and prediction must be 0 or 1, got {truth!r}, {prediction!r}")
    return ("TN", "FP", "FN", "TP")[2 * truth + prediction]


@dataclass(frozen=True)
class CaseResult:
    """What the review stores for one case (``case_id`` is the cohort's case id).

    ``truth`` and ``prediction`` are 0/1 for a yes/no task and answer indices (in the
    model's order) otherwise; ``truth_answer`` / ``predicted_answer`` are the answers
    themselves; ``probability`` is P(yes) for a yes/no task, else the top answer's."""

    case_id: str
    truth: int
    probability: float
    prediction: int
    outcome: str
    modalities: tuple[str, ...]
    truth_answer: str | None = None
    predicted_answer: str | None = None


def score(
    case_id: str,
    answers: Sequence[str],
    truth_answer: str,
    result: Mapping[str, Any],
    modalities: Sequence[str],
    threshold: float = 0.5,
) -> CaseResult:
    """The :class:`CaseResult` of one task's prediction (a :func:`predict_case` task entry)
    against the cohort's label ``truth_answer``."""
    answers = [str(a) for a in answers]
    if truth_answer not in answers:
        raise ValueError(f"{case_id}: label {truth_answer!r} is not one of {answers}")
    probs = result["probabilities"]
    if is_yes_no(answers):
        p_yes = float(probs["yes"])
        truth, prediction = int(truth_answer == "yes"), int(p_yes >= threshold)
        return CaseResult(
            case_id,
            truth,
            p_yes,
            prediction,
            outcome(truth, prediction),
            tuple(modalities),
            truth_answer,
            "yes" if prediction else "no",
        )
    best = max(range(len(answers)), key=lambda i: float(probs[answers[i]]))
    truth = answers.index(truth_answer)
    return CaseResult(
        case_id,
        truth,
        float(probs[answers[best]]),
        best,
        "correct" if best == truth else "wrong",
        tuple(modalities),
        truth_answer,
        answers[best],
    )
