"""The staged explanation of one case: quick stages first, the bundle growing after each.

``explain_stages`` yields ``(stage, bundle)`` after every stage of :data:`STAGES` that applies
to the case (Grad-CAM++ needs an ECG, echo or CXR; the report a report decoder; text SHAP
labs); ``explain_case`` runs them all and returns the finished bundle.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from explain.attention import attention_maps
from explain.baseline import BASELINE_DESCRIPTION
from explain.bundle import (
    ExplanationBundle,
    GradCAMMaps,
    ModalityShapley,
    TextAttribution,
)
from explain.context import CaseContext
from explain.evidence import (
    cxr_evidence,
    ecg_evidence,
    echo_evidence,
    labs_evidence,
    top_tokens,
)
from explain.geometry import cxr_to_native, ecg_to_native, echo_to_native
from explain.gradcam import CAM_MODALITIES, gradcam_plusplus
from explain.grounding import ground_report
from explain.shapley import coalition_key, modality_shapley
from explain.text_shap import DEFAULT_MAX_EVALS, item_values, lab_tokens, line_occlusion, text_shap
from model_zoo.case import ECHO_VIEWS, PatientCase
from model_zoo.config import ModelConfig
from model_zoo.model import FusionModel, ReportOutput

STAGES: tuple[str, ...] = ("prediction", "gradcam", "attention", "shapley", "report", "text_shap")


def prediction_summary(ctx: CaseContext) -> dict[str, Any]:
    """Answer, P(yes) and per-answer probabilities of every task (JSON-ready)."""
    out = {}
    for task, answers in ctx.model.tasks.items():
        probs = ctx.output.probabilities[task][0].float().cpu().tolist()
        best = int(np.argmax(probs))
        out[task] = {
            "answer": answers[best],
            "probability": probs[answers.index("yes")] if "yes" in answers else probs[best],
            "probabilities": dict(zip(answers, probs, strict=True)),
        }
    return out


def gradcam_maps(ctx: CaseContext, timings: dict[str, float] | None = None) -> GradCAMMaps:
    """Grad-CAM++ of every present convolutional modality, in the case's own geometry
    (seconds per modality into ``timings["gradcam:<modality>"]``)."""
    case, maps = ctx.case, GradCAMMaps()
    for modality in (m for m in CAM_MODALITIES if m in ctx.modalities):
        t = time.perf_counter()
        cam = gradcam_plusplus(ctx, modality)
        if modality == "ecg":
            maps.ecg = ecg_to_native(cam, case.ecg)
            maps.ecg_leads = list(case.ecg.lead_names)
            maps.ecg_rate_hz = float(case.ecg.sampling_rate)
        elif modality == "echo":
            maps.echo = {
                v: echo_to_native(cam[i], case.echo[v])
                for i, v in enumerate(ECHO_VIEWS)
                if v in case.echo
            }
        else:
            maps.cxr = cxr_to_native(cam, case.cxr)
        if timings is not None:
            timings[f"gradcam:{modality}"] = time.perf_counter() - t
    return maps


def shapley_summary(ctx: CaseContext) -> ModalityShapley:
    r = modality_shapley(ctx)
    return ModalityShapley(
        modalities=r.players,
        values=r.values,
        interactions=r.interactions,
        coalitions={coalition_key(s): v for s, v in r.coalitions.items()},
        base_value=r.base_value,
        full_value=r.full_value,
        baseline=BASELINE_DESCRIPTION,
        efficiency_error=r.efficiency_error,
    )


def lab_items(case: PatientCase) -> list[str]:
    """One name per lab text line: the items, then History and Medications when present."""
    return case.labs.line_names()


def text_attribution(ctx: CaseContext, max_evals: int) -> TextAttribution:
    r = text_shap(ctx, max_evals)
    items = lab_items(ctx.case)
    return TextAttribution(
        text=r.tokens.text,
        tokens=r.tokens.tokens,
        token_values=r.values.astype(np.float32),
        token_spans=r.tokens.spans,
        token_items=r.tokens.lines,
        items=items,
        item_values=item_values(r.tokens.lines, r.values, len(items)).astype(np.float32),
        base_value=r.base_value,
        full_value=r.full_value,
        max_evals=max_evals,
        evals=r.evals,
    )


def map_evidence(ctx: CaseContext, bundle: ExplanationBundle) -> dict[str, dict[str, Any]]:
    """Evidence summary per present modality from the maps computed so far."""
    out: dict[str, dict[str, Any]] = {}
    cams = bundle.gradcam
    if cams is not None and cams.ecg is not None:
        out["ecg"] = ecg_evidence(cams.ecg, cams.ecg_leads, cams.ecg_rate_hz)
    if cams is not None and cams.echo:
        out["echo"] = echo_evidence(cams.echo)
    if cams is not None and cams.cxr is not None:
        out["cxr"] = cxr_evidence(cams.cxr, ctx.case.cxr.view_position)
    if "labs" in ctx.modalities:
        items = lab_items(ctx.case)
        if bundle.text is not None:
            values, source = bundle.text.item_values, "text_shap"
        else:
            values = line_occlusion(ctx, lab_tokens(ctx), len(items))
            source = "occlusion"
        out["labs"] = labs_evidence(ctx.case.labs, items, values, source)
        if bundle.text is not None:
            out["labs"]["tokens"] = top_tokens(bundle.text.tokens, bundle.text.token_values)
    return out


def grounded(ctx: CaseContext, bundle: ExplanationBundle, report: ReportOutput):
    return ground_report(
        report.words[0],
        report.attention[0].float().cpu().numpy(),
        report.memory_labels,
        ctx.modalities,
        map_evidence(ctx, bundle),
    )


def explain_stages(
    model: FusionModel,
    config: ModelConfig,
    case: PatientCase,
    task: str = "heart_failure",
    target: str = "yes",
    *,
    model_name: str = "demo",
    text_max_evals: int = DEFAULT_MAX_EVALS,
    cached: bool = True,
) -> Iterator[tuple[str, ExplanationBundle]]:
    """Yield ``(stage, bundle)`` after each stage; each yielded bundle is a snapshot."""
    if config.to_dict() != model.config.to_dict():
        raise ValueError("config does not match the model's own config")
    t0 = time.perf_counter()
    ctx = CaseContext.build(model, case, task, target, cached)
    summary = prediction_summary(ctx)
    bundle = ExplanationBundle(
        case_id=case.case_id,
        task=task,
        target=target,
        answers=list(model.tasks[task]),
        modalities=ctx.modalities,
        prediction=summary,
        probability=summary[task]["probabilities"][target],
        model_name=model_name,
        device=str(model.device),
    )

    def done(stage: str, start: float) -> tuple[str, ExplanationBundle]:
        bundle.timings[stage] = time.perf_counter() - start
        bundle.stages.append(stage)
        return stage, dataclasses.replace(
            bundle, timings=dict(bundle.timings), stages=list(bundle.stages)
        )

    yield done("prediction", t0)
    if any(m in ctx.modalities for m in CAM_MODALITIES):
        t = time.perf_counter()
        bundle.gradcam = gradcam_maps(ctx, bundle.timings)
        yield done("gradcam", t)
    t = time.perf_counter()
    bundle.attention = attention_maps(ctx)
    yield done("attention", t)
    t = time.perf_counter()
    bundle.shapley = shapley_summary(ctx)
    yield done("shapley", t)
    report = None
    if model.report is not None:
        t = time.perf_counter()
        report = ctx.report()
        bundle.report = grounded(ctx, bundle, report)
        yield done("report", t)
    if "labs" in ctx.modalities:
        t = time.perf_counter()
        bundle.text = text_attribution(ctx, text_max_evals)
        if report is not None:
            bundle.report = grounded(ctx, bundle, report)
        yield done("text_shap", t)


def explain_case(
    model: FusionModel,
    config: ModelConfig,
    case: PatientCase,
    task: str = "heart_failure",
    target: str = "yes",
    **options: Any,
) -> ExplanationBundle:
    """Every stage of :func:`explain_stages`; the finished bundle."""
    stages = explain_stages(model, config, case, task, target, **options)
    return [bundle for _, bundle in stages][-1]
