"""One cohort case folder through the model: truth, probability, prediction and outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model_zoo.model import FusionModel

TASK = "heart_failure"


def outcome(truth: int, prediction: int) -> str:
    """TP, FP, TN or FN of a binary prediction against the truth (both 0 or 1)."""
    if truth not in (0, 1) or prediction not in (0, 1):
        raise ValueError(f"truth and prediction must be 0 or 1, got {truth!r}, {prediction!r}")
    return ("TN", "FP", "FN", "TP")[2 * truth + prediction]


@dataclass(frozen=True)
class CaseResult:
    """What the review stores for one case (``case_id`` is the case folder's name)."""

    case_id: str
    truth: int
    probability: float
    prediction: int
    outcome: str
    modalities: tuple[str, ...]


def review_case(
    model: FusionModel, folder: Path, task: str = TASK, threshold: float = 0.5
) -> CaseResult:
    """Read one case folder, run the model and compare with the planted truth; the model
    predicts "yes" when its probability of "yes" reaches ``threshold``."""
    from app.ingest import load_case
    from model_zoo.predict import predict_case
    from model_zoo.synth.truth import load_truth

    case, _ = load_case(folder)
    if not case.modalities():
        raise ValueError(f"{folder.name}: no readable modality")
    labels = load_truth(folder).labels
    if task not in labels:
        raise ValueError(f"{folder.name}: truth.json has no label for {task!r}")
    if "yes" not in model.tasks.get(task, ()):
        raise ValueError(f"the model has no yes/no task {task!r}")
    result = predict_case(model, case)["tasks"][task]
    truth = int(labels[task])
    prediction = int(result["probability"] >= threshold)
    return CaseResult(
        case_id=folder.name,
        truth=truth,
        probability=float(result["probability"]),
        prediction=prediction,
        outcome=outcome(truth, prediction),
        modalities=tuple(case.modalities()),
    )
