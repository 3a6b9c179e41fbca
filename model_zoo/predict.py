"""One-case prediction: probabilities and answers per task, with timing and the caveat."""

from __future__ import annotations

import time

import torch

from model_zoo.case import MODALITIES, PatientCase
from model_zoo.inputs import case_to_inputs
from model_zoo.model import FusionModel

DEMO_CAVEAT = "demonstration model trained on synthetic data, not for clinical use"


@torch.no_grad()
def predict_case(model: FusionModel, case: PatientCase) -> dict:
    """Preprocess, run the model and summarise: JSON-ready (no tensors)."""
    t0 = time.perf_counter()
    inputs = case_to_inputs(case, model.config, model.tokenizer).to(model.device)
    out = model(inputs)
    used = [m for i, m in enumerate(MODALITIES) if bool(inputs.present[0, i])]
    tasks = {}
    for task, answers in model.tasks.items():
        probs = out.probabilities[task][0].float().cpu()
        best = int(probs.argmax())
        tasks[task] = {
            "answer": answers[best],
            "probability": float(probs[answers.index("yes")])
            if "yes" in answers
            else float(probs[best]),
            "probabilities": {a: float(p) for a, p in zip(answers, probs.tolist(), strict=True)},
        }
    return {
        "case_id": case.case_id,
        "modalities_used": used,
        "modalities_ignored": [m for m in case.modalities() if m not in used],
        "tasks": tasks,
        "modality_attention": out.modality_attention[0].float().cpu().tolist(),
        "device": str(model.device),
        "seconds": round(time.perf_counter() - t0, 4),
        "caveat": DEMO_CAVEAT,
    }
