"""Prediction with any contract model: probabilities and answers per task, with timing and
the model's caveat (JSON-ready, no tensors)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import ExplainableModel
from fuselens.model_zoo.operating_points import DEFAULT_YES_AT, answer_index, is_yes_no, yes_at


def _run(model: ExplainableModel, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Each task's logits, and the modality attention when the model's output has it."""
    outputs = getattr(model, "outputs", None)
    out = outputs(batch) if callable(outputs) else model.predict(batch)
    logits = getattr(out, "logits", out)
    attention = getattr(out, "modality_attention", None)
    return logits, attention if isinstance(attention, torch.Tensor) else None


def task_result(
    answers: Sequence[str], probs: Sequence[float], threshold: float = DEFAULT_YES_AT
) -> dict[str, Any]:
    """One task of one case: the answer given (a yes/no task's at its operating point
    ``threshold``, :func:`~fuselens.model_zoo.operating_points.answer_index`),
    ``probability`` (P(yes) when the task has a "yes" answer, else the answer's), every
    answer's probability, and ``yes_at`` for a yes/no task."""
    answers = [str(a) for a in answers]
    probs = [float(p) for p in probs]
    best = answer_index(answers, probs, threshold)
    out = {
        "answer": answers[best],
        "probability": probs[answers.index("yes")] if "yes" in answers else probs[best],
        "probabilities": dict(zip(answers, probs, strict=True)),
    }
    if is_yes_no(answers):
        out["yes_at"] = float(threshold)
    return out


@torch.no_grad()
def predict_cases(
    model: ExplainableModel, cases: Sequence[PatientCase], batch_size: int = 8
) -> list[dict[str, Any]]:
    """:func:`predict_case` of every case, ``batch_size`` cases per forward pass (each case's
    ``seconds`` is its share of its batch's time)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(model, torch.nn.Module):
        model.eval()
    results: list[dict[str, Any]] = []
    for start in range(0, len(cases), batch_size):
        chunk = list(cases[start : start + batch_size])
        t0 = time.perf_counter()
        batch = model.prepare(chunk)
        logits, attention = _run(model, batch)
        probs = {t: logits[t].float().softmax(-1).cpu() for t in model.tasks}
        present = batch.present.cpu()
        seconds = (time.perf_counter() - t0) / len(chunk)
        for i, case in enumerate(chunk):
            used = [m for j, m in enumerate(batch.modalities) if bool(present[i, j])]
            out: dict[str, Any] = {
                "case_id": case.case_id,
                "modalities_used": used,
                "modalities_ignored": [m for m in case.modalities() if m not in used],
                "tasks": {
                    t: task_result(answers, probs[t][i].tolist(), yes_at(model, t))
                    for t, answers in model.tasks.items()
                },
            }
            if attention is not None:
                out["modality_attention"] = attention[i].float().cpu().tolist()
            out.update(
                device=str(model.device),
                seconds=round(seconds, 4),
                caveat=str(model.caveat),
            )
            results.append(out)
    return results


def predict_case(model: ExplainableModel, case: PatientCase) -> dict[str, Any]:
    """Prepare the case, run the model and summarise every task: JSON-ready (no tensors).

    Keys: ``case_id``, ``modalities_used`` (what the model read), ``modalities_ignored``
    (what the case has that the model does not read), ``tasks`` (task -> ``answer``,
    ``probability``, ``probabilities``), ``modality_attention`` (only when the model's
    output has it), ``device``, ``seconds`` and ``caveat`` (the model's)."""
    return predict_cases(model, [case], batch_size=1)[0]
