"""Study cases from a cohort: truth, the model's stored answer and the media.

The cohort is a folder of case folders with a ``labels.csv`` or a ``fuselens synth`` cohort
(:mod:`fuselens.app.cohort`); readers answer a yes/no task, so a case's truth is 1 when its
label is "yes" (cases unlabelled for the task are left out). The model (any contract model)
runs once here, at study creation; the reader server only reads what is stored (the answer
and modality Shapley values in the database, the rendered media and panels on disk), so it
needs no model and no GPU. When an arm shows explanation panels, each case's explanation
bundle (every stage, the arms' map methods, explaining the model's own answer) is computed
once, kept in the content-keyed bundle store (a rerun or another study of the same cases and
model reuses it) and drawn into the arm's panel files (:mod:`fuselens.app.study.panels`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fuselens.app.cohort import Cohort, open_cohort
from fuselens.app.identifier_text import redacted_warnings
from fuselens.app.study.service import CaseSpec
from fuselens.model_zoo.case import PatientCase

if TYPE_CHECKING:
    from fuselens.explain.bundle import ExplanationBundle
    from fuselens.model_zoo.contract import ExplainableModel

Predictor = Callable[[PatientCase], dict[str, Any]]
LOG = logging.getLogger("fuselens.study")


def check_yes_no(model_tasks: Mapping[str, Sequence[str]], task: str) -> None:
    """Readers answer yes or no: ``task`` must be a yes/no task of the model."""
    if task not in model_tasks:
        raise ValueError(f"the model has no task {task!r} (it has {', '.join(model_tasks)})")
    answers = list(model_tasks[task])
    if "yes" not in answers or "no" not in answers:
        raise ValueError(
            f"a reader study asks a yes/no question; task {task!r} has answers "
            f"{', '.join(map(str, answers))}"
        )


class ModelPredictor:
    """The model's P(yes) for ``task`` and its modality Shapley values on one case; ``model``
    is ``demo``, a checkpoint folder, ``MODULE:FACTORY`` or a contract model, ``task`` one of
    its yes/no tasks (default: its first)."""

    def __init__(
        self,
        model: str | Path | ExplainableModel = "demo",
        task: str | None = None,
        device: str | None = "cpu",
        store: str | Path | None = None,
    ):
        from fuselens.explain.bundle_store import BundleStore, model_digest
        from fuselens.model_zoo.loading import load_explainable

        if isinstance(model, str | Path):
            self.model, self.name = load_explainable(model, device), str(model)
        else:
            self.model, self.name = model, str(model.name)
        self.task = task or next(iter(self.model.tasks))
        check_yes_no(self.model.tasks, self.task)
        self.store = BundleStore(store) if store is not None else None
        self.digest = model_digest(self.model) if store is not None else None

    def explain(self, case: PatientCase, methods: Sequence[str]) -> ExplanationBundle:
        """Every explanation of ``case`` for the model's own answer (a review's default
        settings), from the bundle store when it holds it (else computed and stored)."""
        from fuselens.app.review.workers import ExplainPlan
        from fuselens.explain.bundle_store import bundle_key
        from fuselens.explain.context import PREDICTED
        from fuselens.explain.pipeline import explain_case

        plan = ExplainPlan(tuple(methods))
        key = None
        if self.store is not None:
            key = bundle_key(case, self.digest, self.task, PREDICTED, plan.methods, plan.settings())
            cached = self.store.get(key, case_id=case.case_id)
            if cached is not None:
                return cached
        bundle = explain_case(
            self.model,
            case,
            self.task,
            PREDICTED,
            methods=list(plan.methods),
            model_name=self.name,
            text_max_evals=plan.text_max_evals,
        )
        if self.store is not None:
            self.store.put(key, bundle)
        return bundle

    def __call__(self, case: PatientCase) -> dict[str, Any]:
        from fuselens.explain.context import CaseContext
        from fuselens.explain.pipeline import prediction_summary
        from fuselens.explain.shapley import modality_shapley

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
                "baseline": str(getattr(shap, "baseline", "") or ""),  # how f(empty) is defined
            },
        }


def study_truth(cohort: Cohort, task: str) -> dict[str, int]:
    """Case id -> 0/1 truth of the yes/no ``task`` (label "yes" -> 1), for every case
    labelled for it, in cohort order (the labels checked: yes or no only)."""
    cohort.check_labels({task: ["no", "yes"]}, task)
    return {c: int(cohort.label(c, task) == "yes") for c in cohort.labelled(task)}


def render_media(case: PatientCase, out_dir: Path) -> list[str]:
    """What the reader sees of the case, written once: labs, ECG print, echo loops, CXR."""
    from PIL import Image

    from fuselens.app.figures.loops import write_loop
    from fuselens.app.image_views import cxr_panel, ecg_panel, echo_rgb_frames

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
    meta = {}
    for view, cine in sorted(case.echo.items()):
        frames = echo_rgb_frames(cine, None, 0.0)
        write_loop(frames, cine.frame_rate, out_dir / f"echo_{view}.mp4")
        written.append(f"echo_{view}.mp4")
        meta[view] = {"fps": float(cine.frame_rate), "frames": int(frames.shape[0]),
                      "height": int(frames.shape[1]), "width": int(frames.shape[2])}  # fmt: skip
    if meta:
        (out_dir / "echo.json").write_text(json.dumps(meta), encoding="utf-8")
        written.append("echo.json")
    if case.cxr is not None:
        Image.fromarray(cxr_panel(case, None, 0.0)).save(out_dir / "cxr.png")
        written.append("cxr.png")
    return written


def load_study_cases(
    cases_dir: str | Path | Cohort,
    task: str,
    predictor: Predictor | None,
    media_dir: Path,
    progress: bool = True,
    labels: str | Path | None = None,
    methods: Sequence[str] = (),
    regions_dir: Path | None = None,
) -> list[CaseSpec]:
    """A :class:`CaseSpec` per case labelled for ``task`` (``cases_dir`` a cohort, or its
    folder with ``labels`` a labels.csv), the model's answer stored and media rendered.

    A case whose files were not all read cleanly is logged with its input warnings. With map
    ``methods`` (arms that show explanation panels), each case is explained once
    (``predictor.explain``), its panels drawn into its media folder and the regions that
    readers' marks are scored against written under ``regions_dir`` (one ``.npz`` per case
    and method), which the server never serves.
    """
    from tqdm.auto import tqdm

    from fuselens.app.study.panels import case_regions, render_panels, save_regions

    cohort = cases_dir if isinstance(cases_dir, Cohort) else open_cohort(cases_dir, labels)
    truth_of = study_truth(cohort, task)
    specs = []
    for key, truth in tqdm(truth_of.items(), desc="study cases", disable=not progress):
        case = cohort.load(key)
        if case.warnings:  # readers will see what was read: the owner learns what was not
            LOG.warning("%s: input warnings: %s", key, "; ".join(redacted_warnings(case)))
        render_media(case, media_dir / key)
        folder = cohort.folder(key)
        spec = CaseSpec(key, truth, case.modalities(), folder=str(folder.resolve()))
        if predictor is not None:
            out = predictor(case)
            spec.probability, spec.prediction = out["probability"], out["prediction"]
            spec.explanation = out["explanation"]
        if predictor is not None and methods:
            bundle = predictor.explain(case, methods)
            render_panels(case, bundle, list(methods), media_dir / key)
            masks = case.truth.masks if case.truth is not None else None
            if regions_dir is not None:
                for method in methods:
                    regions = case_regions(case, bundle.maps.get(method), masks)
                    save_regions(regions_dir / key / f"{method}.npz", regions)
        specs.append(spec)
    return specs
