"""Study cases from a folder of case folders: truth, the model's stored answer and the media.

The model runs once here, at study creation; the reader server only reads what is stored
(the answer and modality Shapley values in the database, the rendered media on disk), so it
needs no model and no GPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.study.service import CaseSpec
from model_zoo.case import PatientCase
from model_zoo.synth.truth import case_folders

Predictor = Callable[[PatientCase], dict[str, Any]]


class ModelPredictor:
    """The checkpoint's P(yes) for ``task`` and its modality Shapley values on one case."""

    def __init__(self, model: str = "demo", task: str = "heart_failure", device: str = "cpu"):
        from model_zoo.registry import load_model

        self.model, _ = load_model(model, device=device)
        self.name, self.task = str(model), task

    def __call__(self, case: PatientCase) -> dict[str, Any]:
        from explain.baseline import BASELINE_DESCRIPTION
        from explain.context import CaseContext
        from explain.pipeline import prediction_summary
        from explain.shapley import modality_shapley

        ctx = CaseContext.build(self.model, case, self.task, "yes")
        pred = prediction_summary(ctx)[self.task]
        shap = modality_shapley(ctx)
        return {
            "probability": float(pred["probability"]),
            "prediction": int(pred["answer"] == "yes"),
            "explanation": {
                "modality_shapley": {m: float(v) for m, v in shap.values.items()},
                "base_value": float(shap.base_value),
                "full_value": float(shap.full_value),
                "scale": f"log-odds of {self.task} = yes",
                "baseline": BASELINE_DESCRIPTION,
            },
        }


def read_truth(folder: Path, task: str) -> tuple[str, int]:
    """The case id and the 0/1 truth of ``task`` from the folder's ``truth.json``."""
    meta = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    labels = meta.get("labels", {})
    if task not in labels:
        raise ValueError(f"{folder}: truth.json has no label {task!r} (has {sorted(labels)})")
    return str(meta.get("case_id", folder.name)), int(labels[task])


def render_media(case: PatientCase, out_dir: Path) -> list[str]:
    """What the reader sees of the case, written once: labs, ECG print, echo loops, CXR."""
    from PIL import Image

    from app.figures.loops import write_loop
    from app.image_views import cxr_panel, ecg_panel, echo_rgb_frames

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if case.labs is not None:
        labs = {
            "items": [
                {
                    "name": i.name,
                    "value": i.value,
                    "unit": i.unit,
                    "low": i.low,
                    "high": i.high,
                    "flag": i.flag,
                }
                for i in case.labs.items
            ],
            "history": case.labs.history,
            "medications": case.labs.medications,
            "age": case.demographics.age,
            "sex": case.demographics.sex,
        }
        (out_dir / "labs.json").write_text(json.dumps(labs), encoding="utf-8")
        written.append("labs.json")
    if case.ecg is not None:
        (out_dir / "ecg.json").write_text(ecg_panel(case, None).to_json(), encoding="utf-8")
        written.append("ecg.json")
    for view, cine in sorted(case.echo.items()):
        write_loop(echo_rgb_frames(cine, None, 0.0), cine.frame_rate, out_dir / f"echo_{view}.mp4")
        written.append(f"echo_{view}.mp4")
    if case.cxr is not None:
        Image.fromarray(cxr_panel(case, None, 0.0)).save(out_dir / "cxr.png")
        written.append("cxr.png")
    return written


def load_study_cases(
    cases_dir: str | Path,
    task: str,
    predictor: Predictor | None,
    media_dir: Path,
    progress: bool = True,
) -> list[CaseSpec]:
    """A :class:`CaseSpec` per case folder, the model's answer stored and media rendered."""
    from tqdm.auto import tqdm

    from app.ingest import load_case

    specs = []
    for folder in tqdm(case_folders(cases_dir), desc="study cases", disable=not progress):
        key, truth = read_truth(folder, task)
        case, _ = load_case(folder)
        render_media(case, media_dir / key)
        spec = CaseSpec(key, truth, case.modalities(), folder=str(folder.resolve()))
        if predictor is not None:
            out = predictor(case)
            spec.probability, spec.prediction = out["probability"], out["prediction"]
            spec.explanation = out["explanation"]
        specs.append(spec)
    return specs
