"""f(no modality): the model needs at least one modality, so the empty coalition of the
modality Shapley game is the training prevalence of the answer, as log-odds.

``prevalence.json`` holds each task's share of positive cases in the synthetic training
cohort (``benchmarks/training_prevalence.py`` writes it from the cohort's ``truth.json``
files; a finding counts only where its modality is present, as in training).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from model_zoo.tasks import TASK_MODALITY

PREVALENCE_FILE = Path(__file__).with_name("prevalence.json")
BASELINE_DESCRIPTION = (
    "f(empty) = log-odds of the answer's prevalence in the training cohort "
    "(the model cannot run with no modality)"
)


def cohort_prevalence(cohort_dir: str | Path) -> dict[str, float]:
    """Share of positive cases per task over a synthetic cohort's ``truth.json`` files."""
    pos: dict[str, int] = {t: 0 for t in TASK_MODALITY}
    known: dict[str, int] = {t: 0 for t in TASK_MODALITY}
    files = sorted(Path(cohort_dir).glob("*/truth.json"))
    if not files:
        raise FileNotFoundError(f"{cohort_dir}: no case folders with truth.json")
    for path in files:
        meta = json.loads(path.read_text(encoding="utf-8"))
        for task, modality in TASK_MODALITY.items():
            if modality is None:
                if task in meta["labels"]:
                    known[task] += 1
                    pos[task] += int(meta["labels"][task])
            elif modality in meta["modalities"]:
                known[task] += 1
                pos[task] += int(task in meta["findings"].get(modality, []))
    return {t: pos[t] / known[t] for t in TASK_MODALITY if known[t]}


def training_prevalence() -> dict[str, float]:
    """Task -> P(yes) in the training cohort (from ``prevalence.json``)."""
    return dict(json.loads(PREVALENCE_FILE.read_text(encoding="utf-8"))["prevalence"])


def empty_value(task: str, target: str, answers: list[str]) -> float:
    """Log-odds of ``target`` at the training prevalence (uniform over answers if unknown)."""
    prevalence = training_prevalence()
    if task in prevalence and sorted(answers) == ["no", "yes"]:
        p_yes = min(max(prevalence[task], 1e-4), 1 - 1e-4)
        p = p_yes if target == "yes" else 1.0 - p_yes
    else:
        p = 1.0 / len(answers)
    return math.log(p / (1.0 - p))
