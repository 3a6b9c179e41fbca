"""f(no modality): a model cannot run with no modality, so the empty coalition of the
modality Shapley game is the log-odds of the answer's prevalence in the model's training
cohort, which the checkpoint carries (``answer_prevalence``; ``fuselens train`` writes it,
``benchmarks/training_prevalence.py`` measures it from a cohort). A model that states no
prevalence gets the uniform prior over its answers, and the bundle says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from fuselens.model_zoo.synth.truth import truth_answers
from fuselens.model_zoo.tasks import TASK_MODALITY

PREVALENCE_DESCRIPTION = (
    "f(empty) = log-odds of the answer's prevalence in the model's training cohort "
    "(the model cannot run with no modality)"
)
UNIFORM_DESCRIPTION = (
    "f(empty) = log-odds of a uniform prior over the task's answers (the model states no "
    "training prevalence)"
)


def cohort_prevalence(cohort_dir: str | Path) -> dict[str, float]:
    """Share of "yes" per task over a synthetic cohort's ``truth.json`` files (a task counts
    where it is known: :func:`~fuselens.model_zoo.synth.truth.truth_answers`)."""
    pos: dict[str, int] = {t: 0 for t in TASK_MODALITY}
    known: dict[str, int] = {t: 0 for t in TASK_MODALITY}
    files = sorted(Path(cohort_dir).glob("*/truth.json"))
    if not files:
        raise FileNotFoundError(f"{cohort_dir}: no case folders with truth.json")
    for path in files:
        answers = truth_answers(json.loads(path.read_text(encoding="utf-8")))
        for task in TASK_MODALITY:
            if task in answers:
                known[task] += 1
                pos[task] += answers[task] == "yes"
    return {t: pos[t] / known[t] for t in TASK_MODALITY if known[t]}


def answer_prevalence(model: object, task: str) -> dict[str, float] | None:
    """The model's stated training prevalence of each answer of ``task``, if any."""
    stated = getattr(model, "answer_prevalence", None) or {}
    return stated.get(task)


def empty_value(model: object, task: str, target: str) -> tuple[float, str]:
    """Log-odds of ``target`` with no modality, and how it was defined."""
    answers = list(model.tasks[task])
    prevalence = answer_prevalence(model, task)
    if prevalence and target in prevalence:
        p, how = prevalence[target], PREVALENCE_DESCRIPTION
    else:
        p, how = 1.0 / len(answers), UNIFORM_DESCRIPTION
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1.0 - p)), how
